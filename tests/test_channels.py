"""Announcement channels against real servers: a local HTTP server stands in for
Slack and a webhook, aiosmtpd receives mail over STARTTLS with a login. Secrets
never reach the journal; a failed send is recorded unsent and can be resent."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runbook import paths
from runbook.announce.channels import (
    TEMPLATES,
    ChannelConfigError,
    SmtpChannel,
    SmtpConfig,
    channel_from_spec,
    load_channels,
)
from runbook.drill.sshd_lab import free_port
from runbook.incident.store import IncidentStore
from runbook.templating import check_template, render_text
from tests.conftest import run_cli

SLACK_SECRET = "T000-B111-sl4ck-s3cret"
HOOK_TOKEN = "h00k-t0ken-s3cret"
SMTP_PASSWORD = "m4il-p4ss"


@dataclass
class Capture:
    posts: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    failing: bool = False
    url: str = ""


@pytest.fixture
def capture() -> Iterator[Capture]:
    captured = Capture()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if captured.failing:
                self._send(503, b"service unavailable at " + self.path.encode())
                return
            captured.posts.append((self.path, dict(self.headers), body))
            self._send(200, b"ok")

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    captured.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_channels(text: str) -> Path:
    path = paths.config_dir() / "channels.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def incident() -> str:
    return run_cli("new", "--playbook", "generic-host", "--host", "localhost",
                   "--title", "api errors").stdout.strip()


def stored(incident_id: str) -> str:
    """Everything runbook keeps about the incident, as one string."""
    directory = IncidentStore().directory(incident_id)
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file())


def hook_config(capture: Capture) -> str:
    return f"""\
channels:
  ops-slack:
    kind: slack
    url: "{capture.url}/services/${{SLACK_WEBHOOK_SECRET}}"
  status-hook:
    kind: webhook
    url: {capture.url}/hook
    headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}
    fields: {{service: api}}
