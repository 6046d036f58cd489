"""Retention drops a whole month of the event log together with the same month's partition of
the event projection (identity_contactevent, co-partitioned: events/services/partitions.py).
This is identity's settings.EVENTS_MONTH_DROP_HOOKS: before the drop it reads, set-based from
that one partition, which people and days the month's rows counted in; after the drop (same
transaction) their rollups are rebuilt from what remains and segments hear of the people. No
per-event pass: the per-id DELETE of the projection was most of a month drop's time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection

from contacts import services as contact_services
from identity.services.projection import daily_activity_recompute_days, profile_updates_mark


def events_month_forget(*, start: dt.datetime, end: dt.datetime) -> Callable[[], None]:
    """The month [start, end) of the projection is about to be dropped: lock its people (pk
    order, as the stitching worker does) and return what to run once it is gone."""
    with connection.cursor() as cursor:
        # received_at bounds: planned on the month's partition only.
        cursor.execute(
            """
            SELECT DISTINCT contact_id, (timestamp AT TIME ZONE 'UTC')::date,
                   type IN ('page', 'screen', 'track') AND NOT is_bot
            FROM identity_contactevent WHERE received_at >= %s AND received_at < %s
            """,
            [start, end],
        )
        rows = cursor.fetchall()
    contact_ids = sorted({row[0] for row in rows})
    contact_services.contacts_lock_ids(contact_ids=contact_ids)
    contact_days = {(contact, day) for contact, day, counted in rows if counted}

    def after_drop() -> None:
        daily_activity_recompute_days(contact_days=contact_days)
        profile_updates_mark(contact_ids=contact_ids)

    return after_drop
