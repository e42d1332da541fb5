"""An incident: its journal, its state, and the store that holds them.

- `journal`: the append-only, fsync'd, flock'd event log of one incident, with
  torn-line recovery; readers start from an offset, so a follower reads only
  what is new;
- `state`: the event types, and the pure fold from events to `IncidentState`,
  with the timeline's wording (`summarize`) and the JSON export (`as_json`);
- `store`: incident directories and ids, the checked operations that append
  events, and `JournalFollower`.

The state's names are here too, as every front end uses them.
"""

from runbook.incident.state import (
    CommandState,
    EventType,
    IncidentState,
    Status,
    StepState,
    StepStatus,
    apply_events,
    as_json,
    fold,
    format_duration,
    summarize,
)

__all__ = ["CommandState", "EventType", "IncidentState", "Status", "StepState", "StepStatus",
           "apply_events", "as_json", "fold", "format_duration", "summarize"]
