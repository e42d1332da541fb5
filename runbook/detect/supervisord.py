"""supervisord's own view of its programs, over XML-RPC.

`supervisor.getAllProcessInfo` from `http://127.0.0.1:9001/RPC2` (the
`[inet_http_server]`), directly or through an SSH `direct-tcpip` channel to the
host's 127.0.0.1:PORT, so a supervisord that listens only on the host's
loopback (as it should) is reachable without opening a port. Programs that are
not RUNNING become findings with their state, exit status and spawn error.
"""

from __future__ import annotations

import base64
import http.client
import io
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from runbook.detect.record import redact_url
from runbook.findings import Finding, Level, Signal

DEFAULT_PORT = 9001
# supervisord's process states (supervisor/states.py ProcessStates).
_LEVELS = {"FATAL": Level.CRITICAL, "BACKOFF": Level.CRITICAL, "UNKNOWN": Level.CRITICAL,
           "EXITED": Level.CRITICAL, "STOPPED": Level.WARNING, "STOPPING": Level.WARNING,
           "STARTING": Level.INFO}


@dataclass
class SupervisorReport:
    where: str  # redacted URL, or "HOST -> 127.0.0.1:PORT"
    processes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"where": self.where, "error": self.error, "processes": self.processes,
                "findings": [f.as_dict() for f in self.findings]}


