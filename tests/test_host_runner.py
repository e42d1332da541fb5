"""The host runner (runbook/transport/host_runner.sh): one shell per host.

Part one runs the runner in each shell it promises to work with (dash, bash,
busybox sh with busybox's own tools), over a pipe instead of SSH: the runner is
the same, only the byte stream differs. Part two runs whole collections over
real sshd daemons whose login shells cost what real ones do, and looks at what
the operator and the host would see: sessions opened, timeouts, leftovers.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from runbook.collection.collect import JournalRecorder
from runbook.drill.sshd_lab import SshdLab
from runbook.engine.catalog import BY_NAME, Collector
from runbook.engine.runner import Collection, CollectOptions, RunStatus
from runbook.incident.store import IncidentStore
from runbook.playbook import find_playbook
from runbook.transport.base import HostState
from runbook.transport.runner_session import BOOTSTRAP, RunnerSession
from tests.fleet import LOGIN_COST, lab_hosts, lab_options, start_lab
from tests.test_collect_ssh import Collected, collect, probe, still_running

# -- the runner in each shell, over a pipe -------------------------------------------

BUSYBOX_TOOLS = ("sh", "awk", "od", "head", "wc", "tr", "setsid", "sleep", "kill", "dd",
                 "cat", "printf", "id", "seq")


class PipeStream:
    """The runner's byte stream over a local pipe (where SSH would carry it)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def recv(self, size: int) -> bytes:
        assert self.process.stdout is not None
        return os.read(self.process.stdout.fileno(), size)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()


def shells(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    for name in ("dash", "bash"):
        path = shutil.which(name)
        if path:
            found.append((path, {}))
    busybox = shutil.which("busybox")
    if busybox:
        # busybox's own sh, awk, od, head... first on PATH: what an Alpine host has.
        tools = tmp_path_factory.mktemp("busybox-bin")
        for tool in BUSYBOX_TOOLS:
            (tools / tool).symlink_to(busybox)
        found.append((str(tools / "sh"), {"PATH": f"{tools}:{os.environ['PATH']}"}))
    return found


def start_runner(shell: str, env: dict[str, str], before: str = "") -> RunnerSession:
    """The runner started as an SSH login shell would start it, after `before`."""
    process = subprocess.Popen(
        [shell, "-c", before + BOOTSTRAP.replace("exec /bin/sh -c", f"exec {shell} -c")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, **env})
    return RunnerSession(PipeStream(process), start_timeout=10)


@pytest.fixture(params=["dash", "bash", "busybox"])
def runner(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerSession]:
    available = {("busybox" if "busybox-bin" in path else Path(path).name): (path, env)
                 for path, env in shells(tmp_path_factory)}
    if request.param not in available:
        pytest.skip(f"{request.param} is not installed")
    session = start_runner(*available[request.param])
    try:
        yield session
    finally:
        session.close()


def run(session: RunnerSession, command: str, timeout: float = 10,
        cap: int | None = None) -> tuple[object, bytes, bytes]:
    out, err = bytearray(), bytearray()
    outcome = session.run(command, timeout=timeout, on_stdout=out.extend,
                          on_stderr=err.extend, cap=cap)
    return outcome, bytes(out), bytes(err)


def test_output_comes_back_byte_exact_in_every_shell(runner: RunnerSession) -> None:
    cases = {
        "echo hi; echo err >&2; exit 3": (3, b"hi\n", b"err\n"),
        "printf 'no newline'": (0, b"no newline", b""),
        "true": (0, b"", b""),
        r"printf '\000\377\376a\n\n'": (0, b"\x00\xff\xfea\n\n", b""),
        "printf '%0700d\\n' 0; printf '%03000d' 7 >&2": (0, b"0" * 700 + b"\n",
                                                        b"0" * 2999 + b"7"),
        "printf \"it's \\\"quoted\\\" \\$HOME\\n\"": (0, b"it's \"quoted\" $HOME\n", b""),
        "printf 'one\\n'\nprintf 'two\\n'": (0, b"one\ntwo\n", b""),
    }
    for command, (code, stdout, stderr) in cases.items():
        outcome, out, err = run(runner, command)
        assert (outcome.exit_code, out, err) == (code, stdout, stderr), command  # type: ignore[attr-defined]


def test_a_login_shell_that_prints_on_the_way_in_does_not_confuse_the_runner() -> None:
    """rc files that echo (a banner, `pyenv` warnings) write to the session's
    stdout before the runner starts: their lines are not frames, and are dropped."""
    session = start_runner("/bin/sh", {}, before="echo 'Welcome to prod-db-1'; echo 'o 1 41'; ")
    try:
        outcome, out, err = run(session, "echo real")
        assert (outcome.exit_code, out, err) == (0, b"real\n", b"")  # type: ignore[attr-defined]
    finally:
        session.close()


def test_concurrent_commands_never_mix_their_output(runner: RunnerSession) -> None:
    """Ten commands printing at once, lines of every length, into one stream."""
    def command(i: int) -> str:
        return (f"i=0; while [ $i -lt 200 ]; do printf '%0{(i * 397) % 3000 + 1}d\\n' $i; "
                f"printf 'E{i}-%d ' $i >&2; i=$((i+1)); done")

    results: dict[int, tuple[object, bytes, bytes]] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, run(runner,
                                                                              command(i))))
               for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i in range(10):
        expected = subprocess.run(["sh", "-c", command(i)], capture_output=True, check=True)
        outcome, out, err = results[i]
        assert (outcome.exit_code, out, err) == (0, expected.stdout, expected.stderr)  # type: ignore[attr-defined]


