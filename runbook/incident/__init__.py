"""An incident: its journal, its state, and the store that holds them.

- `journal`: the append-only, fsync'd, flock'd event log of one incident, with
  torn-line recovery; readers start from an offset, so a follower reads only
  what is new;
- `events`: the event types, and the data each one carries (declared once,
  checked when written);
- `state`: the pure fold from events to `IncidentState`;
- `timeline`: one line of wording per event (`summarize`);
- `export`: the state as plain JSON (`as_json`);
- `store`: incident directories and ids, the checked operations that append
  events, and `JournalFollower`.

The state's names are here too, as every front end uses them.
"""

from runbook.incident.events import EventType
from runbook.incident.export import as_json
from runbook.incident.state import (
    CommandState,
    IncidentState,
    Status,
    StepState,
    StepStatus,
    apply_events,
    fold,
    format_duration,
)
from runbook.incident.timeline import summarize

__all__ = ["CommandState", "EventType", "IncidentState", "Status", "StepState", "StepStatus",
           "apply_events", "as_json", "fold", "format_duration", "summarize"]
