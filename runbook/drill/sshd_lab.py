"""A fleet of real OpenSSH sshd daemons on loopback addresses (127.0.0.x).

Used by the test suite, the benchmarks and training drills. Every lab has its
own throwaway host keys, client key, authorized_keys and known_hosts, so it
never touches the operator's real ~/.ssh.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


class LabError(RuntimeError):
    pass


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


@dataclass
class LabHost:
    name: str
    address: str
    port: int
    directory: Path
    host_key: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def known_hosts_entry(self) -> str:
        key = self.host_key.with_suffix(".pub").read_text().split()
        return f"[{self.address}]:{self.port} {key[0]} {key[1]}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connections(self) -> list[psutil.Process]:
        """The sshd processes serving this host's open connections (one each)."""
        if self.process is None:
            return []
        top = psutil.Process(self.process.pid)
        listener = top if top.name() == "sshd" else next(
            (p for p in top.children() if p.name() == "sshd"), None)
        return listener.children() if listener is not None else []


@dataclass
class SshdLab:
    """`with SshdLab(dir, count=3) as lab:` starts the daemons and stops them after."""

    directory: Path
    count: int = 1
    first_octet: int = 10
    port: int | None = None
    extra_config: str = ""
    hosts: list[LabHost] = field(default_factory=list)
    user: str = field(default_factory=getpass.getuser)
    # Each host sees only its own processes (a PID namespace of its own), as a real
    # host does. Without it every lab host's ps, top and pidstat also walk every
    # other lab host's processes, a cost that grows with the square of the fleet
    # and that no real host pays. Needs root (and unshare); else one shared table.
    own_processes: bool = True
    # Seconds of CPU each login shell burns before it runs the command, as the rc
    # files of real hosts do (pyenv, conda, nvm init); 0 gives an empty rc file.
    # None: the login user's own rc files, whatever they cost.
    login_cost: float | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.client_key = self.directory / "client_ed25519"
        self.known_hosts = self.directory / "known_hosts"
        self.authorized_keys = self.directory / "authorized_keys"

    def __enter__(self) -> SshdLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        sshd = find_sshd()
        if sshd is None:
            raise LabError("sshd not found: install openssh-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # sshd refuses to start without its privilege-separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        if not self.client_key.exists():
            keygen(self.client_key)
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o600)
        if self.login_cost is not None:
            write_login_rc(self.directory / "home", self.login_cost)
        port = self.port or free_port(f"127.0.0.{self.first_octet}")
        for index in range(self.count):
            address = f"127.0.0.{self.first_octet + index}"
            host = self._prepare(f"lab{index + 1}", address, port)
            self.hosts.append(host)
            self.start_host(host, sshd)
        self.write_known_hosts()
        for host in self.hosts:
            wait_for_port(host.address, host.port)

    def _prepare(self, name: str, address: str, port: int) -> LabHost:
        directory = self.directory / name
        directory.mkdir(exist_ok=True)
        host_key = directory / "ssh_host_ed25519_key"
        if not host_key.exists():
            keygen(host_key)
        (directory / "sshd_config").write_text(self._config(address, port, directory, host_key))
        return LabHost(name, address, port, directory, host_key)

    def _config(self, address: str, port: int, directory: Path, host_key: Path) -> str:
        return "\n".join([
            f"ListenAddress {address}:{port}",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self.user}",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "MaxStartups 200:30:400",
            # one "Starting session" line per shell: how tests count sessions
            "LogLevel VERBOSE",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            # Debian's bash sources ~/.bashrc for every command sshd runs: the
            # lab pays that, as real hosts do. With login_cost the rc file is the
            # lab's own (HOME points at it), of a known cost.
            *([f"SetEnv HOME={self.directory / 'home'}"] if self.login_cost is not None
              else []),
            self.extra_config,
            "",
        ])

    @property
    def isolated(self) -> bool:
        """Whether each host gets its own process table (see own_processes)."""
        return self.own_processes and os.geteuid() == 0 and shutil.which("unshare") is not None

    def start_host(self, host: LabHost, sshd: str | None = None) -> None:
        binary = sshd or find_sshd()
        assert binary is not None
        argv = [binary, "-D", "-e", "-f", str(host.directory / "sshd_config")]
        if self.isolated:
            # sshd is the namespace's init: when it goes, everything it started goes.
            argv = ["unshare", "--pid", "--kill-child", "--mount-proc", "--", *argv]
        log = open(host.directory / "sshd.log", "ab")  # noqa: SIM115 - owned by the daemon
        host.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()

    def stop_host(self, host: LabHost) -> None:
        if host.process is not None and host.process.poll() is None:
            # unshare --fork ignores TERM while it waits: TERM its sshd, and it follows.
            targets: list[psutil.Process] = []
            with contextlib.suppress(psutil.Error):
                top = psutil.Process(host.process.pid)
                targets = (top.children() if top.name() == "unshare" else []) or [top]
            for target in targets:
                with contextlib.suppress(psutil.Error):
                    target.terminate()
            try:
                host.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.process.wait()
        host.process = None

    def stop(self) -> None:
        for host in self.hosts:
            self.stop_host(host)

    def write_known_hosts(self) -> None:
        self.known_hosts.write_text("".join(h.known_hosts_entry + "\n" for h in self.hosts))

    def rotate_host_key(self, host: LabHost) -> None:
        """Give a host a new key (what a reinstall, or an attacker, looks like)."""
        self.stop_host(host)
        host.host_key.unlink()
        host.host_key.with_suffix(".pub").unlink()
        keygen(host.host_key)
        self.start_host(host)
        wait_for_port(host.address, host.port)

    def inventory_yaml(self) -> str:
        lines = ["hosts:"]
        for host in self.hosts:
            lines += [f"  {host.name}:", f"    address: {host.address}", f"    port: {host.port}",
                      f"    user: {self.user}", f"    identity_file: {self.client_key}"]
        return "\n".join(lines) + "\n"


def write_login_rc(home: Path, cpu_seconds: float) -> Path:
    """A ~/.bashrc that burns `cpu_seconds` of CPU, measured here once (CPU time,
    not wall time, so a loaded machine does not shrink it)."""
    home.mkdir(parents=True, exist_ok=True)
    rc = home / ".bashrc"
    if cpu_seconds <= 0:
        rc.write_text("# runbook lab: a login shell that costs nothing\n")
        return rc
    probe_rounds = 100000
    loop = "i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"
    before = os.times()
    subprocess.run(["bash", "--norc", "-c", loop.format(n=probe_rounds)], check=True)
    after = os.times()
    spent = max(1e-3, (after.children_user + after.children_system)
                - (before.children_user + before.children_system))
    rounds = max(1, int(probe_rounds * cpu_seconds / spent))
    rc.write_text("# runbook lab: what a real host's rc files cost "
                  f"({cpu_seconds:g} s of CPU per shell)\n" + loop.format(n=rounds) + "\n")
    return rc


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "runbook-lab",
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def wait_for_port(address: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LabError(f"sshd on {address}:{port} did not start within {timeout:.0f}s")
