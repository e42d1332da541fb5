"""What a collection produces, as values: statuses, runs, host results, and the
recorder the engine hands them to (the use case decides where they are kept)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from runbook.evidence import EvidenceRecord
from runbook.findings import Finding
from runbook.hosts import Host
from runbook.transport.base import HostError, HostState


class RunStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"  # it started on the host and ran past its timeout
    NOT_INSTALLED = "not-installed"
    NEEDS_ROOT = "needs-root"
    ERROR = "error"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"
    NOT_RUN = "not-run"  # it never started: the host dropped, or the run was cancelled
    PENDING = "pending"
    RUNNING = "running"


# A run in one of these has ended; every one but OK and SKIPPED is a problem.
FINISHED = frozenset(set(RunStatus) - {RunStatus.PENDING, RunStatus.RUNNING})
PROBLEMS = FINISHED - {RunStatus.OK, RunStatus.SKIPPED}


@dataclass
class CollectorRun:
    host: str
    collector: str
    status: RunStatus
    exit_code: int | None = None
    findings: list[Finding] = field(default_factory=list)
    evidence: EvidenceRecord | None = None
    message: str | None = None


@dataclass
class HostResult:
    host: Host
    state: HostState = HostState.PENDING
    message: str | None = None
    hint: str | None = None
    runs: list[CollectorRun] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.state in (HostState.OK, HostState.FAILED)

    @property
    def findings(self) -> list[Finding]:
        return [f for run in self.runs for f in run.findings]


@dataclass
class CollectionReport:
    hosts: list[HostResult]
    started_at: datetime
    ended_at: datetime

    @property
    def all_answered(self) -> bool:
        return all(h.answered for h in self.hosts)

    @property
    def failed_runs(self) -> int:
        """Runs that ended in an error of ours or of the link (not a command's own
        failure, which is evidence): `internal error`, `connection lost`."""
        return sum(1 for h in self.hosts for r in h.runs if r.status == RunStatus.ERROR)


class Recorder(Protocol):
    """Where results go as they happen. The engine streams each run's output into
    files under `evidence_root` and reports; it never writes the journal."""

    @property
    def evidence_root(self) -> Path: ...

    def host_failed(self, host: Host, error: HostError) -> None: ...

    def ran(self, run: CollectorRun) -> None:
        """A run with its evidence, finished: called from worker threads."""
        ...
