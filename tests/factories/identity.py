"""Stored rows of the identity side, written directly: events already resolved to a contact
(the event row and its ContactEvent projection), daily rollups, identities, profile updates and
hot rules, as the stitching worker would leave them. Payloads for /v1/* are in
tests.factories.events."""

import datetime as dt
import itertools

from django.utils import timezone

from events.models import Event
from identity.models import ContactEvent, DailyActivity, HotRule, Identity, ProfileUpdate
from tests.factories.events import event_source

_seq = itertools.count(1)


def stored_contact_event(
    contact,
    *,
    at: dt.datetime,
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
    """An accepted event resolved to `contact`: the event row and its ContactEvent, no rollup
    (`add_rollup` writes those). Returns the ContactEvent."""
    if properties is None:
        properties = {"path": path} if type == "page" else {}
    event = Event.objects.create(
        source=event_source(),
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
    return _projection(event, contact, path=path)


def _projection(event: Event, contact, *, path: str) -> ContactEvent:
    """The event's ContactEvent, as the stitching worker writes it (in the event's month)."""
    return ContactEvent.objects.create(
        event=event,
        contact=contact,
        type=event.type,
        name=event.event,
        path=path,
        timestamp=event.timestamp,
        is_bot=event.is_bot,
        received_at=event.received_at,
    )


def stored_track(
    contact, name: str, *, days_ago: int = 0, properties: dict | None = None, is_bot: bool = False, at=None
) -> Event:
    """A track event of `contact` with its ContactEvent and, unless a bot's, its daily rollup."""
    return _stored(
        contact, "track", name=name, days_ago=days_ago, properties=properties, is_bot=is_bot, at=at
    )


def stored_page(
    contact,
    path: str,
    *,
    days_ago: int = 0,
    name: str = "",
    properties: dict | None = None,
    is_bot=False,
    at=None,
) -> Event:
    """A page view of `contact` with its ContactEvent and, unless a bot's, its daily rollup."""
    props = {"path": path, **(properties or {})}
    return _stored(
        contact, "page", name=name, path=path, days_ago=days_ago, properties=props, is_bot=is_bot, at=at
    )


def _stored(contact, type_, *, name="", path="", days_ago=0, properties=None, is_bot=False, at=None):
    when = at or timezone.now() - dt.timedelta(days=days_ago)
    event = Event.objects.create(
        source=event_source(),
        message_id=f"m{next(_seq)}",
        type=type_,
        event=name,
        anonymous_id=f"anon-{contact.pk}",
        properties=properties or {},
        timestamp=when,
        received_at=when,
        is_bot=is_bot,
    )
    _projection(event, contact, path=path)
    if not is_bot:
        kind = "event" if type_ == "track" else type_
        key = name if type_ == "track" else path
        row, _ = DailyActivity.objects.get_or_create(
            contact=contact, day=when.astimezone(dt.UTC).date(), kind=kind, key=key
        )
        DailyActivity.objects.filter(pk=row.pk).update(count=row.count + 1)
    return event


def add_rollup(contact, *, day: dt.date, key: str, count: int, kind: str = "page") -> DailyActivity:
    return DailyActivity.objects.create(contact=contact, day=day, kind=kind, key=key, count=count)


def link_identity(contact, *, kind: str, value: str) -> Identity:
    return Identity.objects.create(contact=contact, kind=kind, value=value)


def profile_update(contact) -> None:
    """The contact's profile changed: the row the segment worker picks up."""
    now = timezone.now()
    ProfileUpdate.objects.update_or_create(
        contact=contact, defaults={"updated_at": now, "first_changed_at": now}
    )


def default_hot_rule() -> HotRule:
    """The "pricing" rule the migration seeds. Transactional tests flush the database, seeded rows
    included, so tests that rely on it ask for it through here."""
    return HotRule.objects.get_or_create(
        name="pricing", defaults={"path_contains": "/pricing", "min_views": 2, "window_hours": 24}
    )[0]
