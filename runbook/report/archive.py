"""A searchable archive of closed incidents: SQLite FTS5 in the data directory.

Closing an incident indexes it (`index_incident`, called from
`Incident.close`); `reindex` rebuilds the whole file from the journals, so the
archive is a cache that nothing depends on alone. What is indexed is redacted
for secrets like any export (host names stay: finding past incidents on the
same hosts is the point).

Decisions, and why:
- One FTS5 table with a column per kind of text (title, hosts, findings,
  commands ...) and bm25 weights per column: a word in the title or in a
  finding says more than the same word deep in the postmortem.
- Japanese has no spaces between words and unicode61 would index a whole run
  of kana and kanji as one token; CJK characters are indexed one per token and
  a query's CJK run becomes a phrase of them, which matches it as a substring.
- User queries are never passed to FTS5 as syntax: each word becomes a quoted
  phrase (an operator searching `--force` or `a.b` gets results, not an error).
- Ranking keeps to FTS5's own `ORDER BY rank LIMIT n` (computed inside FTS5),
  and snippets are made for the rows shown only.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook import paths
from runbook.clock import utc_iso
from runbook.errors import IncidentNotFound, RunbookError
from runbook.incident import EventType, IncidentState
from runbook.sanitize import clean_text

ARCHIVE_NAME = "archive.sqlite"
SCHEMA_VERSION = "1"
MARK_START, MARK_END = "\x02", "\x03"
TEXT_COLUMNS = ("title", "hosts", "roles", "findings", "answers", "notes", "commands",
                "postmortem")
WEIGHTS = (10.0, 4.0, 3.0, 5.0, 3.0, 2.0, 4.0, 1.0)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS incidents (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, title TEXT, severity TEXT,
    status TEXT, drill INTEGER, playbook TEXT, opened_at TEXT, resolved_at TEXT,
    closed_at TEXT, hosts TEXT, roles TEXT, resources TEXT, remediation TEXT,
    findings TEXT, answers TEXT, indexed_at TEXT);
CREATE VIRTUAL TABLE IF NOT EXISTS incident_text USING fts5(
    {", ".join(TEXT_COLUMNS)}, tokenize = 'unicode61 remove_diacritics 2');
"""

_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
                  r"\uac00-\ud7af])")
_CJK_GAP = re.compile(r"(?<=[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
                      r"\uac00-\ud7af\x02\x03]) +(?=[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                      r"\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af\x02\x03])")


def archive_path() -> Path:
    return paths.runbook_home() / ARCHIVE_NAME


def _spaced(text: str) -> str:
    """CJK characters as separate tokens (see the module docstring)."""
    return _CJK.sub(r" \1 ", text) if _CJK.search(text) else text


@dataclass
class Document:
    """What the archive keeps of one incident."""

    id: str
    title: str
    severity: str
    status: str
    drill: bool
    playbook: str
    opened_at: str | None
    resolved_at: str | None
    closed_at: str | None
    hosts: list[str]
    roles: list[str]
    resources: list[str]
    remediation: list[dict[str, Any]]
    findings: list[str]
    answers: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)  # one per TEXT_COLUMNS


@dataclass
class Hit:
    id: str
    title: str
    severity: str
    closed_at: str | None
    hosts: list[str]
    rank: float
    snippet: str  # matches between MARK_START and MARK_END
    remediation: list[dict[str, Any]]

    def marked(self, start: str = "**", end: str = "**") -> str:
        return self.snippet.replace(MARK_START, start).replace(MARK_END, end)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["snippet"] = self.marked()
        return data


# -- building a document from the journal -------------------------------------------


