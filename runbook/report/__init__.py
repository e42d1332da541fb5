"""Reports built from an incident's journal: the postmortem."""
