"""SSH through paramiko: one connection per host, one session on it.

Every command of a host runs through the host runner (runner_session.py) in a
single session, so the host's login shell and its rc files run once per host,
not once per command, and no command ever waits for a free session.

Measured pitfalls this module works around (loopback, this machine):
- paramiko sets no TCP_NODELAY; with Nagle on, connect+auth took 64 ms and a
  channel open 43 ms, with it set 17 ms and 0.3 ms. We make the socket.
- paramiko has no ProxyJump: we open direct-tcpip channels through the jump host.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from runbook.hosts import Host, parse_target
from runbook.transport.base import CommandOutcome, HostError, HostState, OutputCallback
from runbook.transport.known_hosts import KnownHosts, Verdict, default_known_hosts_files
from runbook.transport.runner_session import BOOTSTRAP, RunnerSession, RunnerUnavailable

# paramiko logs handshake failures with tracebacks; we report them as host states.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

CHUNK = 65536
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")


@dataclass
class SshOptions:
    connect_timeout: float = 10.0
    accept_new: bool = False
    known_hosts_files: list[Path] = field(default_factory=default_known_hosts_files)
    use_agent: bool = True
    default_identities: bool = True
    keepalive: int = 15


@dataclass
class HandshakeReport:
    """What connecting took and what happened, for the ssh-handshake collector."""

    tcp_ms: float = 0.0
    ssh_ms: float = 0.0
    auth_ms: float = 0.0
    host_key: str = ""
    auth: str = ""
    via: str | None = None
    new_key_recorded: str | None = None

    def as_text(self) -> str:
        lines = [f"tcp connect: {self.tcp_ms:.1f} ms",
                 f"ssh handshake: {self.ssh_ms:.1f} ms",
                 f"authentication: {self.auth_ms:.1f} ms ({self.auth})",
                 f"host key: {self.host_key}"]
        if self.via:
            lines.append(f"via jump host: {self.via}")
        if self.new_key_recorded:
            lines.append(f"new host key recorded in {self.new_key_recorded}")
        return "\n".join(lines) + "\n"


class SshConnector:
    """Opens connections, sharing known_hosts, loaded keys and jump hosts."""

    def __init__(self, options: SshOptions | None = None,
                 resolve_jump: Callable[[str], Host] | None = None) -> None:
        self.options = options or SshOptions()
        self.known_hosts = KnownHosts(self.options.known_hosts_files)
        self._resolve_jump = resolve_jump or _jump_from_text
        self._jumps: dict[str, SshConnection] = {}
        self._jump_lock = threading.Lock()
        self._key_cache: dict[str, paramiko.PKey | None] = {}
        self._key_lock = threading.Lock()

    def connect(self, host: Host) -> SshConnection:
        via: SshConnection | None = None
        if host.jump:
            hops = [h.strip() for h in host.jump.split(",") if h.strip()]
            via = self._jump_chain(hops)
        return self._open(host, via)

    def close(self) -> None:
        with self._jump_lock:
            for connection in self._jumps.values():
                connection.close()
            self._jumps.clear()

    def _jump_chain(self, hops: list[str]) -> SshConnection:
        via: SshConnection | None = None
        for index, hop in enumerate(hops):
            chain_key = ",".join(hops[: index + 1])
            with self._jump_lock:
                existing = self._jumps.get(chain_key)
                if existing is None or not existing.alive:
                    jump_host = self._resolve_jump(hop)
                    try:
                        existing = self._open(jump_host, via)
                    except HostError as exc:
                        raise HostError(exc.state, f"jump host {hop}: {exc.reason}",
                                        exc.hint) from None
                    self._jumps[chain_key] = existing
            via = existing
        assert via is not None
        return via

    def _open(self, host: Host, via: SshConnection | None) -> SshConnection:
        report = HandshakeReport(via=via.host.name if via else None)
        user = host.user or getpass.getuser()
        timeout = self.options.connect_timeout
        started = time.monotonic()
        sock = self._socket(host, via, timeout)
        report.tcp_ms = (time.monotonic() - started) * 1000
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            phase = time.monotonic()
            try:
                transport.start_client(timeout=timeout)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise _handshake_error(host, exc, timeout) from None
            if not (transport.is_active() and transport.initial_kex_done):
                # start_client returns without an error when its timeout passes
                # before the server has spoken (a blackhole): that is a timeout.
                raise _handshake_error(host, TimeoutError(), timeout)
            report.ssh_ms = (time.monotonic() - phase) * 1000
            self._verify_host_key(host, transport, report)
            phase = time.monotonic()
            report.auth = self._authenticate(transport, host, user)
            report.auth_ms = (time.monotonic() - phase) * 1000
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(self.options.keepalive)
        return SshConnection(host, user, transport, report, max(timeout, 10.0))

    def _socket(self, host: Host, via: SshConnection | None, timeout: float) -> object:
        target = f"{host.address}:{host.port}"
        if via is not None:
            try:
                return via.transport.open_channel(
                    "direct-tcpip", (host.address, host.port), ("127.0.0.1", 0), timeout=timeout)
            except paramiko.ChannelException as exc:
                raise HostError(HostState.UNREACHABLE,
                                f"jump host {via.host.name} cannot reach {target}: {exc}") from None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise HostError(HostState.UNREACHABLE,
                                f"through jump host {via.host.name}: {exc}") from None
        try:
            sock = socket.create_connection((host.address, host.port), timeout=timeout)
        except TimeoutError:
            raise HostError(HostState.TIMEOUT,
                            f"no answer from {target} within {timeout:g}s",
                            "blackholed or firewalled? check the address and security groups") \
                from None
        except ConnectionRefusedError:
            raise HostError(HostState.UNREACHABLE,
                            f"connection refused by {target}: nothing listening",
                            "is sshd running, and on this port?") from None
        except socket.gaierror as exc:
            raise HostError(HostState.UNREACHABLE,
                            f"cannot resolve {host.address}: {exc.strerror}") from None
        except OSError as exc:
            raise HostError(HostState.UNREACHABLE,
                            f"cannot connect to {target}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _verify_host_key(self, host: Host, transport: paramiko.Transport,
                         report: HandshakeReport) -> None:
        key = transport.get_remote_server_key()
        check = self.known_hosts.check(host.address, host.port, key)
        report.host_key = check.offered
        if check.verdict == Verdict.MATCH:
            return
        if check.verdict == Verdict.CHANGED:
            raise HostError(
                HostState.REFUSED,
                f"HOST KEY CHANGED for {check.name}: it offered {check.offered}, "
                f"known_hosts has {check.expected}. Someone may be intercepting this "
                f"connection, or the host was reinstalled. Refused.",
                f"verify the new key out of band, then remove the old one: "
                f"ssh-keygen -R '{check.name}'")
        if not self.options.accept_new:
            raise HostError(
                HostState.REFUSED,
                f"unknown host key for {check.name}: {check.offered}. Refused.",
                "verify the fingerprint, then run again with --accept-new to record it")
        recorded = self.known_hosts.add(host.address, host.port, key)
        report.new_key_recorded = str(recorded) if recorded else "memory"

    def _authenticate(self, transport: paramiko.Transport, host: Host, user: str) -> str:
        tried: list[str] = []
        for label, key in self._candidate_keys(host):
            try:
                transport.auth_publickey(user, key)
                return f"publickey {label}"
            except paramiko.BadAuthenticationType as exc:
                raise HostError(HostState.REFUSED,
                                f"{user}@{host.name} does not accept public keys "
                                f"(allowed: {', '.join(exc.allowed_types)})") from None
            except paramiko.AuthenticationException:
                tried.append(label)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise HostError(HostState.REFUSED,
                                f"authentication failed for {user}@{host.name}: {exc}") from None
        raise HostError(HostState.REFUSED,
                        f"authentication refused for {user}@{host.name} "
                        f"(tried {', '.join(tried) if tried else 'no keys: none found'})",
                        "check identity_file in the inventory, ssh-agent, and the host's "
                        "authorized_keys")

    def _candidate_keys(self, host: Host):  # noqa: ANN202 - generator of (label, key)
        seen: set[bytes] = set()
        files: list[Path] = []
        if host.identity_file:
            files.append(Path(host.identity_file).expanduser())
        for path in files:
            key = self._load_key(path)
            if key is not None and key.asbytes() not in seen:
                seen.add(key.asbytes())
                yield str(path), key
        if self.options.use_agent:
            try:
                agent_keys = paramiko.Agent().get_keys()
            except (paramiko.SSHException, OSError):
                agent_keys = ()
            for key in agent_keys:
                if key.asbytes() not in seen:
                    seen.add(key.asbytes())
                    yield f"agent {key.get_name()}", key
        if self.options.default_identities:
            for name in DEFAULT_IDENTITIES:
                path = Path("~/.ssh").expanduser() / name
                key = self._load_key(path) if path.exists() else None
                if key is not None and key.asbytes() not in seen:
                    seen.add(key.asbytes())
                    yield str(path), key

    def _load_key(self, path: Path) -> paramiko.PKey | None:
        cache_key = str(path)
        with self._key_lock:
            if cache_key in self._key_cache:
                return self._key_cache[cache_key]
            try:
                key: paramiko.PKey | None = paramiko.PKey.from_path(str(path))
            except (paramiko.PasswordRequiredException, paramiko.SSHException, OSError,
                    ValueError):
                key = None  # encrypted (use the agent) or unreadable: try the next one
            self._key_cache[cache_key] = key
            return key


def _handshake_error(host: Host, exc: BaseException, timeout: float) -> HostError:
    text = str(exc) or exc.__class__.__name__
    if "banner" in text.lower() or isinstance(exc, (TimeoutError, socket.timeout)):
        return HostError(HostState.TIMEOUT,
                         f"{host.address}:{host.port} accepted TCP but did not speak SSH "
                         f"within {timeout:g}s",
                         "a hung sshd, a proxy, or something else on that port")
    return HostError(HostState.UNREACHABLE,
                     f"SSH negotiation with {host.address}:{host.port} failed: {text}")


def _jump_from_text(text: str) -> Host:
    parsed = parse_target(text)
    if parsed is None:
        raise HostError(HostState.UNREACHABLE, f"jump host {text!r} is not [user@]host[:port]")
    user, address, port = parsed
    return Host(name=address, address=address, port=port or 22, user=user, source="jump")


class _ChannelStream:
    """A session channel as the runner's byte stream. The runner's own stderr
    (the shell's complaints, not a command's) is drained so it can never fill the
    channel's window, and its start is kept for the error message."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self.stderr_head = bytearray()
        self._drain = threading.Thread(target=self._drain_stderr, name="runner-stderr",
                                       daemon=True)
        self._drain.start()

    def send(self, data: bytes) -> None:
        try:
            self.channel.sendall(data)
        except (paramiko.SSHException, EOFError) as exc:
            raise OSError(str(exc) or "channel closed") from None

    def recv(self, size: int) -> bytes:
        try:
            return self.channel.recv(size)
        except (paramiko.SSHException, EOFError) as exc:
            raise OSError(str(exc) or "channel closed") from None

    def close(self) -> None:
        # Closing twice (a cancel racing the end of a run) finds the transport gone.
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            self.channel.close()

    def _drain_stderr(self) -> None:
        try:
            while data := self.channel.recv_stderr(CHUNK):
                if len(self.stderr_head) < 2048:
                    self.stderr_head.extend(data[: 2048 - len(self.stderr_head)])
        except (paramiko.SSHException, OSError, EOFError):
            return


