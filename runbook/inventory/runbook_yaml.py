"""The runbook inventory YAML: `hosts:`, `defaults:` and `groups:`, checked
with the file, line and field of every mistake."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbook.errors import InventoryError
from runbook.hosts import Host, is_valid_host_name
from runbook.inventory.model import NAME_RULE, Inventory
from runbook.inventory.ssh_config import is_jump
from runbook.inventory.ssh_lookup import is_address
from runbook.yamlsource import line_of, validate


class HostSettings(BaseModel):
    """What `defaults:` may set, and every host may override."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    jump: str | None = None
    project: str | None = None
    role: str | None = None
    tags: list[str] = Field(default_factory=list)
    local: bool | None = None
    vars: dict[str, str] = Field(default_factory=dict)

    @field_validator("port", mode="before")
    @classmethod
    def _port_is_a_number(cls, port: Any) -> Any:
        # YAML's `true` would otherwise be taken as port 1.
        if isinstance(port, bool):
            raise ValueError(f"port must be a number from 1 to 65535, not {str(port).lower()}")
        return port

    @field_validator("port")
    @classmethod
    def _port_in_range(cls, port: int | None) -> int | None:
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be from 1 to 65535, got {port}")
        return port


class HostEntry(HostSettings):
    address: str | None = None


class InventoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: HostSettings = Field(default_factory=HostSettings)
    hosts: dict[str, HostEntry] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_nothing(cls, data: Any) -> Any:
        # `defaults:` with nothing under it, or `web1:` with no settings, is fine.
        if isinstance(data, dict):
            data = {k: ({} if v is None and k != "groups" else v) for k, v in data.items()}
            if isinstance(data.get("hosts"), dict):
                data["hosts"] = {k: {} if v is None else v for k, v in data["hosts"].items()}
        return data


def runbook_inventory(path: Path, document: Any) -> Inventory:
    spec = validate(InventoryFile, document, path, InventoryError)

    def fail(location: list[Any], field: str, problem: str, expected: str | None = None) -> None:
        raise InventoryError(path, line_of(document, location), field, problem, expected)

    def setting(name: str, entry: HostEntry, key: str) -> tuple[Any, list[Any], str]:
        """The value a host gets, and where it was written (for errors)."""
        if key in entry.model_fields_set:
            return getattr(entry, key), ["hosts", name, key], f"hosts.{name}.{key}"
        return getattr(spec.defaults, key), ["defaults", key], f"defaults.{key}"

    for name in spec.hosts:
        if not is_valid_host_name(name):
            fail(["hosts", name], f"hosts.{name}", f"{name!r} is not a valid host name", NAME_RULE)
    hosts: dict[str, Host] = {}
    for name, entry in spec.hosts.items():
        if "address" in entry.model_fields_set and not (entry.address or "").strip():
            fail(["hosts", name, "address"], f"hosts.{name}.address", "address is empty",
                 f"an address, or no `address:` line to use the name {name!r}")
        address = entry.address or name
        if not is_address(address):
            fail(["hosts", name, "address"], f"hosts.{name}.address",
                 f"{address!r} is not a valid host name or address", NAME_RULE)
        jump, where, field_name = setting(name, entry, "jump")
        if jump is not None and not is_jump(jump, spec.hosts):
            fail(where, field_name, f"{jump!r} is neither a host in this inventory nor "
                 "[user@]host[:port]", close_hint(jump, spec.hosts))
        identity = setting(name, entry, "identity_file")[0]
        hosts[name] = Host(
            name=name, address=address,
            port=setting(name, entry, "port")[0] or 22,
            user=setting(name, entry, "user")[0],
            identity_file=str(Path(identity).expanduser()) if identity else None,
            jump=jump,
            project=setting(name, entry, "project")[0],
            role=setting(name, entry, "role")[0],
            tags=tuple(dict.fromkeys([*spec.defaults.tags, *entry.tags])),
            local=bool(setting(name, entry, "local")[0]),
            source="inventory",
            vars={**spec.defaults.vars, **entry.vars},
        )
    groups: dict[str, list[str]] = {}
    for group, members in spec.groups.items():
        if not is_valid_host_name(group) or group == "all" or group in hosts:
            why = ("'all' is reserved for every host" if group == "all" else
                   "a host has the same name" if group in hosts else "not a valid group name")
            fail(["groups", group], f"groups.{group}", f"group {group!r}: {why}", NAME_RULE)
        for index, member in enumerate(members):
            if member not in hosts:
                fail(["groups", group, index], f"groups.{group}[{index}]",
                     f"{member!r} is not a host in this inventory", close_hint(member, hosts))
        groups[group] = list(dict.fromkeys(members))
    inventory = Inventory(sources=[str(path)])
    inventory.merge(Inventory(hosts, groups))
    return inventory


def close_hint(word: str, names: Any) -> str | None:
    close = difflib.get_close_matches(word, list(names), n=3)
    return f"one of {', '.join(close)}" if close else None
