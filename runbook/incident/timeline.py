"""The timeline's wording: one line of plain text per event, for `runbook
show`, the app's Timeline tab, the postmortem and the JSON export."""

from __future__ import annotations

from runbook.evidence import truncation_note
from runbook.incident.events import EventType, evidence_of
from runbook.incident.journal import Event


def summarize(event: Event) -> str:
    """One line for the timeline, in the operator's words."""
    d = event.data
    match event.type:
        case EventType.OPENED:
            hosts = ", ".join(h.get("name", "?") for h in d.get("hosts", []))
            book = (d.get("playbook") or {}).get("name", "?")
            return f"Incident opened: {d.get('title')} [{d.get('severity')}] " \
                   f"playbook {book}, hosts {hosts or '-'}"
        case EventType.DETECTED:
            return f"Detected at {d.get('at')} by {d.get('source', 'operator')}"
        case EventType.SEVERITY_CHANGED:
            reason = f" ({d['reason']})" if d.get("reason") else ""
            return f"Severity set to {d.get('severity')}{reason}"
        case EventType.ROLE_ASSIGNED:
            return f"{str(d.get('role', '')).capitalize()}: {d.get('name')}"
        case EventType.HOSTS_ADDED:
            return "Hosts added: " + ", ".join(h.get("name", "?") for h in d.get("hosts", []))
        case EventType.STEP_STARTED:
            return f"Started step {d.get('step')}"
        case EventType.STEP_DONE:
            comment = f": {d['comment']}" if d.get("comment") else ""
            return f"Done: {d.get('step')}{comment}"
        case EventType.STEP_SKIPPED:
            return f"Skipped {d.get('step')}: {d.get('reason')}"
        case EventType.ANSWER_RECORDED:
            return f"Answer to {d.get('step')}: {d.get('text')}"
        case EventType.NOTE_ADDED:
            return f"Note: {d.get('text')}"
        case EventType.COLLECTOR_RAN:
            findings = d.get("findings") or []
            notable = sum(1 for f in findings if f.get("level") != "info")
            extra = f", {notable} finding(s)" if notable else ""
            cut = truncation_note(d)
            return (f"Collected {d.get('collector')} on {d.get('host')}: {d.get('status')}"
                    f" (exit {d.get('exit_code')}{extra})" + (f"; {cut}" if cut else ""))
        case EventType.SHELL_OPENED:
            kept = f", recorded to {d['capture']}" if d.get("capture") else ""
            return f"Shell opened on {d.get('host')}{kept}"
        case EventType.SHELL_CLOSED:
            status = d.get("exit_status")
            how = f"exit {status}" if status is not None else "did not finish normally"
            return f"Shell on {d.get('host')} closed: {how} after {d.get('duration_s')} s"
        case EventType.HOST_FAILED:
            return f"Host {d.get('host')} {d.get('state')}: {d.get('reason')}"
        case EventType.COMMAND_PROPOSED:
            return f"Proposed on {', '.join(d.get('hosts', []))}: {d.get('command')}"
        case EventType.COMMAND_APPROVED:
            return f"Approved by {d.get('approver')}: command {d.get('command_id')}"
        case EventType.COMMAND_STARTED:
            return (f"Running command {d.get('command_id')} on "
                    f"{', '.join(d.get('hosts', []))} (confirmed: {d.get('confirmation')!r})"
                    + ("; it keeps running on the hosts if runbook's connection drops, so "
                       "without its result it may still be running"
                       if d.get("survives_disconnect") else ""))
        case EventType.COMMAND_EXECUTED:
            cut = truncation_note(evidence_of(d))
            return (f"Executed on {d.get('host')}: exit {d.get('exit_code')}"
                    + (f"; {cut}" if cut else ""))
        case EventType.ANNOUNCEMENT_SENT:
            result = "sent" if d.get("delivered") else "NOT sent"
            return f"Announcement ({d.get('purpose')}) {result} via {d.get('channel')}"
        case EventType.ALERT_RECEIVED | EventType.ALERT_RESOLVED:
            verb = "firing" if event.type == EventType.ALERT_RECEIVED else "resolved"
            instance = (d.get("labels") or {}).get("instance")
            return f"Alert {verb}: {d.get('alertname')}" + (f" ({instance})" if instance else "")
        case EventType.RESOLVED:
            return "Incident resolved" + (f": {d['summary']}" if d.get("summary") else "")
        case EventType.CLOSED:
            return "Incident closed"
        case EventType.REOPENED:
            return "Incident reopened" + (f": {d['reason']}" if d.get("reason") else "")
    return f"{event.type}"
