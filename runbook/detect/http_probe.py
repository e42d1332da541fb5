"""A synthetic probe: N requests to a URL, each timed phase by phase.

Timings are cumulative from the start of each request, as `curl -w` reports
them: `dns` (time_namelookup), `connect` (time_connect), `tls`
(time_appconnect; 0 for http), `first_byte` (time_starttransfer: the first
byte of the response, read through TLS so session tickets do not count) and
`total`. Every request uses a new connection, so each pays DNS, TCP and TLS,
as a first-time visitor does. Measured with raw sockets and monotonic clocks;
name resolution cannot be interrupted, so a hung resolver may outlast
`timeout`.
"""

from __future__ import annotations

import http.client
import io
import math
import socket
import ssl
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from runbook.clock import utc_iso
from runbook.detect.record import redact_url
from runbook.errors import RunbookError
from runbook.findings import Finding, Level, Signal

KEEP_BODY = 1024 * 1024  # searched for --expect-body
MAX_BODY = 64 * 1024 * 1024  # read (and timed) at most this much
USER_AGENT = "runbook-probe"


@dataclass
class Attempt:
    status: int | None = None
    error: str | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    body_bytes: int = 0
    body_ok: bool | None = None
    address: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class ProbeReport:
    url: str  # redacted: no credentials, no query string
    attempts: list[Attempt]
    findings: list[Finding] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def stats(self, phase: str) -> dict[str, float] | None:
        values = [v for a in self.attempts if (v := getattr(a, f"{phase}_ms")) is not None]
        if not values:
            return None
        return {"p50": percentile(values, 50), "p95": percentile(values, 95),
                "max": max(values), "min": min(values)}

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "started_at": utc_iso(self.started_at, "microseconds"),
                "requests": len(self.attempts),
                "answered": sum(1 for a in self.attempts if a.status is not None),
                "timings_ms": {p: self.stats(p) for p in
                               ("dns", "connect", "tls", "first_byte", "total")},
                "attempts": [a.as_dict() for a in self.attempts],
                "findings": [f.as_dict() for f in self.findings]}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def probe(url: str, *, count: int = 5, timeout: float = 10.0, expect_status: int | None = None,
          expect_body: str | None = None, max_total_ms: float | None = None,
          interval: float = 0.0, verify_tls: bool = True) -> ProbeReport:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RunbookError(f"{url!r} is not an http(s) URL", "like https://example.com/health")
    report = ProbeReport(redact_url(url), [])
    for index in range(max(1, count)):
        if index and interval:
            time.sleep(interval)
        report.attempts.append(request_once(url, timeout=timeout, expect_body=expect_body,
                                            verify_tls=verify_tls))
    report.findings = judge(report, expect_status, expect_body, max_total_ms)
    return report


def request_once(url: str, *, timeout: float = 10.0, expect_body: str | None = None,
                 verify_tls: bool = True) -> Attempt:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    attempt = Attempt()
    start = time.perf_counter()
    deadline = start + timeout

    def since() -> float:
        return (time.perf_counter() - start) * 1000

    def left() -> float:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    phase = "dns"
    sock: socket.socket | None = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        attempt.dns_ms = since()
        phase = "connect"
        sock = _connect(infos, left)
        attempt.address = sock.getpeername()[0]
        attempt.connect_ms = since()
        if parts.scheme == "https":
            phase = "tls"
            context = ssl.create_default_context()
            if not verify_tls:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock.settimeout(left())
            sock = context.wrap_socket(sock, server_hostname=host)
        attempt.tls_ms = since() if parts.scheme == "https" else 0.0
        phase = "first byte"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if ":" not in host else f"[{host}]"
        if parts.port:
            host_header += f":{parts.port}"
        sock.settimeout(left())
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}"
                     "\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode())
        first = sock.recv(65536)
        attempt.first_byte_ms = since()
        if not first:
            raise http.client.RemoteDisconnected("closed without answering")
        phase = "body"
        response = http.client.HTTPResponse(_Prefixed(sock, first))  # type: ignore[arg-type]
        response.begin()
        attempt.status = response.status
        kept = bytearray()
        while attempt.body_bytes < MAX_BODY:
            sock.settimeout(left())
            chunk = response.read(65536)
            if not chunk:
                break
            attempt.body_bytes += len(chunk)
            if len(kept) < KEEP_BODY:
                kept += chunk[: KEEP_BODY - len(kept)]
        attempt.total_ms = since()
        if expect_body is not None:
            attempt.body_ok = expect_body.encode() in kept
    except TimeoutError:
        attempt.error = f"timed out after {timeout:g}s (during {phase})"
    except socket.gaierror as exc:
        attempt.error = f"cannot resolve {host}: {exc.strerror or exc}"
    except ConnectionRefusedError:
        attempt.error = "connection refused"
    except ssl.SSLError as exc:
        attempt.error = f"TLS: {exc.reason or exc}"
    except http.client.HTTPException as exc:
        attempt.error = f"bad HTTP response ({type(exc).__name__}: {exc})"
    except OSError as exc:
        attempt.error = f"{phase}: {exc.strerror or exc}"
    finally:
        if sock is not None:
            sock.close()
    return attempt


