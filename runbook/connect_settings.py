"""How this run reaches hosts: the operator's choices, made once.

The command line builds one `ConnectSettings` from its options; the app gets
the same object and hands it to every collection and remediation it starts, and
the collect worker receives it as JSON. Each user asks it for what it needs:
the SSH client's options, or the host a `jump:` name stands for.

Nothing here imports paramiko or the inventory until it is used, so a command
that only carries the settings along does not pay for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runbook.hosts import Host
    from runbook.inventory import Inventory
    from runbook.transport.ssh import SshOptions

DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConnectSettings:
    # Inventory files; none means the config dir's inventory.yaml and ~/.ssh/config.
    inventories: tuple[Path, ...] = ()
    # known_hosts files; none means OpenSSH's (~/.ssh/known_hosts, /etc/ssh/...).
    known_hosts: tuple[Path, ...] = ()
    # OpenSSH's accept-new: record an unknown key. A changed key is always refused.
    accept_new: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        # Callers hand lists from click or JSON; the settings are frozen, so are these.
        object.__setattr__(self, "inventories", tuple(Path(p) for p in self.inventories))
        object.__setattr__(self, "known_hosts", tuple(Path(p) for p in self.known_hosts))
        object.__setattr__(self, "connect_timeout", float(self.connect_timeout))

    def ssh_options(self) -> SshOptions:
        from runbook.transport.known_hosts import default_known_hosts_files
        from runbook.transport.ssh import SshOptions

        return SshOptions(connect_timeout=self.connect_timeout, accept_new=self.accept_new,
                          known_hosts_files=list(self.known_hosts or default_known_hosts_files()))

    def inventory(self) -> Inventory:
        """The inventory as the files say now: the app lives for hours, and the
        operator may fix a host's entry in the middle of an incident."""
        from runbook.inventory import load_inventory

        return load_inventory(list(self.inventories))

    def jump_resolver(self, inventory: Inventory | None = None) -> Callable[[str], Host]:
        """For one collection or execution: `jump: bastion` names an inventory host
        (its address, user, key), as OpenSSH's ProxyJump names a Host block;
        anything else is [user@]host[:port]. The inventory is read at the first
        jump, and once."""
        found: list[Inventory] = [inventory] if inventory is not None else []
        lock = threading.Lock()

        def resolve(text: str) -> Host:
            with lock:
                if not found:
                    found.append(self.inventory())
            return found[0].select([text])[0]

        return resolve

    def as_json(self) -> dict[str, Any]:
        return {"inventories": [str(p) for p in self.inventories],
                "known_hosts": [str(p) for p in self.known_hosts],
                "accept_new": self.accept_new, "connect_timeout": self.connect_timeout}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConnectSettings:
        return cls(inventories=tuple(data.get("inventories") or ()),
                   known_hosts=tuple(data.get("known_hosts") or ()),
                   accept_new=bool(data.get("accept_new")),
                   connect_timeout=data.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
