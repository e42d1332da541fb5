"""Redaction: secrets planted in real collector output captured over sshd (and in
commands, answers and notes) never reach a Markdown or JSON export, nor the
archive; the raw evidence keeps them; host redaction is consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook import paths
from runbook.drill.sshd_lab import SshdLab
from runbook.errors import SourceError
from runbook.incident.store import Incident, IncidentStore
from runbook.report import archive
from runbook.report.config import ConfigError, redact_patterns
from runbook.report.redact import KEY_MASK, MASK, Redactor, redactor
from tests.conftest import run_cli
from tests.fleet import lab_hosts
from tests.test_report import (  # noqa: F401 - `playbook` is an autouse fixture
    ACTOR,
    assert_tables_well_formed,
    collect,
    open_incident,
    parse,
    playbook,
    printing,
    run_step,
)

OOM = "[Sat Nov 29 09:40:00 2026] Out of memory: Killed process 4242 (java) total-vm:1kB"
GITHUB_TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
# Three captures, each with the OOM kill in the middle, so the ±3-line excerpt
# around the finding carries every planted secret into the report.
PLANTED = {
    "creds": ["export PGPASSWORD=hunter2", "MYSQL_PWD=sqlpw9 mysql -uroot -p'hunter3' -e 1",
              "curl -u admin:s3cret@files.example.internal/upload", OOM,
              "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
              "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
              "notify https://hooks.slack.com/services/T0001/B0001/abcDEFghiJKLmnoPQRstuVWX"],
    "tokens": ["Authorization: Bearer tok3nVALUE0123456789", f"git push https://{GITHUB_TOKEN}"
               "@github.com/acme/app", "slack bot xoxb-1234567890-ABCDEFGHIJ", OOM,
               "DATABASE_URL=postgres://app:dbpass77@db1.example.internal/app",
               "api_key=apik3y-555", "token: tkn-abc-999"],
    # The excerpt (lines 5-11) starts inside the key block: BEGIN is on line 1.
    "keys": ["-----BEGIN OPENSSH PRIVATE KEY-----",
             *[f"b3BlbnNzaC1rZXktdjEAAAAKEYBODY{i}AAAAAAAABAAAAMwAAAAtzc2gtZW" for i in range(5)],
             "-----END OPENSSH PRIVATE KEY-----", OOM, "peer {address} via 02:42:ac:11:00:02",
             "all quiet", "still quiet"],
}
SECRETS = ["hunter2", "hunter3", "sqlpw9", "s3cret", "AKIAIOSFODNN7EXAMPLE",
           "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "abcDEFghiJKLmnoPQRstuVWX",
           "tok3nVALUE0123456789", GITHUB_TOKEN, "xoxb-1234567890-ABCDEFGHIJ", "dbpass77",
           "apik3y-555", "tkn-abc-999", "KEYBODY", "BEGIN OPENSSH PRIVATE KEY", "n0t-for-you"]


def planted_incident(lab: SshdLab) -> Incident:
    hosts = lab_hosts(lab)[:2]
    incident = open_incident(hosts, title="secrets everywhere")
    collect(incident, hosts, [printing(name, lines) for name, lines in PLANTED.items()], lab)
    run_step(incident, "leak", lab)  # echo PGPASSWORD=hunter2 https://admin:s3cret@...
    incident.answer("impact", "the deploy printed password=hunter2 to the log", ACTOR)
    incident.note("rotated; old header was Authorization: Bearer n0t-for-you", ACTOR)
    return incident


def assert_clean(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"leaked: {leaked}"


# -- end to end: real captures, every export -------------------------------------------


def test_planted_secrets_never_reach_an_export(sshd_fleet: SshdLab, tmp_path: Path) -> None:
    incident = planted_incident(sshd_fleet)
    directory = IncidentStore().directory(incident.id)
    # The raw evidence and the journal keep every byte.
    raw = b"".join(p.read_bytes() for p in (directory / "evidence").rglob("*.stdout"))
    for secret in SECRETS[:-1]:
        assert secret.encode() in raw, secret
    assert b"n0t-for-you" in (directory / "events.jsonl").read_bytes()
    before = {p: p.read_bytes() for p in (directory / "evidence").rglob("*") if p.is_file()}

    exports = {f"markdown-{lang}": run_cli("report", incident.id, "--lang", lang).stdout
               for lang in ("en", "ja")}
    exports["json"] = run_cli("report", incident.id, "--json").stdout
    exports["hosts"] = run_cli("report", incident.id, "--redact-hosts").stdout

    for name, text in exports.items():
        assert_clean(text), name
    markdown = exports["markdown-en"]
    assert_tables_well_formed(parse(markdown))
    # What was masked is still visible as masked, key names kept.
    assert "PGPASSWORD=[REDACTED]" in markdown
    assert markdown.count(KEY_MASK) == 2 * 3  # per host: KEYBODY3, KEYBODY4, END (lines 5-7)
    assert "https://hooks.slack.com/[REDACTED]" in markdown
    assert f"Authorization: {MASK}" in markdown
    exported = json.loads(exports["json"])
    assert all("[REDACTED" in e["command"] for e in exported["evidence_index"]
               if e["kind"] == "collector")  # the printf command lines, too
    assert {p: p.read_bytes() for p in before} == before  # evidence untouched

    # The archive (indexed when the incident closes) holds no secret either.
    incident.resolve(ACTOR)
    archive.close(incident, ACTOR)
    archive_file = paths.runbook_home() / "archive.sqlite"
    assert_clean(archive_file.read_bytes().decode("utf-8", "replace"))


def test_no_redact_keeps_secrets_and_warns(sshd_fleet: SshdLab) -> None:
    incident = planted_incident(sshd_fleet)

    result = run_cli("report", incident.id, "--no-redact")

    assert "hunter2" in result.stdout and "KEYBODY3" in result.stdout
    assert "--no-redact" in result.stderr and "NOT masked" in result.stderr


def test_host_redaction_is_consistent_across_the_report(sshd_fleet: SshdLab) -> None:
    incident = planted_incident(sshd_fleet)
    names = re.compile(r"\blab[12]\b|127\.0\.0\.6[01]\b|02:42:ac:11:00:02")

    markdown = run_cli("report", incident.id, "--redact-hosts").stdout
    exported = run_cli("report", incident.id, "--json", "--redact-hosts").stdout

    assert not names.findall(markdown) and not names.findall(exported)
    doc = parse(markdown)
    assert [h for level, h in doc.headings if level == 4] == ["host-1", "host-2",
                                                              "Collection 1"]
    timeline = "\n".join(row[3] for row in doc.table_after("Timeline").rows)
    [collected] = [line for line in timeline.split("\n") if line.startswith("Collected")]
    assert "on 2 host(s)" in collected and "keys" in collected
    assert "Executed on host-1: exit 0" in timeline
    # The collection's runs, under supporting information, name the hosts the same way.
    runs = doc.table_after("Collection 1")
    assert {row[2] for row in runs.rows} == {"host-1", "host-2"}
    # the excerpt of each host shows its own address, mapped the same way everywhere
    for host, address in (("host-1", "10.0.0.x-1"), ("host-2", "10.0.0.x-2")):
        [fence] = [b for b in re.findall(r"<summary>(.*?)</details>", markdown, re.S)
                   if b.startswith(f"{host} · keys")]
        assert f"peer {address} via mac-1" in fence
    data = json.loads(exported)
    assert [(h["name"], h["address"]) for h in data["incident"]["hosts"]] == [
        ("host-1", "10.0.0.x-1"), ("host-2", "10.0.0.x-2")]
    assert data["redaction"]["hosts"] is True
    assert {e["host"] for e in data["evidence_index"]} == {"host-1", "host-2"}


# -- the rules, one by one ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret"), [
    ("PGPASSWORD=hunter2 psql", "hunter2"),
    ("export MYSQL_PWD='x y z'", "x y z"),
    ("mysql -uroot -p'hunter3' db", "hunter3"),
    ("mysqldump -psecretpw db", "secretpw"),
    ("psql --password hunter4", "hunter4"),
    ("app --password=hunter5 --token abcd", "hunter5"),
    ("password: hunter6", "hunter6"),
    ('{"password": "hunter7"}', "hunter7"),
    ("passwd: hunter8", "hunter8"),
    ("https://user:pw123@example.com/x", "pw123"),
    ("redis://:nopass42@cache:6379", "nopass42"),
    ("curl -u admin:s3cret https://x", "s3cret"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("curl -H 'authorization: token abc123def' x", "abc123def"),
    ("Bearer abcdef.ghijkl.mnop", "abcdef.ghijkl.mnop"),
    ("api_key=k-123", "k-123"),
    ("X-Api-Key: zz-999", "zz-999"),
    ("token=t0k3n", "t0k3n"),
    ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("ASIAXXXXXXXXXXXXXXXX", "ASIAXXXXXXXXXXXXXXXX"),
    ("AWS_SECRET_ACCESS_KEY=abc/def+ghi", "abc/def+ghi"),
    (GITHUB_TOKEN, GITHUB_TOKEN),
    ("xoxp-1111-2222-abcdefghij", "xoxp-1111-2222-abcdefghij"),
    ("https://hooks.slack.com/services/T1/B2/secretpath", "secretpath"),
    ("jwt eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "SflKxwRJSMeKKF2QT4"),
])
def test_each_kind_of_secret_is_masked(text: str, secret: str) -> None:
    assert secret not in Redactor().text(text)


@pytest.mark.parametrize("text", [
    "sar -u 1 3", "mkdir -p /var/tmp/x", "ssh -p 22 web1", "sort -u names", "PWD=/root",
    "load average 1.02 on 2 CPUs", "the token bucket refilled", "user@host", "ps -p 1",
    "2026-11-29 16:21:03Z", "Killed process 4242 (java)",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().text(text) == text


def test_a_key_block_is_masked_line_for_line_even_from_its_middle() -> None:
    lines = ["before", "-----BEGIN RSA PRIVATE KEY-----", "AAAA", "BBBB",
             "-----END RSA PRIVATE KEY-----", "after"]
    assert Redactor().window(lines, 3, 5) == [KEY_MASK, KEY_MASK, "after"]
    whole = Redactor().text("\n".join(lines))
    assert whole.split("\n") == ["before", *[KEY_MASK] * 4, "after"]
    cut_off = Redactor().text("x\n-----BEGIN EC PRIVATE KEY-----\nCCCC")  # truncated capture
    assert cut_off == f"x\n{KEY_MASK}\n{KEY_MASK}"


def test_hosts_map_to_the_same_placeholder_every_time() -> None:
    r = Redactor(secrets=False, hosts=True)
    r.know_hosts(["db1", "10.1.2.3", "web1.example.com"])
    first = r.text("db1 10.1.2.3 web1.example.com db10 fe80::1 AA:BB:CC:DD:EE:FF")
    second = r.text("fe80::0001 aa-bb-cc-dd-ee-ff DB1 10.1.2.3:22 0.0.0.0:22 localhost")
    assert first == "host-1 10.0.0.x-1 host-2 db10 ipv6-1 mac-1"
    assert second == "ipv6-1 mac-1 host-1 10.0.0.x-1:22 0.0.0.0:22 localhost"
    assert r.text("10:00:00 1.2.3.999 std::vector") == "10:00:00 1.2.3.999 std::vector"


# -- extra patterns from config.yaml ---------------------------------------------------------


def write_config(text: str) -> Path:
    path = paths.config_dir() / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_adds_patterns() -> None:
    write_config("other: setting\nredact:\n  - 'corp-[0-9]{4}'\n"
                 "  - 'session=(?P<secret>[0-9a-f]+)'\n")
    r = redactor()
    assert r.text("ticket corp-1234, session=deadbeef ok") == (
        f"ticket {MASK}, session={MASK} ok")


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("redact:\n  - 'fine'\n  - '(unclosed'\n", 3, "not a regular expression"),
    ("redact: 'one string'\n", 1, "expected a list"),
    ("redact:\n  - 'a*'\n", 2, "matches empty text"),
    ("redact:\n  - 42\n", 2, "as text"),
    ("redact: [\n", 2, "YAML syntax"),
])
def test_a_bad_config_names_file_and_line(text: str, line: int, problem: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        redact_patterns()
    assert isinstance(caught.value, SourceError)
    assert caught.value.file == str(path) and caught.value.line == line
    assert problem in caught.value.message


def test_a_bad_config_stops_the_export_with_a_message() -> None:
    from runbook.hosts import Host

    incident = open_incident([Host(name="localhost", address="localhost", local=True)])
    write_config("redact:\n  - '(unclosed'\n")
    result = run_cli("report", incident.id, check=False)
    assert result.returncode == 2
    assert "config.yaml:2: redact[0]: not a regular expression" in result.stderr
    assert result.stdout == ""
