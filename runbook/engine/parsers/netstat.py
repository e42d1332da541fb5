"""TCP sockets from `netstat -tlnp` / `ss -tlnp` (listeners) and `netstat -taopen` /
`ss -taopen` (every socket with its state).

States (thresholds from what breaks in practice):
- TIME_WAIT above 5000: many short-lived connections; at 28000 the default
  ephemeral port range (32768-60999) towards one peer is nearly used up.
- SYN_RECV above 100: a SYN flood, or an accept queue the application drains too slowly.
- CLOSE_WAIT above 100: the peer closed, but the application never closes its end.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from dataclasses import dataclass

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, integer, numbered, plural

SS_STATES = {"ESTAB": "ESTABLISHED", "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2",
             "UNCONN": "UNCONN"}
STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
          "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}
SS_PROCESS = re.compile(r'users:\(\("([^"]*)",pid=(\d+)')
SHOWN = 30  # listeners named in the summary


@dataclass(frozen=True)
class Socket:
    at: Line
    state: str
    local: str
    recv_q: int
    send_q: int
    program: str  # "1234/nginx", or "-" when not root
    from_ss: bool

    @property
    def port(self) -> int | None:
        return _port(self.local)


def _port(address: str) -> int | None:
    _, _, port = address.rpartition(":")
    if (value := integer(port)) is not None:
        return value
    try:
        return socket.getservbyname(port, "tcp")  # output without -n: "*:https"
    except (OSError, ValueError):
        return None


def _sockets(text: str) -> list[Socket]:
    found = []
    for line in numbered(text):
        fields = line.fields
        if fields[:1] == ["tcp"] and len(fields) > 1 and _ss_state(fields[1]) in STATES:
            fields = fields[1:]  # ss with a Netid column (`ss -a`)
        if len(fields) >= 6 and fields[0] in ("tcp", "tcp6") and fields[5] in STATES:
            program = fields[6].rstrip(":") if len(fields) > 6 and "/" in fields[6] else "-"
            if len(fields) > 8 and "/" in fields[8]:  # -taopen: User, Inode come first
                program = fields[8].rstrip(":")
            found.append(Socket(line, fields[5], fields[3], _int(fields[1]), _int(fields[2]),
                                program, False))
        elif len(fields) >= 5 and _ss_state(fields[0]) in STATES and integer(fields[1]) is not None:
            process = SS_PROCESS.search(line.text)
            program = f"{process.group(2)}/{process.group(1)}" if process else "-"
            found.append(Socket(line, _ss_state(fields[0]), fields[3], _int(fields[1]),
                                _int(fields[2]), program, True))
    return found


def _ss_state(state: str) -> str:
    return SS_STATES.get(state, state.replace("-", "_"))


def _int(token: str) -> int:
    return integer(token) or 0


def parse_listen(text: str, ctx: ParseContext) -> list[Finding]:
    listeners = [s for s in _sockets(text) if s.state == "LISTEN" and s.port is not None]
    found: list[Finding] = []
    programs: dict[int, str] = {}
    for s in listeners:
        port = s.port or 0
        if programs.get(port, "-") == "-":
            programs[port] = s.program
        # ss shows a listener's accept queue in Recv-Q and its backlog in Send-Q.
        if s.from_ss and s.recv_q > 0 and s.recv_q >= s.send_q:
            found.append(finding(Level.WARNING, Signal.SATURATION, f"port:{port}",
                                 f"accept queue of port {port} is full ({s.recv_q} waiting, "
                                 f"backlog {s.send_q}): {s.program} is not accepting "
                                 "connections fast enough", s.at))
    for port in ctx.expected_ports:
        if port not in programs:
            found.append(finding(Level.CRITICAL, Signal.ERRORS, f"port:{port}",
                                 f"expected port {port} is not listening"))
    if listeners:
        ports = sorted(programs)
        listing = ", ".join(f"{port} ({programs[port]})" for port in ports[:SHOWN])
        listing += f" and {len(ports) - SHOWN} more" if len(ports) > SHOWN else ""
        found.append(finding(Level.INFO, Signal.INFO, "tcp",
                             f"{plural(len(programs), 'TCP port')} listening: {listing}",
                             listeners[0].at))
    return found


THRESHOLDS = {  # state: (warning above, critical above, signal, what it means)
    "TIME_WAIT": (5000, 28000, Signal.SATURATION,
                  "many short-lived connections; ephemeral ports may run out"),
    "SYN_RECV": (100, 1000, Signal.SATURATION,
                 "a SYN flood, or the application accepts connections too slowly"),
    "CLOSE_WAIT": (100, 1000, Signal.ERRORS,
                   "the application is not closing sockets the peer has closed"),
}


def parse_states(text: str, ctx: ParseContext) -> list[Finding]:
    sockets = [s for s in _sockets(text) if s.state != "UNCONN"]
    if not sockets:
        return []
    counts = Counter(s.state for s in sockets)
    found: list[Finding] = []
    for state, (warning, critical, signal, meaning) in THRESHOLDS.items():
        count = counts.get(state, 0)
        if count > warning:
            at = next(s.at for s in sockets if s.state == state)
            level = Level.CRITICAL if count > critical else Level.WARNING
            owners = Counter(s.program for s in sockets if s.state == state and s.program != "-")
            by = f"; mostly {owners.most_common(1)[0][0]}" if owners else ""
            found.append(finding(level, signal, "tcp",
                                 f"{count} TCP sockets in {state} (warning above {warning}, "
                                 f"critical above {critical}): {meaning}{by}", at,
                                 fact=f"tcp_{state.lower()}", value=count))
    listing = ", ".join(f"{state} {n}" for state, n in counts.most_common())
    found.append(finding(Level.INFO, Signal.INFO, "tcp",
                         f"{len(sockets)} TCP sockets: {listing}", sockets[0].at))
    return found
