"""Parsers: pure functions from a collector's decoded stdout to findings.

The catalog names a parser per collector; `parse` runs it and never raises, so a
parser bug or an output no parser expected cannot break collection.
"""

from __future__ import annotations

from runbook.bugs import log_exception
from runbook.findings import Finding, Level, ParseContext, Parser, Signal

from .df import parse_df
from .dmesg import parse_dmesg
from .free import parse_free
from .iostat import parse_iostat
from .netstat import parse_listen, parse_states
from .ping import parse_ping
from .ps import parse_ps
from .sar import parse_sar
from .system import parse_system
from .top import parse_top
from .uptime import parse_uptime
from .vmstat import parse_vmstat

PARSERS: dict[str, Parser] = {
    "ping": parse_ping,
    "dmesg": parse_dmesg,
    "uptime": parse_uptime,
    "ps": parse_ps,
    "top": parse_top,
    "netstat_listen": parse_listen,
    "netstat_states": parse_states,
    "sar": parse_sar,
    "free": parse_free,
    "df": parse_df,
    "vmstat": parse_vmstat,
    "iostat": parse_iostat,
    "system": parse_system,
}


def parse(name: str, text: str | bytes, ctx: ParseContext | None = None) -> list[Finding]:
    """Findings from `text` by the parser called `name`; [] for an unknown name."""
    parser = PARSERS.get(name)
    if parser is None:
        return []
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return list(parser(str(text), ctx or ParseContext()))
    except Exception as exc:  # a parser bug must not break collection: say so, log the rest
        log_exception(f"parser {name}")
        return [Finding(Level.INFO, Signal.INFO, "output",
                        f"the {name} output could not be parsed ({type(exc).__name__}); "
                        "read the raw output")]
