"""Where announcements go: stdout, a file, and the channels the operator
configures (Slack, a JSON webhook, email). A channel is a small class with
`name` and `send(text) -> (delivered, error)`; channels know nothing of
incidents (`runbook.announce` drafts and journals).

`config_dir()/channels.yaml` names them:

    channels:
      ops-slack:   {kind: slack, url: "${SLACK_WEBHOOK_URL}"}
      status-hook: {kind: webhook, url: "https://status.example/hook",
                    headers: {Authorization: "Bearer ${STATUS_TOKEN}"}}
      oncall-mail: {kind: smtp, host: smtp.example.com, port: 587, security: starttls,
                    username: runbook, password: "${SMTP_PASSWORD}",
                    from: runbook@example.com, to: [oncall@example.com]}
      status-file: {kind: file, path: /srv/status/current.txt}

`runbook announce ID STEP --to ops-slack` sends through one. Secrets stay
secret: `${VAR}` is read from the environment when sending, the journal
records only the channel's NAME, and an error that would quote a secret has
it replaced by `***`. A send that fails (a 503, a missing variable, a refused
login) is journalled as not sent and can be sent again.
"""

from __future__ import annotations

import errno
import json
import os
import re
import smtplib
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TextIO
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from runbook import paths
from runbook.errors import RunbookError, SourceError
from runbook.sanitize import clean_text
from runbook.yamlsource import load_yaml, validate

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class ChannelConfigError(SourceError):
    """channels.yaml does not validate."""


class MissingSecret(Exception):
    def __init__(self, variable: str) -> None:
        super().__init__(f"environment variable {variable} is not set")


class Secrets:
    """Expands `${VAR}` from the environment and remembers what it expanded, so
    errors can be scrubbed of it."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.values: list[str] = []

    def __call__(self, text: str | None) -> str:
        if text is None:
            return ""

        def one(match: re.Match[str]) -> str:
            value = self.environ.get(match.group(1))
            if value is None:
                raise MissingSecret(match.group(1))
            if len(value) >= 4:
                self.values.append(value)
            return value

        return _VARIABLE.sub(one, text)

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


# -- configuration ----------------------------------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    timeout: float = Field(default=10.0, gt=0, le=300)


def _http_url(url: str) -> str:
    """An http(s) URL with a host; a URL that is, or starts with, a ${VARIABLE}
    (a secret from the environment) is checked when it is sent."""
    if _VARIABLE.match(url.strip()):
        return url
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url[:80]!r} is not an http:// or https:// URL")
    return url


HttpUrl = Annotated[str, Field(min_length=1), AfterValidator(_http_url)]


class SlackConfig(_Config):
    kind: Literal["slack"]
    url: HttpUrl


class WebhookConfig(_Config):
    kind: Literal["webhook"]
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)  # added to {"text": ...}


class SmtpConfig(_Config):
    kind: Literal["smtp"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    subject_prefix: str = ""
    ca_file: str | None = None  # a private CA (or a self-signed server certificate)


class FileConfig(_Config):
    kind: Literal["file"]
    path: str = Field(min_length=1)


class StdoutConfig(_Config):
    kind: Literal["stdout"]


ChannelConfig = Annotated[SlackConfig | WebhookConfig | SmtpConfig | FileConfig | StdoutConfig,
                          Field(discriminator="kind")]
ChannelName = Annotated[str, Field(pattern=NAME_PATTERN)]


class ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: dict[ChannelName, ChannelConfig] = Field(default_factory=dict)


def channels_path() -> Path:
    return paths.config_dir() / "channels.yaml"


def load_channels(path: Path | None = None) -> dict[str, Any]:
    """{name: config} from channels.yaml; {} when there is none."""
    target = path or channels_path()
    if not target.exists():
        return {}
    document = load_yaml(target, ChannelConfigError) or {}
    return dict(validate(ChannelsFile, document, target, ChannelConfigError).channels)


def configured_channel(name: str, *, write: Callable[[str], object] | None = None) -> Any:
    """The channel called `name` in channels.yaml, or None."""
    config = load_channels().get(name)
    if config is None:
        return None
    if isinstance(config, FileConfig):
        channel: Any = FileChannel(Path(config.path))
    elif isinstance(config, StdoutConfig):
        channel = StdoutChannel(write)
    else:
        kinds: dict[type, Any] = {SlackConfig: SlackChannel, WebhookConfig: WebhookChannel,
                                  SmtpConfig: SmtpChannel}
        return kinds[type(config)](name, config)
    channel.name = name  # journal the configured name, whatever the kind
    return channel


def describe(name: str, config: Any) -> dict[str, Any]:
    """A channel for `runbook channels`: kind, and which variables it needs (set or
    not), never their values."""
    text = json.dumps(config.model_dump(mode="json", by_alias=True))
    variables = sorted(set(_VARIABLE.findall(text)))
    return {"name": name, "kind": config.kind,
            "variables": {v: v in os.environ for v in variables}}


# -- channels ------------------------------------------------------------------------------

CHANNEL_FORMS = "stdout, file:PATH, or a channel named in channels.yaml"


class Channel(Protocol):
    name: str  # as journalled: "stdout", "file:/abs/path", or a configured name

    def send(self, text: str) -> tuple[bool, str | None]:
        """(delivered, error). Returns a failure as a value; raises only for our bugs."""
        ...


class StdoutChannel:
    """Printed for the operator to paste where it belongs."""

    name = "stdout"

    def __init__(self, write: Callable[[str], object] | None = None) -> None:
        self._write = write

    def send(self, text: str) -> tuple[bool, str | None]:
        text = clean_text(text)  # a terminal shows it: nothing from an alert may act on it
        try:
            if self._write is not None:
                self._write(text)
            else:
                stream: TextIO = sys.stdout
                stream.write(text if text.endswith("\n") else text + "\n")
                stream.flush()
        except OSError as exc:
            return False, f"cannot write to stdout: {exc.strerror or exc}"
        return True, None


class FileChannel:
    """Written to a file (replacing it), for another tool or a person to pick up."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.name = f"file:{self.path}"

    def send(self, text: str) -> tuple[bool, str | None]:
        try:
            save_to_file(clean_text(text), self.path)
        except OSError as exc:
            return False, f"cannot write {self.path}: {exc.strerror or exc}"
        return True, None