class SshConnection:
    """One host: every command runs through one runner in one SSH session."""

    def __init__(self, host: Host, user: str, transport: paramiko.Transport,
                 report: HandshakeReport, start_timeout: float = 30.0) -> None:
        self.host = host
        self.user: str | None = user
        self.transport = transport
        self.report = report
        self.description = f"ssh {user}@{host.address}:{host.port}"
        self._start_timeout = start_timeout
        self._runner: RunnerSession | None = None
        self._runner_error: str | None = None
        self._runner_lock = threading.Lock()

    @property
    def is_root(self) -> bool:
        runner = self._runner
        if runner is not None and runner.uid is not None:
            return runner.uid == 0
        return self.user == "root"

    @property
    def alive(self) -> bool:
        return self.transport.is_active()

    def cpu_count(self) -> int | None:
        runner = self._start_runner()
        return runner.cpu_count if runner else None

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback, cap: int | None = None,
            keep_background: bool = False, survive_disconnect: bool = False) -> CommandOutcome:
        runner = self._start_runner()
        if runner is None:
            return CommandOutcome(exit_code=None, started=False, error=self._runner_error)
        return runner.run(command, timeout=timeout, on_stdout=on_stdout, on_stderr=on_stderr,
                          cap=cap, keep_background=keep_background,
                          survive_disconnect=survive_disconnect)

    def _start_runner(self) -> RunnerSession | None:
        """The host's runner, started on first use: one session, one login shell."""
        with self._runner_lock:
            if self._runner is not None and self._runner.alive:
                return self._runner
            if self._runner is not None:
                self._runner_error = self._runner.end_reason
                return None
            if self._runner_error is not None:
                return None
            try:
                channel = self.transport.open_session(timeout=self._start_timeout)
                channel.exec_command(BOOTSTRAP)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._runner_error = f"cannot open an SSH session: {exc or 'refused'}"
                return None
            stream = _ChannelStream(channel)
            try:
                self._runner = RunnerSession(stream, start_timeout=self._start_timeout)
            except RunnerUnavailable as exc:
                said = stream.stderr_head.decode(errors="replace").strip()
                self._runner_error = str(exc) + (f" (the host said: {said[:300]})"
                                                 if said else "")
                return None
            return self._runner

    def stop_running(self) -> bool:
        """Stop, on the host, every command still running through this connection
        (the operator cancelled): the runner does it, no new session is needed."""
        runner = self._runner
        return runner.stop_running() if runner is not None else True

    def open_tunnel(self, port: int, timeout: float) -> paramiko.Channel:
        """A `direct-tcpip` channel from the host to its own 127.0.0.1:PORT (what
        `ssh -L` opens), for reading a service that listens on loopback only."""
        try:
            return self.transport.open_channel(
                "direct-tcpip", ("127.0.0.1", port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as exc:
            raise ConnectionRefusedError(
                111, f"{self.host.name} refused a tunnel to 127.0.0.1:{port} "
                     f"(nothing listening, or AllowTcpForwarding no): {exc}") from None
        except paramiko.SSHException as exc:
            raise OSError(f"SSH tunnel to {self.host.name}: {exc}") from None

    def close(self) -> None:
        runner = self._runner
        if runner is not None:
            runner.close()
        self.transport.close()
