"""Retention drops a whole month of the event log together with the same month's partition of
the event projection (identity_contactevent, co-partitioned: events/services/partitions.py).
This is identity's settings.EVENTS_MONTH_DROP_HOOKS entry: it keeps the daily rollups true
without a pass per event or per (person, day).

The rollups (identity_dailyactivity) are partitioned by `day` with the same months
(settings.EVENTS_DAY_PARTITIONED_TABLES). A month's events are, but for a few, the month's days:
so after the drop the rollups' partition of that month of days is emptied (TRUNCATE) and refilled
from the projection rows still there whose timestamp falls in it (events received in another
month: late arrivals, a clock a few seconds off at the boundary), read through the projection's
(type, timestamp) index, which finds only those. The few (person, day)s outside the month's days
that its events counted in (an import of old history, a clock off by days) are rebuilt one by
one as before. Without the rollups' partition (a table not partitioned, or those days in its
DEFAULT partition) every (person, day) of the month is rebuilt that way.

Concurrency. The TRUNCATE holds the rollup partition's ACCESS EXCLUSIVE lock to the end of the
transaction: the stitching worker's upserts and a merge's rollup fold into those days either
committed before it (their rows are in the projection, which the refill reads) or wait for the
commit (and add to the refilled rows). The people of the rebuilt outside days are locked (pk order,
as the worker locks them) and the month's rows read again under the locks until no new person
appears: a merge or split that committed between the read and the lock moved rows to a person
not yet locked, who would otherwise keep the dropped events' counts on that day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection

from contacts import services as contact_services
from identity.services.projection import (
    PROJECTION,
    ROLLUP_COUNTED,
    ROLLUP_INSERT,
    daily_activity_recompute_days,
    profile_updates_mark,
)

ROLLUP_TABLE = "identity_dailyactivity"


def rollup_month_partition(*, start: dt.datetime) -> str | None:
    """The rollups' partition holding exactly the days of the month starting at `start`, if any."""
    name = f"{ROLLUP_TABLE}_y{start.year:04d}m{start.month:02d}"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(%s) AND c.relname = %s AND c.relkind = 'r'
            """,
            [ROLLUP_TABLE, name],
        )
        return name if cursor.fetchone() else None


def events_month_forget(*, start: dt.datetime, end: dt.datetime) -> Callable[[], None]:
    """The month [start, end) of the projection is about to be dropped: find (and lock the people
    of) the (person, day)s it counted in outside the rollups' month partition, and return what to
    run once it is gone (same transaction)."""
    partition = rollup_month_partition(start=start)
    params = {"start": start, "end": end}
    # received_at bounds: planned on the month's partition only; the timestamp bounds use its
    # (type, timestamp) index, so a month whose events all fall in its own days costs two probes.
    outside = "AND (ce.timestamp < %(start)s OR ce.timestamp >= %(end)s)" if partition else ""
    locked: set[int] = set()
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT DISTINCT ce.contact_id, (ce.timestamp AT TIME ZONE 'UTC')::date
                FROM identity_contactevent ce
                WHERE ce.received_at >= %(start)s AND ce.received_at < %(end)s AND {ROLLUP_COUNTED} {outside}
                """,
                params,
            )
            contact_days = set(cursor.fetchall())
        new = {contact for contact, _ in contact_days} - locked
        if not new:
            break
        contact_services.contacts_lock_ids(contact_ids=new)
        locked |= new

    def after_drop() -> None:
        if partition:
            _rollup_month_refill(partition=partition, start=start, end=end)
        daily_activity_recompute_days(contact_days=contact_days)
        # Segments re-evaluate the people rebuilt one by one. The month's other people are not
        # marked: at 20M events that is ~130k rows, more than the drop itself costs, and each
        # would then be re-evaluated alone; a segment whose conditions counted the dropped
        # events (an all-time count) is set right by its next full recompute, at most
        # SEGMENT_REFRESH_INTERVAL_SECONDS later (docs/scaling.md, "Partitioned event log").
        profile_updates_mark(contact_ids=sorted(locked))

    return after_drop


def _rollup_month_refill(*, partition: str, start: dt.datetime, end: dt.datetime) -> None:
    """Empty the rollups' month of days and refill it from the projection rows left whose
    timestamp falls in it (events received in another month)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {partition}")
        cursor.execute(
            ROLLUP_INSERT.format(
                source=PROJECTION, where="ce.timestamp >= %(start)s AND ce.timestamp < %(end)s"
            ),
            {"start": start, "end": end},
        )
