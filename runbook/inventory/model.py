"""The inventory as a value: hosts and groups from every source, and the one
selector grammar that picks among them (or among an incident's hosts)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from runbook import paths as runbook_paths
from runbook.errors import HostSelectionError
from runbook.hosts import BRACKETED, LOCAL_NAMES, Host, parse_target
from runbook.inventory.ssh_lookup import ssh_settings

if TYPE_CHECKING:  # the type only; paramiko is loaded by the ssh_config source
    import paramiko

SELECTOR_HELP = ("a host, a group (or group:NAME), role:NAME, tag:NAME, project:NAME, all, "
                 "a glob such as web*, or an ad-hoc [user@]host[:port]")


NAME_RULE = "letters, digits, '.', '-', '_' (no spaces or shell characters)"


# Characters a selector may hold. Everything else (spaces, ';', '$', quotes,
# backticks, '=', '/') is refused outright, never quoted and passed on.
_SELECTOR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789_.-:%@*?[],")


_PREFIXES = ("group", "role", "tag", "project")


@dataclass
class Inventory:
    hosts: dict[str, Host] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    # Problems that were skipped rather than raised (a broken default ~/.ssh/config).
    warnings: list[str] = field(default_factory=list)
    # Kept so that ad-hoc hosts get the same HostName/User/Port/ProxyJump as `ssh`.
    ssh_config: paramiko.SSHConfig | None = field(default=None, repr=False, compare=False)

    def get(self, name: str) -> Host | None:
        return self.hosts.get(name)

    def merge(self, other: Inventory) -> None:
        """Lay `other` over this inventory: its hosts replace same-named ones,
        group members add up."""
        self.hosts.update(other.hosts)
        for group, members in other.groups.items():
            self.groups[group] = list(dict.fromkeys([*self.groups.get(group, ()), *members]))
        self.sources.extend(other.sources)
        self.warnings.extend(other.warnings)
        self.ssh_config = other.ssh_config or self.ssh_config
        membership: dict[str, list[str]] = {}
        for group, members in self.groups.items():
            for name in members:
                membership.setdefault(name, []).append(group)
        for name, host in self.hosts.items():
            groups = tuple(membership.get(name, ()))
            if groups != host.groups:
                self.hosts[name] = replace(host, groups=groups)

    def select(self, selectors: Sequence[str], *, allow_ad_hoc: bool = True) -> list[Host]:
        """The hosts the selectors name, de-duplicated by name, in order of first
        appearance. `allow_ad_hoc=False` refuses hosts the inventory lacks."""
        if isinstance(selectors, str):
            selectors = [selectors]
        chosen: dict[str, Host] = {}
        for selector in selectors:
            for part in _split_selector(selector):
                for host in self._match(part, allow_ad_hoc):
                    chosen.setdefault(host.name, host)
        return list(chosen.values())

    def _match(self, selector: str, allow_ad_hoc: bool) -> list[Host]:
        if selector == "all":
            if not self.hosts:
                raise HostSelectionError("'all' matches no host: the inventory is empty",
                                         f"add hosts to {runbook_paths.default_inventory()} "
                                         "or pass --inventory FILE")
            return list(self.hosts.values())
        kind, colon, value = selector.partition(":")
        if colon and kind in _PREFIXES and value:
            return self._found(selector, self._by(kind, value))
        if selector in self.hosts:
            return [self.hosts[selector]]
        if selector in self.groups:
            return self._found(selector, self._by("group", selector))
        if "*" in selector or "?" in selector or ("[" in selector and not _is_bracketed(selector)):
            return self._found(selector, [h for n, h in self.hosts.items()
                                          if fnmatchcase(n, selector)])
        target = parse_target(selector)
        if target is None or (not allow_ad_hoc and target[1] not in self.hosts):
            raise self._no_match(selector)
        return [self._ad_hoc(*target)]

    def _by(self, kind: str, pattern: str) -> list[Host]:
        if kind == "group":
            names = [n for g, members in self.groups.items() if fnmatchcase(g, pattern)
                     for n in members]
            return [self.hosts[n] for n in dict.fromkeys(names) if n in self.hosts]
        if kind == "tag":
            return [h for h in self.hosts.values()
                    if any(fnmatchcase(t, pattern) for t in h.tags)]
        return [h for h in self.hosts.values()
                if fnmatchcase(getattr(h, kind) or "", pattern)]

    def _found(self, selector: str, hosts: list[Host]) -> list[Host]:
        if not hosts:
            raise self._no_match(selector)
        return hosts

    def _ad_hoc(self, user: str | None, name: str, port: int | None) -> Host:
        if name in self.hosts:  # `root@web1`: the inventory host, as another user
            base = self.hosts[name]
            return replace(base, user=user or base.user, port=port or base.port)
        if user is None and port is None and name in LOCAL_NAMES:
            return Host(name=name, address=name, local=True, source="local")
        settings: dict[str, Any] = {"address": name}
        if self.ssh_config is not None:
            try:
                settings = ssh_settings(self.ssh_config, name)
            except ValueError as exc:
                raise HostSelectionError(f"{name}: the ssh config gives {exc}",
                                         "fix the matching Host block in the ssh config") from None
        # As with `ssh -p/-l`, what the operator typed beats the config.
        settings["user"] = user or settings.get("user")
        settings["port"] = port or settings.get("port", 22)
        return Host(name=name, source="ad-hoc", **settings)

    def _no_match(self, selector: str) -> HostSelectionError:
        kind, colon, value = selector.partition(":")
        prefixed = bool(colon) and kind in _PREFIXES
        probe = (value if prefixed else selector).replace("*", "").replace("?", "")
        # Compare bare names (so 'role:' does not make every role look close),
        # then show each the way it is selected.
        shown: dict[str, list[str]] = {name: [name] for name in self.hosts}
        for other in _PREFIXES:
            for name in self._values(other):
                plain = other == "group" and not prefixed
                shown.setdefault(name, []).append(name if plain else f"{other}:{name}")
        close = difflib.get_close_matches(probe, list(shown), n=3, cutoff=0.55)
        choices = list(dict.fromkeys(s for name in close for s in shown[name]))[:4]
        hint = (f"did you mean {', '.join(choices)}?" if choices
                else f"a selector is {SELECTOR_HELP}")
        return HostSelectionError(f"no host matches {selector!r}", hint)

    def _values(self, kind: str) -> list[str]:
        if kind == "group":
            return list(self.groups)
        if kind == "tag":
            return list(dict.fromkeys(t for h in self.hosts.values() for t in h.tags))
        return list(dict.fromkeys(v for h in self.hosts.values() if (v := getattr(h, kind))))


def select_among(hosts: list[Host], selectors: Sequence[str]) -> list[Host]:
    """The hosts among `hosts` (an incident's, as journalled) that the selectors
    pick, in the one grammar every command uses: `all`, a name, a glob, a group,
    group:/role:/tag:/project:PATTERN, comma lists. A selector that matches none
    of them is a HostSelectionError: it never widens to every host."""
    groups: dict[str, list[str]] = {}
    for host in hosts:
        for group in host.groups:
            groups.setdefault(group, []).append(host.name)
    scope = Inventory(hosts={h.name: h for h in hosts}, groups=groups)
    picked = {h.name for h in scope.select(list(selectors), allow_ad_hoc=False)}
    return [h for h in hosts if h.name in picked]


def _split_selector(selector: str) -> list[str]:
    """Refuse a selector with anything outside the allowed characters, then
    split `web1,web2` into its parts."""
    if not selector.strip():
        raise HostSelectionError("empty host selector", f"a selector is {SELECTOR_HELP}")
    bad = sorted({c for c in selector if c not in _SELECTOR_CHARS})
    if bad or len(selector) > 1024:
        shown = ", ".join(repr(c) for c in bad) or "its length"
        raise HostSelectionError(
            f"refusing host selector {selector!r}: {shown} cannot appear in a host selector",
            "use letters, digits and . - _ : @ % (and * ? [ ] for globs); "
            "commands are never built from a selector")
    return [part for part in selector.split(",") if part]


def _is_bracketed(selector: str) -> bool:
    """`[::1]:2222` or `root@[::1]` is an address, not a glob."""
    return BRACKETED.match(selector.rpartition("@")[2]) is not None
