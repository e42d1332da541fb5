"""Host keys checked the way OpenSSH checks them.

- a known key that matches: go on;
- an unknown host: refused, with its fingerprint, unless the operator asked for
  `--accept-new` (OpenSSH's StrictHostKeyChecking=accept-new), which records it;
- a changed key: always refused, loudly.

The files are parsed once per run and shared by every connection, because a
large hashed known_hosts is slow to parse.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import paramiko


class Verdict(StrEnum):
    MATCH = "match"
    UNKNOWN = "unknown"
    CHANGED = "changed"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint: `SHA256:` + unpadded base64 of the digest."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_entry_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class KeyCheck:
    verdict: Verdict
    name: str
    offered: str  # key type and fingerprint the host offered
    expected: str | None = None  # what known_hosts holds, for a changed key


class KnownHosts:
    def __init__(self, files: list[Path], write_to: Path | None = None) -> None:
        self.files = [f for f in files]
        self.write_to = write_to or (files[0] if files else None)
        self._keys = paramiko.HostKeys()
        self._lock = threading.Lock()
        for path in self.files:
            if path.is_file():
                # paramiko skips lines it cannot read instead of failing the file
                self._keys.load(str(path))

    def check(self, address: str, port: int, key: paramiko.PKey) -> KeyCheck:
        name = host_entry_name(address, port)
        offered = f"{key.get_name()} {fingerprint(key)}"
        with self._lock:
            known = self._keys.lookup(name)
        if not known:
            return KeyCheck(Verdict.UNKNOWN, name, offered)
        stored = known.get(key.get_name())
        if stored is not None and stored.asbytes() == key.asbytes():
            return KeyCheck(Verdict.MATCH, name, offered)
        # Same type with another key, or only other types known: OpenSSH treats
        # a known host presenting a key it has no record of as changed.
        expected = ", ".join(f"{t} {fingerprint(k)}" for t, k in known.items())
        return KeyCheck(Verdict.CHANGED, name, offered, expected)

    def add(self, address: str, port: int, key: paramiko.PKey) -> Path | None:
        """Record a newly accepted key (in memory and in the file)."""
        name = host_entry_name(address, port)
        with self._lock:
            self._keys.add(name, key.get_name(), key)
            if self.write_to is None:
                return None
            self.write_to.parent.mkdir(parents=True, exist_ok=True)
            with self.write_to.open("a", encoding="ascii") as handle:
                handle.write(f"{name} {key.get_name()} {key.get_base64()}\n")
            return self.write_to


def default_known_hosts_files() -> list[Path]:
    return [Path("~/.ssh/known_hosts").expanduser(), Path("/etc/ssh/ssh_known_hosts")]
