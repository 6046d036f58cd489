"""A person's consent state as their events carried it, kept on `Contact.consent`.

Shape (Segment's `context.consent` plus where it came from)::

    {"categoryPreferences": {"marketing": true, "analytics": false}, "gpc": false,
     "timestamp": "2026-11-26T02:00:00+00:00", "event_id": 123}

The state of the newest event wins, newest by the event's own timestamp (ties: the higher event
id), never by processing order: a re-processed or late batch cannot bring back an older choice.
Merges keep the newer of the two people's states by the same rule.
"""

import datetime as dt
from typing import Any


def consent_order(state: Any) -> tuple[dt.datetime, int]:
    """How recent a stored state is; an empty or unreadable one is older than any other."""
    oldest = (dt.datetime.min.replace(tzinfo=dt.UTC), 0)
    if not isinstance(state, dict) or not isinstance(state.get("timestamp"), str):
        return oldest
    try:
        when = dt.datetime.fromisoformat(state["timestamp"])
    except ValueError:
        return oldest
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    event_id = state.get("event_id")
    return when, event_id if isinstance(event_id, int) else 0


def consent_newer(*, candidate: Any, current: Any) -> bool:
    """Whether `candidate` should replace `current` on the contact."""
    return bool(candidate) and consent_order(candidate) > consent_order(current)