def document(state: IncidentState, incident_dir: Path | None = None) -> Document:
    from runbook.report.postmortem import incident_directory, render
    from runbook.report.redact import redactor

    clean = redactor(secrets=True, hosts=False)
    directory = incident_dir or incident_directory(state)
    # Rendered as of the close, so a reindex reproduces the same text.
    postmortem = render(state, redaction=clean, incident_dir=directory,
                        now=state.closed_at or state.last_activity)
    hosts = list(dict.fromkeys(
        n for h in state.hosts for n in (h.name, h.address, h.jump) if n))
    roles = sorted({h.role for h in state.hosts if h.role})
    findings = [f"{f.get('level')} {f.get('host') or run.get('host')} {run.get('collector')} "
                f"{f.get('resource')}: {f.get('summary')}"
                for run in state.evidence for f in run.get("findings") or []
                if f.get("level") != "info"]
    resources = sorted({str(f.get("resource")) for run in state.evidence
                        for f in run.get("findings") or [] if f.get("level") != "info"})
    commands: list[str] = []
    remediation: list[dict[str, Any]] = []
    for command in state.commands.values():
        commands += [command.command, *command.commands.values()]
        for result in command.results:
            if result.get("exit_code") == 0:
                remediation.append({"command": str(result.get("command") or command.command),
                                    "host": str(result.get("host")), "step": command.step,
                                    "at": utc_iso(result.get("ts"))})
    notes = [str(n.data.get("text", "")) for n in state.notes]
    answers = dict(state.answers)
    resolved = [str(e.data["summary"]) for e in state.events
                if e.type == EventType.RESOLVED and e.data.get("summary")]
    doc = Document(
        id=state.id, title=state.title, severity=state.severity, status=str(state.status),
        drill=state.drill, playbook=state.playbook_name, opened_at=utc_iso(state.opened_at),
        resolved_at=utc_iso(state.resolved_at), closed_at=utc_iso(state.closed_at), hosts=hosts,
        roles=roles, resources=resources, remediation=remediation, findings=findings,
        answers=answers, texts={
            "title": state.title, "hosts": " ".join(hosts), "roles": " ".join(roles),
            "findings": "\n".join(findings),
            "answers": "\n".join(f"{k}: {v}" for k, v in answers.items()),
            "notes": "\n".join(notes + resolved), "commands": "\n".join(dict.fromkeys(commands)),
            "postmortem": postmortem})
    # Secrets out of everything kept; the postmortem is already redacted.
    redacted = clean.value({k: v for k, v in asdict(doc).items() if k != "texts"})
    texts = {k: (v if k == "postmortem" else clean.text(clean_text(v)))
             for k, v in doc.texts.items()}
    return Document(**{**redacted, "texts": texts})


# -- the index ------------------------------------------------------------------------


