"""Activity the stitching worker would write, created directly (the worker is another issue)."""

import datetime as dt
import itertools

from django.utils import timezone

from events.models import Event, Source
from identity.models import ContactEvent, DailyActivity, ProfileUpdate
from segments.definition import compiler
from segments.models import Segment

_seq = itertools.count(1)


def source() -> Source:
    return Source.objects.first() or Source.objects.create(name="Web")


def track(
    contact, name: str, *, days_ago: int = 0, properties: dict | None = None, is_bot: bool = False, at=None
):
    return _event(contact, "track", name=name, days_ago=days_ago, properties=properties, is_bot=is_bot, at=at)


def page(
    contact,
    path: str,
    *,
    days_ago: int = 0,
    name: str = "",
    properties: dict | None = None,
    is_bot=False,
    at=None,
):
    props = {"path": path, **(properties or {})}
    return _event(
        contact, "page", name=name, path=path, days_ago=days_ago, properties=props, is_bot=is_bot, at=at
    )


def _event(contact, type_, *, name="", path="", days_ago=0, properties=None, is_bot=False, at=None):
    when = at or timezone.now() - dt.timedelta(days=days_ago)
    event = Event.objects.create(
        source=source(),
        message_id=f"m{next(_seq)}",
        type=type_,
        event=name,
        anonymous_id=f"anon-{contact.pk}",
        properties=properties or {},
        timestamp=when,
        received_at=when,
        is_bot=is_bot,
    )
    ContactEvent.objects.create(
        event=event, contact=contact, type=type_, name=name, path=path, timestamp=when, is_bot=is_bot
    )
    if not is_bot:
        kind = "event" if type_ == "track" else type_
        key = name if type_ == "track" else path
        row, _ = DailyActivity.objects.get_or_create(
            contact=contact, day=when.astimezone(dt.UTC).date(), kind=kind, key=key
        )
        DailyActivity.objects.filter(pk=row.pk).update(count=row.count + 1)
    return event


def profile_update(contact) -> None:
    now = timezone.now()
    ProfileUpdate.objects.update_or_create(
        contact=contact, defaults={"updated_at": now, "first_changed_at": now}
    )


def matches(definition: dict, *, scope: list[int] | None = None) -> set[int]:
    tree = compiler.parse(definition)
    ctx = compiler.Context(today=timezone.now().astimezone(dt.UTC).date(), scope=scope)
    return set(compiler.matching_contacts(tree, ctx).values_list("pk", flat=True))


def one(condition: dict) -> dict:
    return {"op": "and", "conditions": [condition]}


def members(segment: Segment) -> set[int]:
    return set(segment.memberships.filter(exited_at__isnull=True).values_list("contact_id", flat=True))
