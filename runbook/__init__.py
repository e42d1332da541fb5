"""runbook: an incident-response runbook for the on-call operator."""

__version__ = "0.1.0"
