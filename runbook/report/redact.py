"""Redaction for everything that leaves the machine: postmortems, JSON exports,
the archive index. Raw evidence on disk is never touched; only copies are masked.

Two independent layers, applied in this order by `Redactor.text`:

- secrets (on by default): passwords, tokens, keys and webhook URLs are
  replaced by `[REDACTED]` (the key name stays, so the reader still sees that a
  password was passed);
- hosts (`--redact-hosts`): host names, IPv4/IPv6 and MAC addresses become
  placeholders (`host-1`, `10.0.0.x-1`, `ipv6-1`, `mac-1`). One `Redactor` is
  one report: the same original always gets the same placeholder, in the
  timeline, the tables and the evidence excerpts alike.

Decisions, and why:
- Secrets are masked before hosts, so `https://admin:pw@db1/` loses the
  password first and the host name second.
- A private key block is masked line by line (every line of it becomes
  `[REDACTED PRIVATE KEY]`), so line numbers in an evidence excerpt still match
  the file. An excerpt may start in the middle of a block: `key_block_lines`
  looks at the whole capture to find which of its lines are inside one.
- We over-mask rather than under-mask: `passwd:  files` from nsswitch.conf
  loses its value. A report that leaks a password cannot be unsent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MASK = "[REDACTED]"
KEY_MASK = "[REDACTED PRIVATE KEY]"

_KEY_BLOCK = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END (?P=kind)PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S)
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")

_SECRET_WORDS = (r"password|passwd|passphrase|pwd|secret|token|credentials?"
                 r"|(?:api|access|secret|private|client|auth)[_-]?key")
# A value, as far as it can be told from text. Quoted first, it runs like a
# shell word (`-p'"'"'pw'"'"'` is one word); unquoted first, it ends at a quote
# that closes an outer string (`'PGPASSWORD=pw' 'next'`), but takes a quoted
# piece without spaces (`pw'"'"'x`).
_VALUE = (r"(?:(?:'[^'\n]*'|\"[^\"\n]*\")(?:[^\s\"'`]+|'[^'\n]*'|\"[^\"\n]*\")*"
          r"|[^\s\"'`]+(?:(?:'[^'\s]*'|\"[^\"\s]*\")[^\s\"'`]*)*)")

_SECRET_TRIGGERS = ("pass", "pwd", "secret", "token", "key", "credential")

# (name, triggers, pattern, replacement). A rule runs only when one of its
# triggers (lower-case substrings) is in the text: most strings in a report
# (timestamps, step ids, sar rows) hold none, and 14 regexes over every one of
# 100,000 strings cost more than the rest of the export.
# Replacements keep the key and mask the value.
_RULES: tuple[tuple[str, tuple[str, ...], re.Pattern[str], str], ...] = (
    ("slack-webhook", ("hooks.slack.com",), re.compile(
        r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/[^\s\"'`<>)]+"),
     "https://hooks.slack.com/" + MASK),
    ("discord-webhook", ("discord",), re.compile(
        r"https?://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/[^\s\"'`<>)]+"),
     "https://discord.com/api/webhooks/" + MASK),
    ("authorization-header", ("authoriz",), re.compile(
        r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)(?:\"[^\"\n]*\"|'[^'\n]*'|[^\n\"'`|]+)"),
     r"\1" + MASK),
    ("bearer", ("bearer",), re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
     r"\1" + MASK),
    ("url-credentials", ("://",), re.compile(
        r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"'`]*):[^\s@/\"'`]+@"), r"\1:" + MASK + "@"),
    ("user-password-at-host", ("@",), re.compile(
        r"(?<![\w/:.%+-])([\w.%+-]+):(?!//)[^\s@/:\"'`]+@(?=[\w-]+(?:\.[\w-]+)*)"),
     r"\1:" + MASK + "@"),
    ("curl-user", ("-u",), re.compile(
        r"(?<!\S)(-u|--user)(\s+|=)?(['\"]?)([^\s:'\"]+):[^\s'\"]+\3"),
     r"\1\2\3\4:" + MASK + r"\3"),
    ("password-flag", _SECRET_TRIGGERS, re.compile(
        r"(?i)(?<![\w-])(--?(?:password|passwd|pass|pwd|secret|token|api-key|apikey"
        r"|access-key|secret-key|auth-token|client-secret)(?:=|\s+))" + _VALUE),
     r"\1" + MASK),
    ("mysql-password", ("mysql", "mariadb"), re.compile(
        r"(\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mariadb[\w-]*)\b"
        r"[^\n;&|]*?\s-p)" + _VALUE), r"\1" + MASK),
    ("key-value", _SECRET_TRIGGERS, re.compile(
        r"(?i)\b([\w.-]*(?:" + _SECRET_WORDS + r")[\w.-]*[\"']?\s*[:=]\s*)" + _VALUE),
     "KEY_VALUE"),
    ("aws-access-key", ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa"),
     re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"
                r"(?![A-Z0-9])"), MASK),
    ("github-token", ("gh", "github_pat"), re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})"), MASK),
    ("slack-token", ("xox",), re.compile(r"\bxox[a-z]-[A-Za-z0-9-]{10,}"), MASK),
    ("jwt", ("eyj",), re.compile(r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]{5,}"), MASK),
)

_TRIGGER = re.compile("|".join(sorted({re.escape(t) for rule in _RULES for t in rule[1]},
                                      key=len, reverse=True)))

# Environment variables whose names look secret but are not.
_NOT_SECRET_KEYS = {"pwd", "oldpwd"}


def _key_value(match: re.Match[str]) -> str:
    key = match.group(1)
    name = re.split(r"[\"'\s:=]", key, maxsplit=1)[0].lower()
    if name in _NOT_SECRET_KEYS:
        return match.group(0)
    return key + MASK


def mask_key_blocks(text: str) -> str:
    """Every line of a private key block (closed or cut off) becomes KEY_MASK."""
    if "PRIVATE KEY" not in text:
        return text
    return _KEY_BLOCK.sub(lambda m: "\n".join(KEY_MASK for _ in m.group(0).split("\n")), text)


def key_block_lines(lines: list[str], last: int) -> set[int]:
    """Indexes (0-based, up to `last`) of the lines that sit inside a private key
    block, scanning from the top of the capture so a window opened in the middle
    of a block is still masked."""
    inside: set[int] = set()
    open_block = False
    for index, line in enumerate(lines[: last + 1]):
        if not open_block and "PRIVATE KEY" in line and _KEY_BEGIN.search(line):
            open_block = True
        if open_block:
            inside.add(index)
            if "PRIVATE KEY" in line and _KEY_END.search(line):
                open_block = False
    return inside


# -- hosts ------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?i)(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])")
_MAC = re.compile(r"(?i)(?<![\w:-])[0-9a-f]{2}(?P<sep>[:-])(?:[0-9a-f]{2}(?P=sep)){4}[0-9a-f]{2}"
                  r"(?![\w:-])")
_TLDS = ("com|net|org|io|co|dev|app|cloud|info|biz|local|localdomain|internal|intra|intranet"
         "|lan|corp|home|private|jp|uk|de|fr|nl|us|eu|au|ca|cn|kr|in|br|ru|se|ch|it|es")
_FQDN = re.compile(r"(?i)(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLDS
                   + r")(?![\w-]|\.\w)")
# Addresses that identify nobody; kept so "listening on 0.0.0.0:22" stays readable.
_KEEP_ADDRESSES = {"0.0.0.0", "127.0.0.1", "255.255.255.255", "::", "::1"}
_KEEP_NAMES = {"localhost"}


@dataclass
class HostMap:
    """Original -> placeholder, filled as originals are met, numbered per kind."""

    placeholders: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def placeholder(self, kind: str, key: str) -> str:
        found = self.placeholders.get(key)
        if found is None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            prefix = {"host": "host-", "ipv4": "10.0.0.x-", "ipv6": "ipv6-", "mac": "mac-"}[kind]
            found = self.placeholders[key] = f"{prefix}{self.counts[kind]}"
        return found


# -- the redactor -----------------------------------------------------------------


@dataclass
class Redactor:
    secrets: bool = True
    hosts: bool = False
    extra: tuple[re.Pattern[str], ...] = ()
    host_map: HostMap = field(default_factory=HostMap)
    _known: re.Pattern[str] | None = None
    # Reports repeat the same short strings (actors, hosts, commands) thousands
    # of times; a placeholder never changes once given, so results can be kept.
    _cache: dict[str, str] = field(default_factory=dict)
    _blocks: dict[int, tuple[list[str], set[int]]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.secrets or self.hosts

    def know_hosts(self, names: Iterable[str]) -> None:
        """Seed the host map with names the incident knows (in this order, so lab1
        is host-1), and match them wherever they appear as whole words."""
        if not self.hosts:
            return
        self._cache.clear()
        known: list[str] = []
        for name in names:
            if not name or name.lower() in _KEEP_NAMES or name in _KEEP_ADDRESSES:
                continue
            kind = _address_kind(name)
            if kind:
                self.host_map.placeholder(kind, _address_key(kind, name))
            else:
                self.host_map.placeholder("host", name.lower())
                known.append(name)
        if known:
            alternatives = "|".join(re.escape(n) for n in sorted(set(known), key=len,
                                                                 reverse=True))
            self._known = re.compile(rf"(?i)(?<![\w.-])(?:{alternatives})(?![\w-]|\.\w)")

    def text(self, text: str) -> str:
        if not text:
            return text
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        original = text
        if self.secrets:
            text = redact_secrets(text, self.extra)
        if self.hosts:
            text = self._hosts(text)
        if len(original) <= 512:
            self._cache[original] = text
        return text

    def value(self, value: Any) -> Any:
        """A copy of plain data (dicts, lists, strings) with every string redacted,
        dictionary keys included (a host name is often a key)."""
        if not self.active:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {(self.text(k) if isinstance(k, str) else k): self.value(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def window(self, lines: list[str], first: int, last: int) -> list[str]:
        """Lines first..last (0-based, inclusive) of a capture, redacted; lines
        inside a private key block are masked even when the block starts above."""
        chosen = lines[first: last + 1]
        if self.secrets:
            # One scan per capture, however many findings point into it.
            known = self._blocks.get(id(lines))
            if known is None or known[0] is not lines:
                known = self._blocks[id(lines)] = (lines, key_block_lines(lines, len(lines)))
            inside = known[1]
            chosen = [KEY_MASK if first + i in inside else line
                      for i, line in enumerate(chosen)]
        return [self.text(line) for line in chosen]

    def _hosts(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(lambda m: self.host_map.placeholder("host",
                                                                      m.group(0).lower()), text)
        if "." in text:
            text = _FQDN.sub(self._fqdn, text)
            text = _IPV4.sub(lambda m: self._address(m.group(0), "ipv4"), text)
        if ":" in text or "-" in text:
            text = _MAC.sub(lambda m: self.host_map.placeholder(
                "mac", re.sub(r"[:-]", ":", m.group(0).lower())), text)
        if "::" in text or text.count(":") >= 7:
            text = _IPV6.sub(lambda m: self._address(m.group(0), "ipv6"), text)
        return text

    def _fqdn(self, match: re.Match[str]) -> str:
        name = match.group(0)
        if _IPV4.fullmatch(name):
            return name
        return self.host_map.placeholder("host", name.lower())

    def _address(self, text: str, kind: str) -> str:
        if _address_kind(text) != kind or text in _KEEP_ADDRESSES:
            return text
        return self.host_map.placeholder(kind, _address_key(kind, text))


def _address_kind(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "mac" if _MAC.fullmatch(text) else None
    if address.version == 6 and "::" not in text and text.count(":") != 7:
        return None
    return f"ipv{address.version}"


def _address_key(kind: str, text: str) -> str:
    if kind == "ipv6":
        return ipaddress.ip_address(text).compressed
    if kind == "mac":
        return re.sub(r"[:-]", ":", text.lower())
    return text


def redact_secrets(text: str, extra: tuple[re.Pattern[str], ...] = ()) -> str:
    if "PRIVATE KEY" in text:
        text = mask_key_blocks(text)
    present = set(_TRIGGER.findall(text.lower()))
    for _name, triggers, pattern, replacement in _RULES if present else ():
        if not present.isdisjoint(triggers):
            if replacement == "KEY_VALUE":
                text = pattern.sub(_key_value, text)
            else:
                text = pattern.sub(replacement, text)
    for pattern in extra:
        text = pattern.sub(_extra_replacement, text)
    return text


def _extra_replacement(match: re.Match[str]) -> str:
    """A config pattern with a group named `secret` masks only that group."""
    if "secret" in match.re.groupindex and match.group("secret") is not None:
        start, end = match.span("secret")
        whole_start = match.start()
        text = match.group(0)
        return text[: start - whole_start] + MASK + text[end - whole_start:]
    return MASK


def redactor(*, secrets: bool = True, hosts: bool = False,
             known_hosts: Iterable[str] = ()) -> Redactor:
    """The redactor for one export, with the operator's extra patterns from config."""
    from runbook.report.config import redact_patterns

    result = Redactor(secrets=secrets, hosts=hosts,
                      extra=tuple(redact_patterns()) if secrets else ())
    result.know_hosts(known_hosts)
    return result