def _connect(infos: list[Any], left: Any) -> socket.socket:
    error: OSError | None = None
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left())
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                raise
    raise error or OSError("no address to connect to")


class _Prefixed:
    """The socket as http.client wants it (`makefile`), with the bytes already read
    for the first-byte timing put back in front."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self._raw = _PrefixedRaw(sock, prefix)

    def makefile(self, mode: str = "rb", *_: Any, **__: Any) -> io.BufferedReader:
        return io.BufferedReader(self._raw)


class _PrefixedRaw(io.RawIOBase):
    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self._sock, self._prefix = sock, prefix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size], self._prefix = self._prefix[:size], self._prefix[size:]
            return size
        return self._sock.recv_into(buffer)


def judge(report: ProbeReport, expect_status: int | None, expect_body: str | None,
          max_total_ms: float | None) -> list[Finding]:
    resource = f"url:{report.url}"
    attempts, n = report.attempts, len(report.attempts)
    answered = [a for a in attempts if a.status is not None]
    findings: list[Finding] = []
    failed = [a.error for a in attempts if a.error]
    if failed:
        common, times = Counter(failed).most_common(1)[0]
        findings.append(Finding(Level.CRITICAL, Signal.ERRORS, resource,
                                f"{len(failed)}/{n} requests to {report.url} failed: {common}"
                                + (f" ({times}x)" if len(set(failed)) > 1 else "")))
    wrong = [a.status for a in answered
             if (a.status != expect_status if expect_status else (a.status or 0) >= 400)]
    if wrong:
        status, _ = Counter(wrong).most_common(1)[0]
        wanted = f", expected {expect_status}" if expect_status else ""
        findings.append(Finding(Level.CRITICAL, Signal.ERRORS, resource,
                                f"{len(wrong)}/{n} responses were HTTP {status}{wanted}"))
    missing = [a for a in answered if a.body_ok is False]
    if expect_body is not None and missing:
        findings.append(Finding(Level.CRITICAL, Signal.ERRORS, resource,
                                f"{len(missing)}/{n} response bodies lack {expect_body!r}"))
    total = report.stats("total")
    if total and max_total_ms is not None:
        for key, level in (("p50", Level.CRITICAL), ("p95", Level.WARNING)):
            if total[key] > max_total_ms:
                findings.append(Finding(level, Signal.SATURATION, resource,
                                        f"total time {key} {total[key]:.0f} ms is over "
                                        f"{max_total_ms:g} ms"))
                break
    findings.append(Finding(Level.INFO, Signal.INFO, resource, summary_line(report)))
    return findings


def summary_line(report: ProbeReport) -> str:
    answered = [a for a in report.attempts if a.status is not None]
    statuses = ", ".join(f"{s} x{c}" for s, c in Counter(a.status for a in answered).items())
    text = f"{len(answered)}/{len(report.attempts)} answered" + (f" ({statuses})" if statuses
                                                                 else "")
    for phase in ("first_byte", "total"):
        stats = report.stats(phase)
        if stats:
            text += (f"; {phase.replace('_', ' ')} p50 {stats['p50']:.1f} ms, "
                     f"p95 {stats['p95']:.1f} ms, max {stats['max']:.1f} ms")
    return text