def check(url: str, *, username: str | None = None, password: str | None = None,
          timeout: float = 10.0, host: str = "", opener: Callable[[], Any] | None = None,
          where: str | None = None) -> SupervisorReport:
    """Ask supervisord at `url` for every program's state. With `opener` (a
    function returning a socket-like channel) the HTTP goes through it instead
    of a TCP connection. Failures are a report with `error`, not an exception."""
    parts = urlsplit(url)
    username = username or parts.username
    password = password or parts.password
    report = SupervisorReport(where or redact_url(url))
    transport = TunnelTransport(opener, timeout, username, password)
    plain = f"{parts.scheme or 'http'}://{parts.hostname or '127.0.0.1'}" \
            f"{f':{parts.port}' if parts.port else ''}{parts.path or '/RPC2'}"
    proxy = xmlrpc.client.ServerProxy(plain, transport=transport)
    try:
        report.processes = list(proxy.supervisor.getAllProcessInfo())
    except xmlrpc.client.ProtocolError as exc:
        hint = " (wrong user or password?)" if exc.errcode == 401 else ""
        report.error = f"supervisord answered HTTP {exc.errcode} {exc.errmsg}{hint}"
    except xmlrpc.client.Fault as exc:
        report.error = f"supervisord refused the call: {exc.faultString}"
    except (OSError, http.client.HTTPException, xmlrpc.client.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = reason or type(exc).__name__
        report.error = f"supervisord not reachable at {report.where}: {reason}"
    finally:
        transport.close()
    report.findings = judge(report, host)
    return report


def judge(report: SupervisorReport, host: str = "") -> list[Finding]:
    if report.error:
        return [Finding(Level.CRITICAL, Signal.ERRORS, "supervisord", report.error, host=host)]
    findings: list[Finding] = []
    for info in report.processes:
        state = str(info.get("statename", "UNKNOWN"))
        if state == "RUNNING":
            continue
        name = _program(info)
        details = [f"exit status {info.get('exitstatus')}"] if state in ("EXITED", "BACKOFF",
                                                                         "FATAL") else []
        if info.get("spawnerr"):
            details.append(f"spawn error: {info['spawnerr']}")
        level = _LEVELS.get(state, Level.CRITICAL)
        if state == "EXITED" and info.get("exitstatus") == 0:
            level = Level.WARNING
        findings.append(Finding(level, Signal.ERRORS, f"program:{name}",
                                f"{name} is {state}" + (f" ({'; '.join(details)})" if details
                                                       else ""),
                                evidence=str(info.get("description") or "") or None, host=host))
    running = sum(1 for i in report.processes if i.get("statename") == "RUNNING")
    findings.append(Finding(Level.INFO, Signal.INFO, "supervisord",
                            f"{running}/{len(report.processes)} programs RUNNING at "
                            f"{report.where}", host=host))
    return findings


def _program(info: dict[str, Any]) -> str:
    name, group = str(info.get("name", "?")), str(info.get("group", ""))
    return name if not group or group == name else f"{group}:{name}"


# -- HTTP for xmlrpc over a channel -------------------------------------------------


class TunnelTransport(xmlrpc.client.Transport):
    """xmlrpc's HTTP transport, with basic auth and a timeout, over either a plain
    TCP connection or whatever socket-like channel `opener` returns."""

    def __init__(self, opener: Callable[[], Any] | None, timeout: float,
                 username: str | None, password: str | None) -> None:
        super().__init__()
        self._opener = opener
        self._timeout = timeout
        self._auth = None
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._auth = f"Basic {token}"

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        address, self._extra_headers, _ = self.get_host_info(host)
        connection = _ChannelConnection(address, timeout=self._timeout, opener=self._opener)
        self._connection = host, connection
        return connection

    def send_headers(self, connection: http.client.HTTPConnection,
                     headers: list[tuple[str, str]]) -> None:
        if self._auth:
            headers = [*headers, ("Authorization", self._auth)]
        super().send_headers(connection, headers)


class _ChannelConnection(http.client.HTTPConnection):
    def __init__(self, host: str, *, timeout: float, opener: Callable[[], Any] | None) -> None:
        super().__init__(host, timeout=timeout)
        self._opener = opener

    def connect(self) -> None:
        if self._opener is None:
            super().connect()
            return
        self.sock = ChannelSocket(self._opener(), self.timeout)  # type: ignore[assignment]


class ChannelSocket:
    """What http.client needs of a socket (sendall, makefile, close), over a
    paramiko Channel or anything with send/recv."""

    def __init__(self, channel: Any, timeout: float | None) -> None:
        self.channel = channel
        if timeout is not None and hasattr(channel, "settimeout"):
            channel.settimeout(timeout)

    def sendall(self, data: bytes) -> None:
        self.channel.sendall(data)

    def makefile(self, mode: str = "rb", *_: Any, **__: Any) -> io.BufferedReader:
        return io.BufferedReader(_ChannelReader(self.channel))

    def settimeout(self, timeout: float | None) -> None:
        self.channel.settimeout(timeout)

    def setsockopt(self, *_: Any) -> None:
        pass

    def close(self) -> None:
        self.channel.close()


class _ChannelReader(io.RawIOBase):
    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.channel.recv(len(buffer))
        except TimeoutError as exc:
            raise TimeoutError("no answer through the tunnel") from exc
        buffer[: len(data)] = data
        return len(data)


def ssh_opener(connection: Any, port: int, timeout: float) -> Callable[[], Any]:
    """A function opening a `direct-tcpip` channel from the SSH connection's host to
    its own 127.0.0.1:PORT (a new channel per HTTP connection)."""
    def open_channel() -> Any:
        return connection.open_tunnel(port, timeout)

    return open_channel


def check_host(host: Any, *, port: int = DEFAULT_PORT, ssh: Any = None,
               username: str | None = None, password: str | None = None,
               timeout: float = 10.0) -> SupervisorReport:
    """supervisord on an inventory host's 127.0.0.1:PORT: directly for a local
    host, else through an SSH tunnel. An SSH failure is a report with `error`."""
    url = f"http://127.0.0.1:{port}/RPC2"
    if host.local:
        return check(url, username=username, password=password, timeout=timeout,
                     host=host.name)
    from runbook.transport.base import HostError
    from runbook.transport.ssh import SshConnector

    connector = SshConnector(ssh)
    where = f"{host.name} -> 127.0.0.1:{port}"
    try:
        connection = connector.connect(host)
    except HostError as exc:
        report = SupervisorReport(where, error=f"cannot reach {host.name} over SSH: {exc.reason}")
        report.findings = judge(report, host.name)
        return report
    try:
        return check(url, username=username, password=password, timeout=timeout,
                     host=host.name, opener=ssh_opener(connection, port, timeout), where=where)
    finally:
        connection.close()
        connector.close()
