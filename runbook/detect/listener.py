"""`runbook listen`: an HTTP server for Alertmanager's webhook at `POST /alerts`.

Stdlib `ThreadingHTTPServer`. What it refuses, and why:

- a bind address that is not loopback, unless the operator allows it: the
  endpoint opens incidents, so it should not be reachable by accident;
- a missing or wrong bearer token when one is set (401), compared in constant time;
- a body without Content-Length or longer than `max_body` (411/413), refused
  before it is read, so a client cannot make the listener hold gigabytes;
- a body that is not Alertmanager's v4 JSON, or JSON nested deeper than a
  webhook ever is (400, with the reason);
- a client that resets or drops its connection, which ends that connection
  only, with nothing printed (any other failure goes to runbook.log).

Requests are served side by side; the receiver takes one webhook per alert
group at a time, so a bulk notification holds up only its own group.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runbook.bugs import internal_error, log_exception
from runbook.detect.alertmanager import AlertOutcome, AlertReceiver, parse_payload
from runbook.errors import RunbookError

DEFAULT_PORT = 9095
DEFAULT_MAX_BODY = 1024 * 1024


def parse_bind(text: str, allow_remote: bool = False) -> tuple[str, int]:
    """`127.0.0.1:9095`, `[::1]:9095`, `:9095` or `localhost:0` -> (host, port)."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise RunbookError(f"{text!r} is not HOST:PORT", "like 127.0.0.1:9095")
    if not (allow_remote or is_loopback(host)):
        raise RunbookError(f"refusing to listen on {host}: not a loopback address",
                           "alerts open incidents; pass --allow-remote (and --token) to "
                           "accept them from other machines")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AlertListener:
    def __init__(self, receiver: AlertReceiver, host: str, port: int, *,
                 token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                 on_outcome: Callable[[AlertOutcome], object] | None = None,
                 on_refusal: Callable[[int, str], object] | None = None) -> None:
        self.receiver = receiver
        self.token = token
        self.max_body = max_body
        self.on_outcome = on_outcome or (lambda _o: None)
        self.on_refusal = on_refusal or (lambda _c, _r: None)
        handler = type("Handler", (_Handler,), {"listener": self})
        family_server: type[_Server] = _Server
        if ":" in host:
            import socket

            family_server = type("V6Server", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self.server = family_server((host, port), handler)
        except OSError as exc:
            raise RunbookError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                               "is another listener using the port?") from None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/alerts"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def start(self) -> AlertListener:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name="alert-listener")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class _Server(ThreadingHTTPServer):
    """One thread per connection, so a slow or bulk request never holds up
    another; a connection's failure ends that connection only, quietly."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver's default prints a traceback to stderr for any error.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return  # the client went away (reset, broken pipe) or stalled: its loss
        log_exception(f"alert listener, a request from {client_address[0]}")


class _Handler(BaseHTTPRequestHandler):
    listener: AlertListener
    server_version = "runbook-listen"
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stalls mid-request loses its connection, not a thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the journal and the outcome lines are the record, not an access log

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path == "/healthz":
            self._reply(200, {"status": "ok"})
        elif self.path == "/alerts":
            self._reply(405, {"error": "POST the Alertmanager webhook here"}, allow="POST")
        else:
            self._reply(404, {"error": "not found; alerts go to POST /alerts"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != "/alerts":
            self._refuse(404, "not found; alerts go to POST /alerts")
            return
        listener = self.listener
        if listener.token is not None and not self._token_ok(listener.token):
            self._refuse(401, "missing or wrong bearer token",
                         **{"WWW-Authenticate": 'Bearer realm="runbook"'})
            return
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_text is None \
                or not length_text.strip().isdigit():
            self._refuse(411, "a Content-Length is required")
            return
        length = int(length_text)
        if length > listener.max_body:
            self._drain(length)
            self._refuse(413, f"body of {length} bytes is over the limit of "
                              f"{listener.max_body} bytes")
            return
        try:
            payload = parse_payload(self.rfile.read(length))
        except RunbookError as exc:
            self._refuse(400, exc.message)
            return
        try:
            outcomes = listener.receiver.receive(payload)
        except RunbookError as exc:  # a journal that refused the write, a broken playbook
            self._refuse(500, exc.message)
            return
        except Exception:  # noqa: BLE001 - our bug: logged, and Alertmanager will retry
            self._refuse(500, internal_error("alert listener"))
            return
        for outcome in outcomes:
            listener.on_outcome(outcome)
        self._reply(200, {"alerts": [o.as_json() for o in outcomes]})

    def _drain(self, length: int, limit: int = 8 * 1024 * 1024) -> None:
        """Read (and drop) a refused body of modest size first: closing a socket
        with unread data makes Linux send a reset, which can destroy our reply
        before the client reads it."""
        left = min(length, limit)
        self.connection.settimeout(5)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _token_ok(self, token: str) -> bool:
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode())

    def _refuse(self, code: int, reason: str, **headers: str) -> None:
        self.listener.on_refusal(code, reason)
        self.close_connection = True  # the unread body (413, 411) must not be taken as a request
        self._reply(code, {"error": reason}, **headers)

    def _reply(self, code: int, body: dict[str, Any], **headers: str) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
