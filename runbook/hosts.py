"""A host the operator can point runbook at, wherever it was declared."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

# What a host name or address may look like before it is ever used as a target:
# DNS labels, IPv4, bracket-free IPv6, and the '_' that ssh_config aliases use.
# Anything else (spaces, ';', '$', quotes) is refused rather than quoted, because
# a host name also ends up in file names, ssh arguments and reports.
HOST_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:%-]{0,252}$")

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_valid_host_name(name: str) -> bool:
    return bool(HOST_PATTERN.match(name))


USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
BRACKETED = re.compile(r"^\[([^\]]+)\](?::([^:]*))?$")  # [::1]:2222


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_target(text: str) -> tuple[str | None, str, int | None] | None:
    """`[user@]host[:port]` (IPv6 as `[::1]:2222` or bare `::1`) as
    (user, host, port), or None when it is not a usable target."""
    user, at, rest = text.rpartition("@")
    if at and not USER_NAME.match(user):
        return None
    bracketed = BRACKETED.match(rest)
    if bracketed:
        host, port_text = bracketed.groups()
        if not is_ipv6(host):
            return None
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
    else:
        host, port_text = rest, None
    if not ((":" not in host and is_valid_host_name(host)) or is_ipv6(host)):
        return None
    if port_text is not None and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        return None
    return (user if at else None), host, (int(port_text) if port_text is not None else None)


@dataclass(frozen=True)
class Host:
    """One target. `name` is what the operator types and what the journal records;
    `address` is where to connect."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    identity_file: str | None = None
    jump: str | None = None
    project: str | None = None
    role: str | None = None
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    local: bool = False
    source: str = "ad-hoc"
    vars: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def as_record(self) -> dict[str, object]:
        """The JSON-friendly form written into the journal."""
        record: dict[str, object] = {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity_file": self.identity_file,
            "jump": self.jump,
            "project": self.project,
            "role": self.role,
            "tags": list(self.tags),
            "groups": list(self.groups),
            "local": self.local,
            "source": self.source,
            "vars": dict(self.vars),
        }
        return record

    @classmethod
    def from_record(cls, record: dict[str, object]) -> Host:
        return cls(
            name=str(record["name"]),
            address=str(record.get("address") or record["name"]),
            port=int(record.get("port") or 22),  # type: ignore[arg-type]
            user=_opt(record.get("user")),
            identity_file=_opt(record.get("identity_file")),
            jump=_opt(record.get("jump")),
            project=_opt(record.get("project")),
            role=_opt(record.get("role")),
            tags=tuple(record.get("tags") or ()),  # type: ignore[arg-type]
            groups=tuple(record.get("groups") or ()),  # type: ignore[arg-type]
            local=bool(record.get("local")),
            source=str(record.get("source") or "journal"),
            vars={str(k): str(v) for k, v in dict(record.get("vars") or {}).items()},  # type: ignore[call-overload]
        )

    def var_list(self, name: str) -> list[str]:
        """A host variable holding a list: one item per line (how runbook stores
        paths, which may hold spaces), else `a.log, b.log` or `a.log b.log`."""
        value = self.vars.get(name, "")
        if "\n" in value:
            return [item for item in value.split("\n") if item]
        return [item for item in value.replace(",", " ").split() if item]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