class Archive:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or archive_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=10)
        self.db.row_factory = sqlite3.Row
        self._ensure_schema()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        with self.db:
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                weights = ", ".join(str(w) for w in WEIGHTS)
                self.db.execute("INSERT INTO incident_text(incident_text, rank) "
                                "VALUES ('rank', ?)", (f"bm25({weights})",))
            elif row["value"] != SCHEMA_VERSION:
                raise RunbookError(f"the archive {self.path} was written by another runbook "
                                   "version", "rebuild it: runbook history reindex")

    def add(self, doc: Document) -> None:
        """Index one incident, replacing what was indexed for it before."""
        with self.db:
            self._delete(doc.id)
            cursor = self.db.execute(
                "INSERT INTO incidents (id, title, severity, status, drill, playbook, "
                "opened_at, resolved_at, closed_at, hosts, roles, resources, remediation, "
                "findings, answers, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (doc.id, doc.title, doc.severity, doc.status, int(doc.drill), doc.playbook,
                 doc.opened_at, doc.resolved_at, doc.closed_at, json.dumps(doc.hosts),
                 json.dumps(doc.roles), json.dumps(doc.resources),
                 json.dumps(doc.remediation, ensure_ascii=False),
                 json.dumps(doc.findings, ensure_ascii=False),
                 json.dumps(doc.answers, ensure_ascii=False), utc_iso(datetime.now(UTC))))
            self.db.execute(
                f"INSERT INTO incident_text (rowid, {', '.join(TEXT_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' for _ in TEXT_COLUMNS)})",
                (cursor.lastrowid, *(_spaced(doc.texts.get(c, "")) for c in TEXT_COLUMNS)))

    def _delete(self, incident_id: str) -> None:
        row = self.db.execute("SELECT rowid FROM incidents WHERE id = ?",
                              (incident_id,)).fetchone()
        if row is not None:
            self.db.execute("DELETE FROM incident_text WHERE rowid = ?", (row["rowid"],))
            self.db.execute("DELETE FROM incidents WHERE rowid = ?", (row["rowid"],))

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM incidents").fetchone()[0])

    def search(self, text: str, limit: int = 20) -> list[Hit]:
        query = fts_query(text)
        if not query:
            raise RunbookError("nothing to search for", "give a word, a host or a command")
        return self._hits(query, limit)

    def _hits(self, query: str, limit: int, exclude: str | None = None) -> list[Hit]:
        ranked = self.db.execute(
            "SELECT rowid, rank FROM incident_text WHERE incident_text MATCH ? "
            "ORDER BY rank LIMIT ?", (query, limit + (1 if exclude else 0))).fetchall()
        hits = []
        for row in ranked:
            meta = self.db.execute("SELECT * FROM incidents WHERE rowid = ?",
                                   (row["rowid"],)).fetchone()
            if meta is None or meta["id"] == exclude:
                continue
            snippet = self.db.execute(
                "SELECT snippet(incident_text, -1, ?, ?, '…', 16) FROM incident_text "
                "WHERE incident_text MATCH ? AND rowid = ?",
                (MARK_START, MARK_END, query, row["rowid"])).fetchone()[0]
            hits.append(Hit(id=meta["id"], title=meta["title"], severity=meta["severity"],
                            closed_at=meta["closed_at"], hosts=json.loads(meta["hosts"]),
                            rank=row["rank"], snippet=_unspaced(snippet or ""),
                            remediation=json.loads(meta["remediation"])))
        return hits[:limit]

    def get(self, text: str) -> dict[str, Any]:
        """One archived incident by id, unique prefix or 4-character suffix."""
        rows = self.db.execute("SELECT * FROM incidents WHERE id = ?", (text,)).fetchall() or \
            self.db.execute("SELECT * FROM incidents WHERE id LIKE ? ESCAPE '\\' "
                            "OR id LIKE ? ESCAPE '\\' LIMIT 6",
                            (f"{_like(text)}%", f"%-{_like(text)}")).fetchall()
        if not rows:
            raise IncidentNotFound(f"no archived incident {text!r}",
                                   "search with `runbook history search WORDS`; closed "
                                   "incidents are archived (runbook history reindex)")
        if len(rows) > 1:
            raise IncidentNotFound(f"{text!r} matches {len(rows)} archived incidents: "
                                   f"{', '.join(r['id'] for r in rows[:5])}",
                                   "give more of the id")
        row = rows[0]
        record: dict[str, Any] = {k: v for k, v in dict(row).items() if k != "rowid"}
        for key in ("hosts", "roles", "resources", "remediation", "findings", "answers"):
            record[key] = json.loads(record[key])
        record["drill"] = bool(record["drill"])
        text_row = self.db.execute(f"SELECT {', '.join(TEXT_COLUMNS)} FROM incident_text "
                                   "WHERE rowid = ?", (row["rowid"],)).fetchone()
        record["notes"] = _unspaced(text_row["notes"]) if text_row else ""
        record["postmortem"] = _unspaced(text_row["postmortem"]) if text_row else ""
        return record

    def rows(self) -> list[dict[str, Any]]:
        """Every archived record (for comparisons and exports), without index times."""
        result = []
        for row in self.db.execute("SELECT i.*, " + ", ".join(f"t.{c} AS text_{c}"
                                                              for c in TEXT_COLUMNS)
                                   + " FROM incidents i JOIN incident_text t "
                                   "ON t.rowid = i.rowid ORDER BY i.id"):
            result.append({k: v for k, v in dict(row).items()
                           if k not in ("rowid", "indexed_at")})
        return result

    def similar(self, state: IncidentState, limit: int = 5) -> list[dict[str, Any]]:
        hosts = {n for h in state.hosts for n in (h.name, h.address) if n}
        roles = {h.role for h in state.hosts if h.role}
        resources = {str(f.get("resource")) for run in state.evidence
                     for f in run.get("findings") or [] if f.get("level") != "info"}
        parts = []
        for column, values in (("hosts", hosts), ("roles", roles), ("findings", resources)):
            phrases = sorted({p for p in map(_phrase, values) if p})
            if phrases:
                parts.append(f"{column} : ({' OR '.join(phrases)})")
        if not parts:
            return []
        candidates = self._hits(" OR ".join(parts), limit * 5, exclude=state.id)
        scored = []
        for hit in candidates:
            record = self.get(hit.id)
            shared = {"hosts": sorted(hosts & set(record["hosts"])),
                      "roles": sorted(roles & set(record["roles"])),
                      "resources": sorted(resources & set(record["resources"]))}
            score = 3 * len(shared["hosts"]) + 2 * len(shared["roles"]) + len(
                shared["resources"])
            scored.append((-score, hit.rank, {
                "id": hit.id, "title": hit.title, "severity": hit.severity,
                "closed_at": hit.closed_at, "score": score, "shared": shared,
                "remediation": hit.remediation}))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [entry for _, _, entry in scored[:limit]]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _unspaced(text: str) -> str:
    """Index spacing out of CJK text, and one mark around a run of marked characters."""
    if not _CJK.search(text):
        return text
    return _CJK_GAP.sub("", text).replace(MARK_END + MARK_START, "")


