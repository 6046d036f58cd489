"""Factories for the identity CRM-view tests. Until the stitching worker fills them, tests write
the events and their ContactEvent / DailyActivity / Identity projections directly."""

import itertools
from datetime import date, datetime

from events.models import Event, Source
from identity.models import ContactEvent, DailyActivity, Identity

_seq = itertools.count(1)


def web_source() -> Source:
    return Source.objects.get_or_create(name="Website")[0]


def record_event(
    contact,
    *,
    at: datetime,
    type: str = "page",
    path: str = "",
    name: str = "",
    properties: dict | None = None,
    context: dict | None = None,
    traits: dict | None = None,
    anonymous_id: str = "anon-1",
    user_id: str = "",
    is_bot: bool = False,
) -> ContactEvent:
    """An accepted event resolved to `contact`, as the stitching worker would leave it."""
    if properties is None:
        properties = {"path": path} if type == "page" else {}
    event = Event.objects.create(
        source=web_source(),
        message_id=f"msg-{next(_seq)}",
        type=type,
        event=name,
        anonymous_id=anonymous_id,
        user_id=user_id,
        properties=properties,
        traits=traits or {},
        context=context or {},
        timestamp=at,
        received_at=at,
        is_bot=is_bot,
    )
    return ContactEvent.objects.create(
        event=event, contact=contact, type=type, name=name, path=path, timestamp=at, is_bot=is_bot
    )


def add_rollup(contact, *, day: date, key: str, count: int, kind: str = "page") -> DailyActivity:
    return DailyActivity.objects.create(contact=contact, day=day, kind=kind, key=key, count=count)


def link_identity(contact, *, kind: str, value: str) -> Identity:
    return Identity.objects.create(contact=contact, kind=kind, value=value)


def default_hot_rule():
    """The "pricing" rule the migration seeds. Transactional tests flush the database, seeded rows
    included, so tests that rely on it ask for it through here."""
    from identity.models import HotRule

    return HotRule.objects.get_or_create(
        name="pricing", defaults={"path_contains": "/pricing", "min_views": 2, "window_hours": 24}
    )[0]