def channel_from_spec(spec: str, *, write: Callable[[str], object] | None = None) -> Channel:
    """`stdout`, `file:PATH`, or a name from channels.yaml."""
    text = spec.strip()
    if text == "stdout":
        return StdoutChannel(write)
    kind, colon, rest = text.partition(":")
    if colon and kind == "file" and rest.strip():
        return FileChannel(Path(rest.strip()))
    named = configured_channel(text, write=write)
    if named is not None:
        return named
    raise RunbookError(f"no channel {spec!r}", f"a channel is {CHANNEL_FORMS}")


def is_channel_spec(spec: str | None) -> bool:
    if not spec:
        return False
    try:
        channel_from_spec(spec)
    except RunbookError:
        return False
    return True




def save_to_file(text: str, path: Path) -> Path:
    """Write the text to `path` whole (a temporary file renamed over it), so a
    reader never sees half a message. Returns the absolute path."""
    target = Path(path).expanduser().absolute()
    blocking = next((p for p in (target.parent, *target.parent.parents)
                     if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(errno.ENOTDIR, f"{blocking} is not a directory", str(blocking))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target




class SlackChannel:
    """A Slack incoming webhook: POST {"text": ...}; Slack answers 200 "ok"."""

    def __init__(self, name: str, config: SlackConfig) -> None:
        self.name, self.config = name, config

    def send(self, text: str) -> tuple[bool, str | None]:
        return _post_json(self.config.url, {"text": text}, {}, self.config.timeout)


class WebhookChannel:
    """Any endpoint that takes JSON: POST {"text": ..., **fields} with its headers."""

    def __init__(self, name: str, config: WebhookConfig) -> None:
        self.name, self.config = name, config

    def send(self, text: str) -> tuple[bool, str | None]:
        return _post_json(self.config.url, {**self.config.fields, "text": text},
                          self.config.headers, self.config.timeout)


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str],
               timeout: float) -> tuple[bool, str | None]:
    secrets = Secrets()
    try:
        target = secrets(url)
        sent_headers = {"Content-Type": "application/json", "User-Agent": "runbook",
                        **{k: secrets(v) for k, v in headers.items()}}
        data = json.dumps({k: secrets(v) if k != "text" else v for k, v in body.items()})
        request = urllib.request.Request(target, data=data.encode(), headers=sent_headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(64 * 1024)
        return True, None
    except MissingSecret as exc:
        return False, str(exc)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip() if exc.fp else ""
        return False, secrets.scrub(f"HTTP {exc.code} {exc.reason}" +
                                    (f": {detail}" if detail else ""))
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        return False, secrets.scrub(f"cannot reach the webhook: {reason}")
    except ValueError as exc:  # a URL urllib cannot use
        return False, secrets.scrub(f"bad webhook URL: {exc}")
    except OSError as exc:
        return False, secrets.scrub(f"webhook: {exc.strerror or exc}")


class SmtpChannel:
    """Email: the first line is the subject, the whole text the body. STARTTLS (or
    implicit TLS) with certificate checks, then login when a username is set."""

    def __init__(self, name: str, config: SmtpConfig) -> None:
        self.name, self.config = name, config

    def send(self, text: str) -> tuple[bool, str | None]:
        config, secrets = self.config, Secrets()
        try:
            message = EmailMessage()
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            message["Subject"] = (config.subject_prefix + first)[:200]
            message["From"] = secrets(config.sender)
            message["To"] = ", ".join(secrets(t) for t in config.to)
            message["Date"] = formatdate(usegmt=True)
            message["Message-ID"] = make_msgid(domain="runbook.invalid")
            message.set_content(text)
            self._deliver(message, secrets)
            return True, None
        except MissingSecret as exc:
            return False, str(exc)
        except smtplib.SMTPAuthenticationError as exc:
            return False, secrets.scrub(f"SMTP login refused: {exc.smtp_code} "
                                        f"{exc.smtp_error.decode('utf-8', 'replace')}")
        except smtplib.SMTPRecipientsRefused as exc:
            return False, secrets.scrub(f"every recipient refused: {', '.join(exc.recipients)}")
        except smtplib.SMTPException as exc:
            return False, secrets.scrub(f"SMTP: {exc}")
        except ssl.SSLError as exc:
            return False, secrets.scrub(f"SMTP TLS: {exc.reason or exc}")
        except OSError as exc:
            return False, secrets.scrub(f"cannot reach {config.host}:{config.port}: "
                                        f"{exc.strerror or exc}")

    def _deliver(self, message: EmailMessage, secrets: Secrets) -> None:
        config = self.config
        host = secrets(config.host)
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, config.port, timeout=config.timeout,
                                                    context=context)
        else:
            client = smtplib.SMTP(host, config.port, timeout=config.timeout)
        with client:
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=context)  # refuses a server without STARTTLS
                client.ehlo()
            if config.username:
                client.login(secrets(config.username), secrets(config.password))
            client.send_message(message)