def _phrase(text: str) -> str:
    words = re.findall(r"\w+", _spaced(text))
    return '"' + " ".join(words) + '"' if words else ""


def fts_query(text: str) -> str:
    """An operator's words as a safe FTS5 query: every word or "quoted phrase" must
    match (AND), `OR` between two of them allows either, `word*` is a prefix."""
    parts: list[str] = []
    pending_or = False
    for token in re.findall(r'"[^"]*"|\S+', text):
        if token == "OR":
            pending_or = bool(parts)
            continue
        prefix = token.endswith("*") and not token.startswith('"')
        phrase = _phrase(token.strip('"').rstrip("*"))
        if not phrase:
            continue
        if parts:
            parts.append("OR" if pending_or else "AND")
        parts.append(phrase + ("*" if prefix else ""))
        pending_or = False
    return " ".join(parts)


# -- entry points ------------------------------------------------------------------------


@contextmanager
def opened(path: Path | None = None) -> Iterator[Archive]:
    archive = Archive(path)
    try:
        yield archive
    finally:
        archive.close()


def close(incident: Any, actor: str) -> Any:
    """Close the incident, then index it for `runbook history`. Indexing never
    blocks closing: a failure is only logged, and `runbook history reindex`
    rebuilds the archive from the journals. Returns the closing event."""
    event = incident.close(actor)
    try:
        index_incident(incident.store, incident.id)
    except Exception:  # noqa: BLE001 - the incident is closed whatever happens here
        from runbook.bugs import log_exception

        log_exception(f"archive index of incident {incident.id}")
    return event


def index_incident(store: Any, incident_id: str, path: Path | None = None) -> Document:
    """Index one incident from its journal (after `close`, or on reindex)."""
    state = store.load(incident_id)
    doc = document(state, store.directory(incident_id))
    with opened(path) as archive:
        archive.add(doc)
    return doc


@dataclass
class ReindexReport:
    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not closed
    failed: list[str] = field(default_factory=list)


def reindex(store: Any = None, path: Path | None = None) -> ReindexReport:
    """Rebuild the archive from the journals of every closed incident. The new file
    replaces the old one whole, so a search never sees it half built."""
    from runbook.bugs import log_exception
    from runbook.incident.store import IncidentStore

    store = store or IncidentStore()
    target = path or archive_path()
    building = target.with_name(target.name + ".building")
    building.unlink(missing_ok=True)
    report = ReindexReport()
    with opened(building) as archive:
        for incident_id in store.ids():
            try:
                state = store.load(incident_id)
                if str(state.status) != "closed":
                    report.skipped.append(incident_id)
                    continue
                archive.add(document(state, store.directory(incident_id)))
                report.indexed.append(incident_id)
            except RunbookError:
                raise
            except Exception:  # noqa: BLE001 - one bad journal must not stop the rebuild
                log_exception(f"archive reindex of {incident_id}")
                report.failed.append(incident_id)
    os.replace(building, target)
    return report


def search(text: str, limit: int = 20, path: Path | None = None) -> list[Hit]:
    with opened(path) as archive:
        return archive.search(text, limit)


def similar(state: IncidentState, limit: int = 5, path: Path | None = None
            ) -> list[dict[str, Any]]:
    """Past incidents like this one, by shared hosts, host roles and finding
    resources (for the TUI's scope stage). Never raises for a missing archive."""
    target = path or archive_path()
    if not target.exists():
        return []
    with opened(target) as archive:
        return archive.similar(state, limit)


def what_worked(remediation: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Commands that exited 0, each with the hosts it worked on, in first-run order."""
    grouped: dict[str, list[str]] = {}
    for entry in remediation:
        hosts = grouped.setdefault(str(entry.get("command", "")), [])
        if entry.get("host") not in hosts:
            hosts.append(str(entry.get("host")))
    return list(grouped.items())
