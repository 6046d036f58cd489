"""What an event contributes to its contact: the event projection's columns, first-touch
attribution, daily rollup keys, and the ProfileUpdate hand-off to segments. Shared by the
stitching worker, merges and splits."""

from collections import Counter

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from events.models import Event
from identity.models import ActivityKind, DailyActivity


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
    items = sorted(rollup.items())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
            SELECT * FROM unnest(%s::bigint[], %s::date[], %s::text[], %s::text[], %s::int[])
            ON CONFLICT (contact_id, day, kind, key)
            DO UPDATE SET count = identity_dailyactivity.count + EXCLUDED.count
            """,
            [
                [k[0] for k, _ in items],
                [k[1] for k, _ in items],
                [k[2] for k, _ in items],
                [k[3] for k, _ in items],
                [n for _, n in items],
            ],
        )


def daily_activity_recompute(*, contact_ids: list[int]) -> None:
    """Rebuild these contacts' daily rollups from their events (the same keys the worker uses)."""
    DailyActivity.objects.filter(contact_id__in=contact_ids).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
            SELECT contact_id, day, kind, key, count(*) FROM (
                SELECT contact_id, (timestamp AT TIME ZONE 'UTC')::date AS day,
                       CASE type WHEN 'track' THEN 'event' ELSE type END AS kind,
                       CASE WHEN type = 'page' THEN COALESCE(NULLIF(path, ''), name) ELSE name END AS key
                FROM identity_contactevent
                WHERE contact_id = ANY(%s::bigint[]) AND type IN ('page', 'screen', 'track')
                  AND NOT is_bot
            ) AS rows
            WHERE key <> ''
            GROUP BY contact_id, day, kind, key
            """,
            [sorted(contact_ids)],
        )


def profile_updates_mark(*, contact_ids: list[int]) -> None:
    """Record that these contacts changed (segments pick them up), then call the
    PROFILE_UPDATE_HOOK after commit."""
    if not contact_ids:
        return
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_profileupdate (contact_id, updated_at, first_changed_at)
            SELECT c.id, %s, %s FROM contacts_contact c WHERE c.id = ANY(%s::bigint[])
            ON CONFLICT (contact_id) DO UPDATE SET updated_at = EXCLUDED.updated_at
            """,
            [now, now, sorted(contact_ids)],
        )
    if path := getattr(settings, "PROFILE_UPDATE_HOOK", None):
        hook = import_string(path)
        transaction.on_commit(hook, robust=True)