# -- standard texts ----------------------------------------------------------------------
# For incidents whose playbook has no announce step of that purpose, and to copy
# into playbooks: every field is one of templating.INCIDENT_FIELDS.

CAN_BODY = (
    "Conditions: {{ answers['impact'] | default('impact still being assessed', true) }}\n"
    "Actions: {{ answers['mitigation-result'] | default('diagnosing; no change made yet', true) }}"
    "\nNeeds: {{ answers['needs'] | default('nothing right now', true) }}\n")

TEMPLATES: dict[str, str] = {
    "initial": ("[{{ severity }}] {{ title }}: investigating\n"
                "Detected: {{ detected_at | default(started_at, true) }}\n"
                "Hosts: {{ hosts | default('none named yet', true) }}\n"
                "Incident commander: {{ commander | default('not yet assigned', true) }}\n"
                "Incident {{ id }}, playbook {{ playbook }}.\n"),
    "update": ("[{{ severity }}] {{ title }}: update at {{ now }} ({{ elapsed }} since "
               "detection)\n" + CAN_BODY + "Next update within 30 minutes.\n"),
    "resolved": ("[{{ severity }}] RESOLVED: {{ title }}\n"
                 "Resolved at {{ resolved_at | default(now, true) }}, {{ elapsed }} after "
                 "detection.\nIncident {{ id }}. A postmortem will follow.\n"),
}
