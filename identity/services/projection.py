"""What an event contributes to its contact: the event projection's columns, first-touch
attribution, daily rollup keys, and the ProfileUpdate hand-off to segments. Shared by the
stitching worker, merges and splits."""

import datetime as dt
from collections import Counter

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from contacts import services as contact_services
from contacts.models import ATTRIBUTION_TOUCHED_AT
from events.models import Event
from identity.models import ActivityKind, ContactEvent, DailyActivity


def event_path(event: Event) -> str:
    properties = event.properties if isinstance(event.properties, dict) else {}
    context = event.context if isinstance(event.context, dict) else {}
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    path = properties.get("path") or page.get("path") or ""
    return str(path)[:500] if isinstance(path, str | int | float) else ""


def event_attribution(event: Event) -> dict[str, str]:
    """First-touch attribution an event would give its person: UTM from context.campaign,
    referrer and landing page."""
    properties = event.properties if isinstance(event.properties, dict) else {}
    context = event.context if isinstance(event.context, dict) else {}
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    campaign = context.get("campaign") if isinstance(context.get("campaign"), dict) else {}
    found = {}
    for name, utm in (("source", "source"), ("medium", "medium"), ("name", "campaign"), ("term", "term")):
        if isinstance(campaign.get(name), str) and campaign[name].strip():
            found[f"utm_{utm}"] = campaign[name].strip()[:200]
    if isinstance(campaign.get("content"), str) and campaign["content"].strip():
        found["utm_content"] = campaign["content"].strip()[:200]
    referrer = properties.get("referrer") or page.get("referrer")
    if isinstance(referrer, str) and referrer:
        found["referrer"] = referrer[:500]
    landing = properties.get("url") or page.get("url") or event_path(event)
    if isinstance(landing, str) and landing:
        found["landing_page"] = landing[:500]
    return found


def first_touch(event: Event) -> dict[str, str] | None:
    """The first-touch attribution an event gives its person, dated (ATTRIBUTION_TOUCHED_AT), or
    None when the event is not a tracked touch. A touch is a person's (not a bot's) page or
    screen view, the landing of a visit, or another event that carries campaign tags: a server's
    identify or track call says nothing about where the person came from, and a contact the CRM
    knew before their first visit gets that visit's attribution."""
    if event.is_bot:
        return None
    found = event_attribution(event)
    if event.type not in ("page", "screen") and not any(key.startswith("utm_") for key in found):
        return None
    return {**found, ATTRIBUTION_TOUCHED_AT: event.timestamp.isoformat()}


# Events read per query while looking for a person's first touch.
TOUCH_SCAN = 200


def first_touch_find(*, contact_id: int) -> dict[str, str]:
    """The attribution of the contact's earliest event that is a tracked touch ({} when none is):
    what the worker would have recorded from these events. Touches are most events, so the scan
    usually stops at the first."""
    scan = (
        ContactEvent.objects.filter(contact_id=contact_id, is_bot=False)
        .order_by("timestamp", "event_id")
        .values_list("event_id", flat=True)
    )
    offset = 0
    while ids := list(scan[offset : offset + TOUCH_SCAN]):
        found = Event.objects.in_bulk(ids)
        for event_id in ids:
            if event_id in found and (touch := first_touch(found[event_id])) is not None:
                return touch
        offset += TOUCH_SCAN
    return {}


# Bounds on what an event's consent state may put on the contact (any client can send anything).
CONSENT_MAX_CATEGORIES = 50
CONSENT_MAX_CATEGORY = 100


def consent_state(event: Event) -> dict | None:
    """The consent state an event carries, for `Contact.consent` (contacts/services/consent.py): Segment's
    `context.consent.categoryPreferences` (JSON booleans only; other values are ignored) and
    `context.gpc`. None when the event carries no categoryPreferences object: an event that says
    nothing about consent changes nothing."""
    context = event.context if isinstance(event.context, dict) else {}
    consent = context.get("consent")
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(preferences, dict):
        return None
    kept = {}
    for key, value in preferences.items():
        if len(kept) >= CONSENT_MAX_CATEGORIES:
            break
        if isinstance(value, bool) and key and len(key) <= CONSENT_MAX_CATEGORY and "\x00" not in key:
            kept[key] = value
    return {
        "categoryPreferences": kept,
        "gpc": context.get("gpc") is True,
        "timestamp": event.timestamp.isoformat(),
        "event_id": event.pk,
    }


def activity_key(event: Event) -> tuple[str, str] | None:
    """The daily rollup an event counts in: (kind, key), or None (identify, group, alias, and
    known bots: rollups feed segments and badges, which leave bot traffic out)."""
    if event.is_bot:
        return None
    if event.type == "page":
        key = event_path(event) or event.event
        return (ActivityKind.PAGE, key[:500]) if key else None
    if event.type == "screen":
        return (ActivityKind.SCREEN, event.event[:500]) if event.event else None
    if event.type == "track":
        return ActivityKind.EVENT, event.event[:500]
    return None


