"""A fleet of real sshd daemons on loopback for the collection tests, and the
ways a host can be broken: nothing listening, or a listener that never speaks.

The daemons come from `runbook.drill.sshd_lab.SshdLab`; this module only adds what the
tests need around it (Host objects, inventory files, broken endpoints).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbook.drill.sshd_lab import SshdLab, find_sshd
from runbook.hosts import Host
from runbook.transport.ssh import SshOptions

# Each lab gets its own block of 127.0.0.x addresses, so a function-scoped lab
# whose key is rotated never shares an address:port with the session fleet.
FLEET_FIRST_OCTET = 60
FLEET_SIZE = 4
# Seconds of CPU a lab login shell burns: pyenv, conda or nvm init on a real host.
LOGIN_COST = 0.2


def require_sshd() -> None:
    if find_sshd() is None:
        pytest.skip("OpenSSH sshd is not installed (apt-get install openssh-server); "
                    "the SSH collection tests need real daemons")


def start_lab(directory: Path, count: int, first_octet: int, extra_config: str = "",
              login_cost: float | None = None) -> SshdLab:
    """A started lab; stopped again (every daemon) if starting any of them fails."""
    require_sshd()
    lab = SshdLab(directory, count=count, first_octet=first_octet, extra_config=extra_config,
                  login_cost=login_cost)
    try:
        lab.start()
    except BaseException:
        lab.stop()
        raise
    return lab


def lab_hosts(lab: SshdLab, **overrides: object) -> list[Host]:
    """The lab's daemons as inventory hosts (named lab1, lab2, ...)."""
    settings: dict[str, object] = {"user": lab.user, "identity_file": str(lab.client_key),
                                   "source": "inventory", **overrides}
    return [Host(name=h.name, address=h.address, port=h.port, **settings)  # type: ignore[arg-type]
            for h in lab.hosts]


def lab_options(lab: SshdLab, *, known_hosts: Path | None = None,
                connect_timeout: float = 2.0, **kw: object) -> SshOptions:
    """SSH options that use only the lab's files: no agent, no ~/.ssh keys."""
    return SshOptions(connect_timeout=connect_timeout,
                      known_hosts_files=[known_hosts or lab.known_hosts],
                      use_agent=False, default_identities=False, **kw)  # type: ignore[arg-type]


def write_inventory(lab: SshdLab, path: Path, extra: str = "") -> Path:
    """The lab's inventory YAML, with `extra` host entries appended under hosts:."""
    path.write_text(lab.inventory_yaml() + extra)
    return path


@dataclass
class DeadEndpoint:
    """An address:port where nothing listens: connecting is refused at once.

    The port stays bound (never listening) while the test runs, so no other
    process can start listening there and make it reachable."""

    address: str
    port: int
    _socket: socket.socket = field(repr=False)

    @classmethod
    def open(cls, address: str = "127.0.0.1") -> DeadEndpoint:
        sock = socket.socket()
        sock.bind((address, 0))
        return cls(address, sock.getsockname()[1], sock)

    def close(self) -> None:
        self._socket.close()


class Blackhole:
    """A TCP listener that accepts every connection and never sends a byte:
    what a hung sshd, or a proxy eating the connection, looks like."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self._listener = socket.socket()
        self._listener.bind((address, 0))
        self._listener.listen(16)
        self.address, self.port = self._listener.getsockname()[:2]
        self.accepted: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            self.accepted.append(conn)  # held open, silent, until stop()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):  # not connected: nothing to shut down
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


OPERATOR = "runbook-op"


@contextlib.contextmanager
def operator_lab(first_octet: int, sudo_allowed: list[str],
                 login_cost: float | None = LOGIN_COST) -> Iterator[SshdLab]:
    """One sshd host where the operator logs in as a plain user, OPERATOR, that
    `sudo -n` lets run `/bin/sh -c COMMAND` for the patterns in `sudo_allowed`
    only (sudoers wildcards) and for nothing else: how real hosts are run."""
    require_sshd()
    if os.geteuid() != 0 or shutil.which("sudo") is None or shutil.which("useradd") is None:
        pytest.skip("a lab with its own login user needs root, sudo and useradd")
    if subprocess.run(["id", OPERATOR], capture_output=True).returncode != 0:
        # "*": no password to log in with, but not locked (sshd refuses "!").
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash",
                        "--password", "*", OPERATOR], check=True, capture_output=True)
    rules = Path(f"/etc/sudoers.d/{OPERATOR}")
    commands = ", ".join(f"/bin/sh -c {pattern}" for pattern in sudo_allowed)
    rules.write_text(f"Defaults:{OPERATOR} !requiretty\n"
                     f"{OPERATOR} ALL=(root) NOPASSWD: {commands}\n")
    rules.chmod(0o440)
    # The login user must be able to read its rc file and authorized_keys, so the
    # lab lives outside pytest's root-only temporary directory.
    directory = Path(tempfile.mkdtemp(prefix="runbook-operator-lab-"))
    directory.chmod(0o755)
    lab = SshdLab(directory, count=1, first_octet=first_octet, user=OPERATOR,
                  login_cost=login_cost)
    try:
        lab.start()
        lab.authorized_keys.chmod(0o644)
        yield lab
    finally:
        lab.stop()
        rules.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
