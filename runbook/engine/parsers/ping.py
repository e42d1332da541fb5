"""`ping -c N`: reachability, packet loss and round-trip times from the operator's side.

Any loss is a warning (a healthy path loses nothing in a handful of packets);
100% loss is critical: the host does not answer at all.
"""

from __future__ import annotations

import re

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import finding, fmt, integer, number, numbered

TARGET = re.compile(r"^(?:PING (\S+)|ping: ([^\s:]+): )")  # "ping: db1: Name or …"
# iputils: "5 packets transmitted, 4 received, +1 errors, 20% packet loss, time 4005ms";
# BSD/busybox: "5 packets transmitted, 5 packets received, 0.0% packet loss".
STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received.*?"
                   r"(\d+(?:\.\d+)?)% packet loss")
RTT = re.compile(r"(?:rtt|round-trip) min/avg/max/(?:mdev|stddev) = "
                 r"([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
FAILURES = re.compile(r"(Name or service not known|unknown host|Temporary failure in name "
                      r"resolution|Network is unreachable|No route to host)", re.I)


def parse_ping(text: str, ctx: ParseContext) -> list[Finding]:
    lines = numbered(text)
    target = next((m.group(1) or m.group(2) for line in lines if (m := TARGET.match(line.text))),
                  "the host")
    found: list[Finding] = []
    for line in lines:
        if stats := STATS.search(line.text):
            sent, received = integer(stats.group(1)) or 0, integer(stats.group(2)) or 0
            loss = number(stats.group(3)) or 0.0
            if loss >= 100:
                found.append(finding(Level.CRITICAL, Signal.ERRORS, "network",
                                     f"{target} is unreachable: {sent} of {sent} packets lost "
                                     "(100% packet loss)", line))
            elif loss > 0:
                found.append(finding(Level.WARNING, Signal.ERRORS, "network",
                                     f"{fmt(loss, 1)}% packet loss to {target} "
                                     f"({sent - received} of {sent} packets lost)", line))
        elif rtt := RTT.search(line.text):
            low, avg, high, dev = rtt.groups()
            found.append(finding(Level.INFO, Signal.INFO, "network",
                                 f"round trip to {target}: min {low} / avg {avg} / max {high} ms"
                                 f" (mdev {dev} ms)", line))
        elif failure := FAILURES.search(line.text):
            found.append(finding(Level.CRITICAL, Signal.ERRORS, "network",
                                 f"cannot ping {target}: {failure.group(1).lower()}", line))
    return found
