"""One bounded HTTP GET for the sources that read an endpoint (stats, heartbeat,
Prometheus): a timeout, a size cap, and failures as values."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from runbook.errors import RunbookError

MAX_BYTES = 8 * 1024 * 1024


@dataclass
class Fetched:
    status: int | None
    body: bytes
    elapsed_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


def fetch(url: str, *, timeout: float = 10.0, max_bytes: int = MAX_BYTES,
          headers: dict[str, str] | None = None) -> Fetched:
    if urlsplit(url).scheme not in ("http", "https"):
        raise RunbookError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "runbook", **(headers or {})})
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(max_bytes + 1)
            status = response.status
    except urllib.error.HTTPError as exc:
        body = exc.read(max_bytes + 1) if exc.fp else b""
        return Fetched(exc.code, body, elapsed(), f"HTTP {exc.code} {exc.reason}")
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        return Fetched(None, b"", elapsed(), f"cannot reach it: {text}")
    except (TimeoutError, OSError) as exc:
        return Fetched(None, b"", elapsed(), f"timed out after {timeout:g}s"
                       if isinstance(exc, TimeoutError) else str(exc))
    if len(body) > max_bytes:
        return Fetched(status, body[:max_bytes], elapsed(),
                       f"answer larger than {max_bytes} bytes")
    return Fetched(status, body, elapsed())
