"""What `ssh NAME` would use for a name, from a parsed OpenSSH config (the
settings an inventory host or an ad-hoc target is filled from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paramiko

from runbook.hosts import is_ipv6, is_valid_host_name


def ssh_settings(config: paramiko.SSHConfig, name: str) -> dict[str, Any]:
    """Host fields for `name` as `ssh name` would see them. ValueError if the
    config gives something unusable."""
    try:
        options = config.lookup(name)
    except (paramiko.SSHException, ImportError, OSError) as exc:
        raise ValueError(f"lookup failed: {exc}") from None
    address = options.get("hostname") or name
    if not is_address(address):
        raise ValueError(f"HostName {address!r} is not a valid host name or address")
    port = options.get("port") or "22"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"Port {port!r} is not a number from 1 to 65535")
    identities = options.get("identityfile") or []
    jump = options.get("proxyjump")
    return {
        "address": address,
        "port": int(port),
        "user": options.get("user"),
        "identity_file": str(Path(identities[0]).expanduser()) if identities else None,
        "jump": None if jump is None or jump.lower() == "none" else jump,
    }


def is_address(text: str) -> bool:
    return (":" not in text and is_valid_host_name(text)) or is_ipv6(text)
