"""SSH through paramiko: one connection per host, many commands as channels.

Measured pitfalls this module works around (loopback, this machine):
- paramiko sets no TCP_NODELAY; with Nagle on, connect+auth took 64 ms and a
  channel open 43 ms, with it set 17 ms and 0.3 ms. We make the socket.
- sshd allows 10 sessions per connection (MaxSessions): channels beyond our
  limit wait for a slot instead of failing.
- paramiko has no ProxyJump: we open direct-tcpip channels through the jump host.
- a command abandoned on timeout keeps running on the host unless killed: every
  command reports its process group first, and a timeout kills that group.
"""

from __future__ import annotations

import getpass
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from runbook.hosts import Host
from runbook.transport.base import (
    CommandOutcome,
    HostError,
    HostState,
    MarkerFilter,
    OutputCallback,
    wrap_for_group_kill,
)
from runbook.transport.known_hosts import KnownHosts, Verdict, default_known_hosts_files

# paramiko logs handshake failures with tracebacks; we report them as host states.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

CHUNK = 65536
# After the exit status, how long output may stay quiet before we stop waiting
# for EOF (a background process can hold the command's stdout open).
EXIT_DRAIN_GRACE = 2.0
# paramiko wakes a channel's pipe on data and on EOF, so an idle command need not
# be polled often; hundreds of threads polling every 50 ms cost real CPU.
IDLE_WAIT = 0.5
DEFAULT_IDENTITIES = ("id_ed25519", "id_ecdsa", "id_rsa")


@dataclass
class SshOptions:
    connect_timeout: float = 10.0
    accept_new: bool = False
    known_hosts_files: list[Path] = field(default_factory=default_known_hosts_files)
    use_agent: bool = True
    default_identities: bool = True
    max_sessions: int = 10
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
        return SshConnection(host, user, transport, self.options.max_sessions, report)

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


def _wait_readable(channel: paramiko.Channel, seconds: float) -> None:
    """Sleep until the channel has data, or `seconds` pass. poll, not select:
    with dozens of hosts, channel pipes pass select's 1024-descriptor limit."""
    poller = select.poll()
    poller.register(channel.fileno(), select.POLLIN)
    poller.poll(seconds * 1000)


def _jump_from_text(text: str) -> Host:
    from runbook.inventory import parse_target

    parsed = parse_target(text)
    if parsed is None:
        raise HostError(HostState.UNREACHABLE, f"jump host {text!r} is not [user@]host[:port]")
    user, address, port = parsed
    return Host(name=address, address=address, port=port or 22, user=user, source="jump")


class SshConnection:
    def __init__(self, host: Host, user: str, transport: paramiko.Transport,
                 max_sessions: int, report: HandshakeReport) -> None:
        self.host = host
        self.user: str | None = user
        self.transport = transport
        self.report = report
        self.description = f"ssh {user}@{host.address}:{host.port}"
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._running: set[MarkerFilter] = set()
        self._running_lock = threading.Lock()

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    @property
    def alive(self) -> bool:
        return self.transport.is_active()

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback) -> CommandOutcome:
        deadline = time.monotonic() + timeout
        with self._slots:
            try:
                channel = self._open_session(deadline)
            except HostError as exc:
                return CommandOutcome(exit_code=None, error=exc.reason)
            if channel is None:
                return CommandOutcome(exit_code=None, timed_out=True,
                                      error="waited for a free SSH session until the timeout")
            stderr = MarkerFilter(on_stderr)
            with self._running_lock:
                self._running.add(stderr)
            try:
                channel.exec_command(wrap_for_group_kill(command))
                finished = self._pump(channel, on_stdout, stderr, deadline)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                channel.close()
                return CommandOutcome(exit_code=None, error=f"connection lost: {exc}")
            finally:
                with self._running_lock:
                    self._running.discard(stderr)
            stderr.flush()
            if not finished:
                channel.close()
                stopped = self._stop_groups([stderr.pgid] if stderr.pgid else [])
                return CommandOutcome(exit_code=None, timed_out=True, stopped_remotely=stopped)
            status = channel.recv_exit_status()
            channel.close()
        if status == -1:
            return CommandOutcome(exit_code=None, signal="killed by a signal (no exit status)")
        return CommandOutcome(exit_code=status)

    def _open_session(self, deadline: float) -> paramiko.Channel | None:
        """A new channel, retrying while the server says it has no session free."""
        pause = 0.05
        while True:
            try:
                return self.transport.open_session(timeout=max(1.0, deadline - time.monotonic()))
            except (paramiko.ChannelException, paramiko.SSHException) as exc:
                # The server refuses a session while it still counts one we just
                # closed (MaxSessions). paramiko keeps the refusal in one slot per
                # connection, so under concurrency it may surface as a plain
                # "Unable to open channel." instead of a ChannelException.
                retryable = isinstance(exc, paramiko.ChannelException) or (
                    self.transport.is_active() and "Unable to open channel" in str(exc))
                if not retryable:
                    raise HostError(HostState.FAILED, f"cannot open a channel: {exc}") from None
                if time.monotonic() + pause > deadline:
                    return None
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
            except (OSError, EOFError) as exc:
                raise HostError(HostState.FAILED, f"cannot open a channel: {exc}") from None

    @staticmethod
    def _pump(channel: paramiko.Channel, on_stdout: OutputCallback, on_stderr: OutputCallback,
              deadline: float) -> bool:
        """Stream both outputs until the command has exited and its output has
        ended (True), or until the deadline (False).

        sshd sends the exit status as soon as the command exits, while the end of
        its output can still sit in the pipe waiting for window space (measured:
        ten 3 MB outputs on one connection each lost up to 700 KB when we stopped
        at the exit status). The output is complete at EOF. A background process
        that keeps the command's stdout open would hold EOF off, so after the exit
        status we wait for EOF only until the output has been quiet for a while.
        """
        quiet_since: float | None = None
        while True:
            moved = False
            while channel.recv_ready():
                on_stdout(channel.recv(CHUNK))
                moved = True
            while channel.recv_stderr_ready():
                on_stderr(channel.recv_stderr(CHUNK))
                moved = True
            drained = not channel.recv_ready() and not channel.recv_stderr_ready()
            if drained and channel.closed:
                return True
            if drained and channel.exit_status_ready():
                if channel.eof_received:
                    return True
                now = time.monotonic()
                if moved or quiet_since is None:
                    quiet_since = now
                elif now - quiet_since >= EXIT_DRAIN_GRACE:
                    return True
            if time.monotonic() >= deadline:
                return False
            if not moved:
                _wait_readable(channel, min(IDLE_WAIT, max(0.0, deadline - time.monotonic())))

    def stop_running(self) -> bool:
        """Stop, on the host, every command still running through this connection
        (the operator cancelled): closing the connection alone would leave them."""
        with self._running_lock:
            groups = [f.pgid for f in self._running if f.pgid is not None]
        return self._stop_groups(groups) if groups else True

    def _stop_groups(self, pgids: list[int]) -> bool:
        """TERM the commands' process groups on the host, then KILL what is left."""
        if not pgids:
            return False
        targets = " ".join(f"-{pgid}" for pgid in sorted(set(pgids)))
        kill = (f"kill -TERM -- {targets} 2>/dev/null; sleep 1; "
                f"kill -KILL -- {targets} 2>/dev/null; true")
        try:
            channel = self.transport.open_session(timeout=10)
            channel.exec_command(kill)
            channel.settimeout(15)
            channel.recv_exit_status()
            channel.close()
            return True
        except (paramiko.SSHException, OSError, EOFError):
            return False

    def close(self) -> None:
        self.transport.close()