def daily_activity_add(rollup: Counter) -> None:
    """Add counts to the daily rollups: {(contact id, day, kind, key): n}."""
    if not rollup:
        return
    # Sorted: concurrent writers upsert shared rows in one order. One JSON parameter (psycopg's
    # client-side binding dumps array elements one by one in Python).
    items = [(*key, n) for key, n in sorted(rollup.items())]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
            SELECT (r->>0)::bigint, (r->>1)::date, r->>2, r->>3, (r->>4)::int
            FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS a(r, n)
            ORDER BY n
            ON CONFLICT (contact_id, day, kind, key)
            DO UPDATE SET count = identity_dailyactivity.count + EXCLUDED.count
            """,
            [orjson.dumps(items).decode()],
        )


# The projection rows a rollup counts (activity_key's rule in SQL).
ROLLUP_COUNTED = "ce.type IN ('page', 'screen', 'track') AND NOT ce.is_bot"
# The rollup rows of some contacts' projections (the same keys the worker uses); {where} narrows
# the projections read, {source} (PROJECTION unless a join) names them as `ce`: SQL text from
# identity's services only.
PROJECTION = "identity_contactevent ce"
ROLLUP_INSERT = """
    INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
    SELECT contact_id, day, kind, key, count(*) FROM (
        SELECT ce.contact_id, (ce.timestamp AT TIME ZONE 'UTC')::date AS day,
               CASE ce.type WHEN 'track' THEN 'event' ELSE ce.type END AS kind,
               CASE WHEN ce.type = 'page' THEN COALESCE(NULLIF(ce.path, ''), ce.name) ELSE ce.name END AS key
        FROM {source}
        WHERE {where} AND ce.type IN ('page', 'screen', 'track') AND NOT ce.is_bot
    ) AS rows
    WHERE key <> ''
    GROUP BY contact_id, day, kind, key
"""


def daily_activity_recompute(*, contact_ids: list[int]) -> None:
    """Rebuild these contacts' daily rollups from their events (the same keys the worker uses)."""
    DailyActivity.objects.filter(contact_id__in=contact_ids).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            ROLLUP_INSERT.format(source=PROJECTION, where="ce.contact_id = ANY(%s::bigint[])"),
            [sorted(contact_ids)],
        )


def daily_activity_recompute_days(*, contact_days: set[tuple[int, dt.date]]) -> None:
    """Rebuild only these (contact, UTC day) rollups from the projections still there; the
    caller holds the contacts' row locks (so the stitching worker adds nothing meanwhile)."""
    if not contact_days:
        return
    pairs = sorted(contact_days)
    params = [[c for c, _ in pairs], [d for _, d in pairs]]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            DELETE FROM identity_dailyactivity d
            USING unnest(%s::bigint[], %s::date[]) AS a(contact_id, day)
            WHERE d.contact_id = a.contact_id AND d.day = a.day
            """,
            params,
        )
        # A join from the pairs, not EXISTS: each pair is one range of a partition's
        # (contact_id, timestamp) index; as a semi-join Postgres read the whole projection.
        source = """unnest(%s::bigint[], %s::date[]) AS a(contact_id, day)
            JOIN identity_contactevent ce ON ce.contact_id = a.contact_id
              AND ce.timestamp >= a.day::timestamp AT TIME ZONE 'UTC'
              AND ce.timestamp < (a.day + 1)::timestamp AT TIME ZONE 'UTC'"""
        cursor.execute(ROLLUP_INSERT.format(source=source, where="true"), params)


def events_forget(*, event_ids: list[int]) -> None:
    """settings.EVENTS_DELETE_HOOKS: events are about to be deleted (retention, erasure). Their
    projections go, the rollups of the days they counted in are rebuilt from what remains, and
    segments re-evaluate the people (an event-count condition may no longer hold).

    Lock order as the stitching worker's: contacts (pk order) before their projection rows; a
    merge that moved a projection meanwhile is caught by locking the contacts the DELETE reports."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT contact_id FROM identity_contactevent WHERE event_id = ANY(%s::bigint[])",
            [event_ids],
        )
        contact_ids = {row[0] for row in cursor.fetchall()}
        contact_services.contacts_lock_ids(contact_ids=contact_ids)
        cursor.execute(
            """
            DELETE FROM identity_contactevent WHERE event_id = ANY(%s::bigint[])
            RETURNING contact_id, (timestamp AT TIME ZONE 'UTC')::date, type, is_bot
            """,
            [event_ids],
        )
        rows = cursor.fetchall()
    if moved := {row[0] for row in rows} - contact_ids:
        contact_services.contacts_lock_ids(contact_ids=moved)
    daily_activity_recompute_days(
        contact_days={
            (c, day) for c, day, kind, bot in rows if kind in ("page", "screen", "track") and not bot
        }
    )
    profile_updates_mark(contact_ids=sorted({row[0] for row in rows}))


def profile_updates_mark(*, contact_ids: list[int]) -> None:
    """Record that these contacts changed (segments pick them up), then call the
    PROFILE_UPDATE_HOOK after commit. Rows are upserted in contact id order, so two writers
    marking overlapping contacts take their row locks in one order."""
    if not contact_ids:
        return
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_profileupdate (contact_id, updated_at, first_changed_at)
            SELECT c.id, %s, %s FROM contacts_contact c WHERE c.id = ANY(%s::bigint[]) ORDER BY c.id
            ON CONFLICT (contact_id) DO UPDATE SET updated_at = EXCLUDED.updated_at
            """,
            [now, now, "{" + ",".join(str(int(pk)) for pk in sorted(contact_ids)) + "}"],
        )
    # settings.PROFILE_UPDATE_HOOK wires this; segments provides it (segments.tasks.
    # profile_updates_wake, its throttled wake-up): identity imports no higher app.
    if path := getattr(settings, "PROFILE_UPDATE_HOOK", None):
        hook = import_string(path)
        transaction.on_commit(hook, robust=True)
