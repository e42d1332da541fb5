"""Reports built from an incident's journal: the postmortem (postmortem.py, from
facts.py through templates/), the JSON export (export.py), redaction of every
export (redact.py, config.py) and the archive of closed incidents (archive.py)."""