def test_a_timeout_counts_on_the_host_and_stops_the_whole_group(
        runner: RunnerSession) -> None:
    duration = f"6666.{secrets.randbelow(10**6):06d}"
    started = time.monotonic()
    outcome, out, _ = run(runner, f"echo started; sleep {duration} & sleep {duration}",
                          timeout=1)
    assert outcome.timed_out and outcome.stopped_remotely  # type: ignore[attr-defined]
    assert out == b"started\n"
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while still_running(["sleep", duration]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert still_running(["sleep", duration]) == [], "the command or its child outlived it"


def test_what_a_command_leaves_behind_stops_with_it_unless_asked_to_stay() -> None:
    """A collector's stray background process is stopped with it; a remediation
    (keep_background) may start a service by hand, and that one stays."""
    session = start_runner("/bin/sh", {})
    stray, kept = (f"{n}.{secrets.randbelow(10**6):06d}" for n in (2221, 2222))
    try:
        for duration, keep in ((stray, False), (kept, True)):
            outcome = session.run(f"sleep {duration} & echo started", timeout=30,
                                  on_stdout=lambda _d: None, on_stderr=lambda _d: None,
                                  keep_background=keep)
            assert outcome.exit_code == 0 and not outcome.timed_out
        deadline = time.monotonic() + 5
        while still_running(["sleep", stray]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert still_running(["sleep", stray]) == [], "a collector's leftover outlived it"
        assert len(still_running(["sleep", kept])) == 1, "a remediation's service was stopped"
    finally:
        session.close()
        for pid in still_running(["sleep", kept]):
            os.kill(pid, 9)


def test_output_past_the_cap_is_counted_not_sent(runner: RunnerSession) -> None:
    outcome, out, _ = run(runner, "head -c 5000000 /dev/zero | tr '\\0' a", cap=1001)
    assert outcome.exit_code == 0  # type: ignore[attr-defined]
    assert outcome.stdout_total == 5_000_000  # type: ignore[attr-defined]
    # what was sent stops near the cap (od lines are 16 bytes)
    assert 1001 <= len(out) < 1001 + 512 and set(out) == {ord("a")}


def test_a_stream_of_one_od_line_and_a_tiny_cap_are_framed_exactly(runner: RunnerSession) -> None:
    # The runner reads the first line of od's output itself and hands it to awk:
    # the edges are a stream of exactly one line (16 bytes), one byte more, and
    # a cap that falls inside that first line.
    for size in (1, 16, 17, 33):
        outcome, out, err = run(runner, f"head -c {size} /dev/zero | tr '\\0' b >&2")
        assert (outcome.exit_code, out, err) == (0, b"", b"b" * size)  # type: ignore[attr-defined]
        assert outcome.stderr_total == size and outcome.stdout_total == 0  # type: ignore[attr-defined]
    outcome, out, _ = run(runner, "printf abcdefghijklmnopqrstuvwxyz", cap=3)
    assert outcome.stdout_total == 26 and out == b"abcdefghijklmnop"  # type: ignore[attr-defined]


def test_a_stop_reaches_a_command_that_runs_no_timeout(runner: RunnerSession) -> None:
    duration = f"5555.{secrets.randbelow(10**6):06d}"
    results: list[tuple[object, bytes, bytes]] = []
    worker = threading.Thread(target=lambda: results.append(
        run(runner, f"echo up; sleep {duration}", timeout=600)))
    worker.start()
    deadline = time.monotonic() + 10
    while not still_running(["sleep", duration]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runner.stop_running()
    worker.join(10)
    [(outcome, out, _)] = results
    assert out == b"up\n" and outcome.exit_code == 143  # type: ignore[attr-defined]
    assert still_running(["sleep", duration]) == []


# -- whole collections over sshd with a login shell that costs ---------------------------


@pytest.fixture(scope="module")
def costly_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdLab]:
    """Three sshd hosts whose login shell burns LOGIN_COST of CPU, as rc files do."""
    lab = start_lab(tmp_path_factory.mktemp("costly-fleet"), 3, 150, login_cost=LOGIN_COST)
    try:
        yield lab
    finally:
        lab.stop()


def sessions_started(lab: SshdLab) -> dict[str, int]:
    """Shells sshd started per host, from its own log (LogLevel VERBOSE)."""
    return {host.name: len(re.findall(r"Starting session: ",
                                      (host.directory / "sshd.log").read_text()))
            for host in lab.hosts}


def test_the_lab_shell_really_costs_what_it_says(costly_fleet: SshdLab) -> None:
    """The lab must pay the cost a real host pays: one `ssh host true` costs the rc."""
    host = costly_fleet.hosts[0]
    started = time.monotonic()
    subprocess.run(["ssh", "-q", "-i", str(costly_fleet.client_key),
                    "-o", f"UserKnownHostsFile={costly_fleet.known_hosts}",
                    "-o", "BatchMode=yes", "-p", str(host.port),
                    f"{costly_fleet.user}@{host.address}", "true"], check=True, timeout=30)
    assert time.monotonic() - started >= LOGIN_COST


def test_a_full_collection_opens_at_most_two_sessions_per_host(costly_fleet: SshdLab) -> None:
    before = sessions_started(costly_fleet)
    hosts = lab_hosts(costly_fleet)

    done = collect(hosts, [c for c in BY_NAME.values()], lab_options(costly_fleet))

    after = sessions_started(costly_fleet)
    opened = {name: after[name] - before[name] for name in after}
    assert all(1 <= n <= 2 for n in opened.values()), opened
    timed_out = [(r.host, r.collector) for h in done.report.hosts for r in h.runs
                 if r.status == RunStatus.TIMEOUT]
    assert timed_out == [], "no command of a full bundle takes its timeout here"
    assert all(h.state in (HostState.OK, HostState.FAILED) for h in done.report.hosts)


def test_one_command_hanging_on_one_host_is_the_only_timeout(costly_fleet: SshdLab) -> None:
    duration = f"4444.{secrets.randbelow(10**6):06d}"
    hosts = lab_hosts(costly_fleet)
    sick = hosts[1]
    hang = probe("hang", f"if [ {{address}} = {sick.address} ]; then sleep {duration}; fi; "
                         "echo fine", timeout=2)
    quick = [probe(f"quick{i}", f"echo quick{i}", timeout=2) for i in range(6)]
    collectors = [hang, *quick, *(BY_NAME[n] for n in ("uptime", "ps", "free", "df", "w"))]

    done = collect(hosts, collectors, lab_options(costly_fleet), per_host=1)

    runs = [(h.host.name, r.collector, r.status) for h in done.report.hosts for r in h.runs]
    assert [(host, name) for host, name, status in runs if status != RunStatus.OK] == [
        (sick.name, "hang")]
    assert done.run(sick.name, "hang").status == RunStatus.TIMEOUT
    assert done.run(sick.name, "hang").message == "timed out after 2s; stopped on the host"
    assert still_running(["sleep", duration]) == [], "the hung command is gone from the host"
    assert len(runs) == len(hosts) * len(collectors)


def test_waiting_behind_a_slow_command_is_not_a_timeout(costly_fleet: SshdLab) -> None:
    """With one command at a time, quick commands wait three seconds behind a
    slow one: their one-second timeout starts when they start, not when queued."""
    host = lab_hosts(costly_fleet)[0]
    slow = probe("slow", "sleep 3; echo slow", timeout=10)
    quick = [probe(f"quick{i}", f"echo quick{i}", timeout=1) for i in range(3)]

    done = collect([host], [slow, *quick], lab_options(costly_fleet), per_host=1)

    assert [(r.collector, r.status) for r in done.host(host.name).runs] == [
        ("slow", RunStatus.OK), *((q.name, RunStatus.OK) for q in quick)]


def test_at_most_n_commands_at_once_while_samplers_overlap(costly_fleet: SshdLab) -> None:
    host = lab_hosts(costly_fleet)[2]
    stamp = "echo start $(date +%s.%N); sleep 0.6; echo end $(date +%s.%N)"
    plain = [probe(f"plain{i}", stamp) for i in range(4)]
    samplers = [Collector(f"sampler{i}", stamp, "test", "a sampler", samples_for=1)
                for i in range(3)]

    done = collect([host], [*plain, *samplers], lab_options(costly_fleet))

    def spans(names: list[str]) -> list[tuple[float, float]]:
        found = []
        for name in names:
            times = re.fullmatch(rb"start (\S+)\nend (\S+)\n", done.stdout(host.name, name))
            assert times
            found.append((float(times[1]), float(times[2])))
        return found

    def most_at_once(found: list[tuple[float, float]]) -> int:
        return max(sum(1 for s, e in found if s <= start < e) for start, _ in found)

    assert most_at_once(spans([c.name for c in plain])) == 2  # the default, per host
    sampled = spans([c.name for c in samplers])
    assert max(s for s, _ in sampled) < min(e for _, e in sampled), "samplers overlap"


def test_a_host_that_drops_reports_what_never_started_as_not_run(
        costly_fleet: SshdLab) -> None:
    host = lab_hosts(costly_fleet)[0]
    duration = f"3333.{secrets.randbelow(10**6):06d}"
    # 100 KB first: output travels in blocks (od's), so a little still on the host
    # when the link dies is lost with it; what crossed is kept.
    long_one = probe("long", f"head -c 100000 /dev/zero | tr '\\0' b; sleep {duration}",
                     timeout=60)
    queued = [probe(f"queued{i}", "echo never", timeout=60) for i in range(2)]
    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=[host],
                            title="drop", actor="tester@lab")
    collection = Collection(JournalRecorder(incident), [host], [long_one, *queued],
                            CollectOptions(ssh=lab_options(costly_fleet), per_host=1))
    reports = []
    worker = threading.Thread(target=lambda: reports.append(collection.run()))
    worker.start()
    deadline = time.monotonic() + 20
    while not still_running(["sleep", duration]):
        assert time.monotonic() < deadline, "the long command never started"
        time.sleep(0.05)
    # The connection's own sshd process dies: what a host crash or a cut link does.
    [connection] = costly_fleet.hosts[0].connections()
    connection.kill()
    worker.join(30)
    assert not worker.is_alive()
    done = Collected(reports[0], incident.id)
    long_run = done.run(host.name, "long")
    assert long_run.status == RunStatus.ERROR and "connection lost" in (long_run.message or "")
    kept = done.stdout(host.name, "long")
    assert len(kept) >= 50_000 and kept == b"b" * len(kept), "what reached us is kept"
    for name in ("queued0", "queued1"):
        never = done.run(host.name, name)
        assert never.status == RunStatus.NOT_RUN, (name, never.status, never.message)
        assert never.message and never.message.startswith("not run: ")
        assert "timed out" not in never.message
    deadline = time.monotonic() + 10
    while still_running(["sleep", duration]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert still_running(["sleep", duration]) == [], "the runner stopped it when its channel closed"


def test_kill_9_of_the_collection_leaves_nothing_running_on_any_host(
        costly_fleet: SshdLab, tmp_path: Path) -> None:
    """The operator's process dies without a word (kill -9, a closed laptop): every
    host's runner sees its channel close and stops what it started, samplers and a
    command blocked on a FIFO alike, within 2 s."""
    fifo = tmp_path / f"app-{secrets.token_hex(4)}.log"
    os.mkfifo(fifo)  # `tail` opening it blocks until a writer comes: never
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(costly_fleet.inventory_yaml())
    collect_cli = subprocess.Popen(
        [sys.executable, "-m", "runbook", "collect", "-i", str(inventory),
         "--known-hosts", str(costly_fleet.known_hosts), "-c", "vmstat", "-c", "pidstat",
         "-c", "mpstat", "-c", "app-logs", "--app-log", str(fifo),
         *(h.name for h in costly_fleet.hosts)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def on_hosts() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for host in costly_fleet.hosts:
            for connection in host.connections():
                with contextlib.suppress(psutil.Error):
                    found.setdefault(host.name, []).extend(
                        " ".join(p.cmdline()) for p in connection.children(recursive=True))
        return found

    try:
        deadline = time.monotonic() + 30
        while True:
            running = on_hosts()
            if len(running) == 3 and all(
                    any(str(fifo) in c for c in cmds) and any("vmstat 1" in c for c in cmds)
                    for cmds in running.values()):
                break
            assert time.monotonic() < deadline, f"the commands never all started: {running}"
            time.sleep(0.05)
        collect_cli.send_signal(signal.SIGKILL)
        collect_cli.wait(10)
        time.sleep(3)
        assert on_hosts() == {}, "left running on the hosts after kill -9"
        leftovers = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
                     if str(fifo) in " ".join(p.info["cmdline"] or [])]
        assert leftovers == []
    finally:
        collect_cli.kill()


def test_sudo_runs_what_sudoers_allows_and_falls_back_where_it_refuses() -> None:
    """The operator logs in as a plain user: collectors that need root go through
    `sudo -n`; where sudoers refuses, the collector runs without root and says so."""
    from tests.fleet import OPERATOR, operator_lab

    allowed_probe = probe("as-root", "id -u", needs_root=True)
    refused_probe = probe("not-allowed", "id -un", needs_root=True)
    plain_probe = probe("plain", "id -un")
    with operator_lab(170, sudo_allowed=["id -u", "dmesg *"]) as lab:
        [host] = lab_hosts(lab)
        done = collect([host], [allowed_probe, refused_probe, plain_probe, BY_NAME["dmesg"],
                                BY_NAME["recent-config"]], lab_options(lab))

    assert done.stdout(host.name, "plain") == f"{OPERATOR}\n".encode(), "not logged in as root"
    allowed = done.run(host.name, "as-root")
    assert (allowed.status, allowed.message) == (RunStatus.OK, None)
    assert done.stdout(host.name, "as-root") == b"0\n"
    assert done.evidence(host.name, "as-root").command.startswith("sudo -n ")

    refused = done.run(host.name, "not-allowed")
    assert refused.message == "sudo -n refused: ran without root, output may be partial"
    assert done.stdout(host.name, "not-allowed") == f"{OPERATOR}\n".encode()
    attempts = done.evidence(host.name, "not-allowed").attempts
    assert [a["command"].startswith("sudo -n ") for a in attempts] == [True, False]

    dmesg = done.run(host.name, "dmesg")
    assert dmesg.status == RunStatus.OK and dmesg.message is None
    assert done.evidence(host.name, "dmesg").command.startswith("sudo -n ")
    changed = done.run(host.name, "recent-config")
    assert changed.message == "sudo -n refused: ran without root, output may be partial"
