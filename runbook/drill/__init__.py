"""Training drills: a scenario's fault injected on a real loopback lab, the
normal flow run against it, and the trainee scored from the drill's journal.

Nothing here imports textual: the TUI runs a drill like any incident.
"""