"""


def test_slack_and_webhook_posts_record_only_the_channel_name(
        capture: Capture, incident: str) -> None:
    write_channels(hook_config(capture))
    env = {"SLACK_WEBHOOK_SECRET": SLACK_SECRET, "HOOK_TOKEN": HOOK_TOKEN}
    sent = run_cli("announce", incident, "initial-notice", "--to", "ops-slack", "--json",
                   env=env)
    assert json.loads(sent.stdout)["channel"] == "ops-slack"
    run_cli("announce", incident, "initial-notice", "--to", "status-hook", env=env)
    [(slack_path, _, slack_body), (hook_path, hook_headers, hook_body)] = capture.posts
    assert slack_path == f"/services/{SLACK_SECRET}"
    assert set(slack_body) == {"text"} and "api errors: investigating" in slack_body["text"]
    assert hook_path == "/hook" and hook_headers["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert hook_body["service"] == "api" and hook_body["text"] == slack_body["text"]
    state = IncidentStore().load(incident)
    assert [(a["channel"], a["delivered"]) for a in state.announcements] == [
        ("ops-slack", True), ("status-hook", True)]
    kept = stored(incident)
    assert SLACK_SECRET not in kept and HOOK_TOKEN not in kept


def test_a_failed_send_is_recorded_unsent_and_can_be_resent(
        capture: Capture, incident: str) -> None:
    write_channels(hook_config(capture))
    env = {"SLACK_WEBHOOK_SECRET": SLACK_SECRET}
    capture.failing = True
    failed = run_cli("announce", incident, "initial-notice", "--to", "ops-slack", env=env,
                     check=False)
    assert failed.returncode == 1 and "not sent" in failed.stderr
    [entry] = IncidentStore().load(incident).announcements
    assert entry["delivered"] is False
    # the server echoed the secret path in its error; the journal gets it scrubbed
    assert entry["error"] == "HTTP 503 Service Unavailable: service unavailable at " \
                             "/services/***"
    [failed_event] = [e for e in IncidentStore().load(incident).events
                      if e.type == "announcement.sent"]
    again = run_cli("resend", incident, "--event", failed_event.id, env=env, check=False)
    assert again.returncode == 1  # still down: recorded unsent a second time
    capture.failing = False
    run_cli("resend", incident, env=env)
    [(_, _, body)] = capture.posts
    announcements = IncidentStore().load(incident).announcements
    assert [a["delivered"] for a in announcements] == [False, False, True]
    assert body["text"] == entry["text"] == announcements[-1]["text"]  # the exact text
    nothing = run_cli("resend", incident, env=env, check=False)
    assert nothing.returncode == 2 and "no unsent announcement" in nothing.stderr
    assert SLACK_SECRET not in stored(incident)


def test_a_missing_secret_is_an_unsent_announcement_not_a_crash(
        capture: Capture, incident: str, monkeypatch: pytest.MonkeyPatch) -> None:
    write_channels(hook_config(capture))
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET", raising=False)
    result = run_cli("announce", incident, "initial-notice", "--to", "ops-slack", check=False)
    assert result.returncode == 1
    [entry] = IncidentStore().load(incident).announcements
    assert entry["error"] == "environment variable SLACK_WEBHOOK_SECRET is not set"
    assert capture.posts == []


def test_nothing_listening_is_unsent(dead_endpoint: Any, incident: str) -> None:
    write_channels(f"channels:\n  hook: {{kind: webhook, "
                   f"url: 'http://127.0.0.1:{dead_endpoint.port}/x'}}\n")
    result = run_cli("announce", incident, "initial-notice", "--to", "hook", check=False)
    assert result.returncode == 1
    [entry] = IncidentStore().load(incident).announcements
    assert entry["error"].startswith("cannot reach the webhook: ")


def test_channel_config_errors_name_the_line() -> None:
    path = write_channels("channels:\n  ops:\n    kind: slak\n    url: x\n")
    with pytest.raises(ChannelConfigError) as caught:
        load_channels()
    assert caught.value.file == str(path) and caught.value.line == 3
    assert "did you mean 'slack'" in caught.value.problem
    write_channels("channels:\n  ops:\n    kind: smtp\n    host: mail\n    from: a@b\n")
    with pytest.raises(ChannelConfigError) as caught:
        load_channels()
    assert caught.value.field == "channels.ops.to"
    write_channels("channels:\n  'bad name':\n    kind: stdout\n")
    with pytest.raises(ChannelConfigError):
        load_channels()


def test_configured_file_and_stdout_channels_and_the_list(tmp_path: Path) -> None:
    write_channels(f"channels:\n  status-file: {{kind: file, path: '{tmp_path}/status.txt'}}\n"
                   "  ops-slack: {kind: slack, url: '${SLACK_WEBHOOK_URL}'}\n"
                   "  screen: {kind: stdout}\n")
    channel = channel_from_spec("status-file")
    assert channel.name == "status-file" and channel.send("hello") == (True, None)
    assert (tmp_path / "status.txt").read_text() == "hello"
    shown: list[str] = []
    assert channel_from_spec("screen", write=shown.append).send("hi") == (True, None)
    assert shown == ["hi"]
    listing = run_cli("channels", "--json", env={"SLACK_WEBHOOK_URL": "https://secret.example"})
    described = json.loads(listing.stdout)["channels"]
    assert {"name": "ops-slack", "kind": "slack",
            "variables": {"SLACK_WEBHOOK_URL": True}} in described
    assert "secret.example" not in listing.stdout


def test_standard_templates_are_valid_and_carry_the_can_body(incident: str) -> None:
    state = IncidentStore().load(incident)
    for text in TEMPLATES.values():
        assert check_template(text) is None
    update = render_text(TEMPLATES["update"], state.template_context(datetime.now(UTC)))
    assert "Conditions: impact still being assessed" in update
    assert "Actions: " in update and "Needs: nothing right now" in update


# -- SMTP over STARTTLS with a login --------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runbook test SMTP")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class MailServer:
    port: int
    cert: Path
    messages: list[tuple[str, list[str], bytes]]


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(tmp_path)
    messages: list[tuple[str, list[str], bytes]] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        good = isinstance(auth_data, LoginPassword) and auth_data.login == b"runbook" \
            and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=good, handled=False)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticator,
                            auth_required=True)
    controller.start()
    try:
        yield MailServer(port, cert, messages)
    finally:
        controller.stop()


def smtp_yaml(server: MailServer, **overrides: str) -> str:
    settings = {"kind": "smtp", "host": "127.0.0.1", "port": str(server.port),
                "security": "starttls", "username": "runbook", "password": "${SMTP_PASSWORD}",
                "from": "runbook@example.com", "to": "[oncall@example.com, ic@example.com]",
                "ca_file": str(server.cert), "subject_prefix": "'[incident] '", **overrides}
    return "channels:\n  oncall-mail:\n" + "".join(f"    {k}: {v}\n"
                                                   for k, v in settings.items())


def test_mail_goes_out_over_starttls_with_a_login(mail_server: MailServer,
                                                  incident: str) -> None:
    write_channels(smtp_yaml(mail_server))
    run_cli("announce", incident, "initial-notice", "--to", "oncall-mail",
            env={"SMTP_PASSWORD": SMTP_PASSWORD})
    [(sender, recipients, content)] = mail_server.messages
    assert sender == "runbook@example.com"
    assert recipients == ["oncall@example.com", "ic@example.com"]
    message = message_from_bytes(content)
    assert message["Subject"].startswith("[incident] [SEV3] api errors: investigating")
    assert "Incident commander" in message.get_payload(decode=True).decode()
    [entry] = IncidentStore().load(incident).announcements
    assert (entry["channel"], entry["delivered"]) == ("oncall-mail", True)
    assert SMTP_PASSWORD not in stored(incident)


def test_a_refused_login_and_an_untrusted_certificate_are_unsent(
        mail_server: MailServer, incident: str, tmp_path: Path) -> None:
    write_channels(smtp_yaml(mail_server))
    wrong = run_cli("announce", incident, "initial-notice", "--to", "oncall-mail",
                    env={"SMTP_PASSWORD": "not-it"}, check=False)
    assert wrong.returncode == 1
    [entry] = IncidentStore().load(incident).announcements
    assert entry["error"].startswith("SMTP login refused: 535")
    config = SmtpConfig.model_validate({
        "kind": "smtp", "host": "127.0.0.1", "port": mail_server.port, "from": "a@b.c",
        "to": ["x@y.z"], "username": "runbook", "password": SMTP_PASSWORD})
    delivered, error = SmtpChannel("mail", config).send("hello")  # system CAs only
    assert not delivered and error is not None and error.startswith("SMTP TLS: ")
    assert mail_server.messages == []


def test_a_channels_file_that_is_a_list_or_text_and_a_url_that_is_not_one_say_where() -> None:
    for text, what in (("- ops\n- oncall\n", "a list"), ("slack\n", "the value 'slack'")):
        path = write_channels(text)
        with pytest.raises(ChannelConfigError) as caught:
            load_channels()
        assert (caught.value.file, caught.value.line) == (str(path), 1)
        assert what in caught.value.problem and "`channels:`" in (caught.value.expected or "")
    write_channels("channels:\n  ops:\n    kind: webhook\n    url: not a url\n")
    with pytest.raises(ChannelConfigError) as caught:
        load_channels()
    assert caught.value.line == 4 and caught.value.field == "channels.ops.url"
    assert "not an http:// or https:// URL" in caught.value.problem
    # A URL kept in the environment is checked when it is used, not here.
    write_channels("channels:\n  ops: {kind: slack, url: '${SLACK_WEBHOOK_URL}'}\n")
    assert set(load_channels()) == {"ops"}
