"""Alert sources: what tells runbook that something fired.

One module per source (alertmanager, http_probe, supervisord, l2met,
json_stats, prometheus). Each turns what it reads into `Finding`s, the same
values the collectors' parsers produce, and `record.record_detection` files
them into an incident as evidence. Nothing here imports textual.
"""
