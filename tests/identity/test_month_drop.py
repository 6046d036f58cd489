"""Retention's month drop keeps the daily rollups true without a pass per (person, day): the
rollups are partitioned by day with the event log's months, the dropped month's days are emptied
and refilled from what other months hold, and the few days outside the month are rebuilt with
their people locked (identity.services.event_months)."""

import datetime as dt
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from contacts.services.merging import contact_merge
from events import services
from events.models import Event, Source
from events.services import partitions
from identity.models import ContactEvent, DailyActivity, ProfileUpdate
from identity.services import event_months
from identity.services.projection import daily_activity_add, daily_activity_recompute
from tests.factories import make_admin, make_contact

NOW = timezone.now()
THIS_MONTH = partitions.month_start(NOW)
ROLLUPS = "identity_dailyactivity"
_seq = iter(range(1, 10**6))


def month(offset: int, day: int = 10, hours: int = 3) -> dt.datetime:
    return partitions.month_add(THIS_MONTH, offset) + dt.timedelta(days=day, hours=hours)


def page(source, contact, path: str, *, timestamp: dt.datetime, received_at: dt.datetime) -> Event:
    """A page view stored, projected and rolled up as the stitching worker would."""
    event = Event.objects.create(
        source=source,
        message_id=f"md{next(_seq)}",
        type="page",
        anonymous_id=f"anon-{contact.pk}",
        properties={"path": path},
        timestamp=timestamp,
        received_at=received_at,
    )
    ContactEvent.objects.create(
        event=event, contact=contact, type="page", path=path, timestamp=timestamp, received_at=received_at
    )
    daily_activity_add(
        Counter({(contact.pk, timestamp.astimezone(dt.UTC).date().isoformat(), "page", path): 1})
    )
    return event


def rollups(contact_ids) -> set:
    return set(
        DailyActivity.objects.filter(contact_id__in=contact_ids).values_list(
            "contact_id", "day", "kind", "key", "count"
        )
    )


def recomputed(contact_ids) -> set:
    daily_activity_recompute(contact_ids=list(contact_ids))
    return rollups(contact_ids)


def rollup_partition_of(contact_id: int, day: dt.date) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT tableoid::regclass::text FROM {ROLLUPS} WHERE contact_id = %s AND day = %s",
            [contact_id, day],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def web():
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -9), ahead=9)
    return Source.objects.create(name="Web", retention_days=30)


@pytest.fixture
def server():
    """A source that keeps its events forever: the months holding its rows are not dropped."""
    return Source.objects.create(name="Server")


@pytest.mark.django_db
def test_the_rollups_are_partitioned_by_day_with_the_event_logs_months(web):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [ROLLUPS])
        assert cursor.fetchone()[0] == "p"
    months = {(p.start.date(), p.end.date()) for p in partitions.event_partitions()}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::date,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::date
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
            """,
            [ROLLUPS],
        )
        assert set(cursor.fetchall()) == months
    # a row lands in its day's month; a day without a partition in DEFAULT, never refused
    person = make_contact(email="d@drop.test")
    page(web, person, "/a", timestamp=month(-2), received_at=month(-2))
    page(web, person, "/b", timestamp=month(-40), received_at=month(-2))
    assert rollup_partition_of(person.pk, month(-2).date()) == event_months.rollup_month_partition(
        start=partitions.month_add(THIS_MONTH, -2)
    )
    assert rollup_partition_of(person.pk, month(-40).date()) == f"{ROLLUPS}_default"


@pytest.mark.django_db
def test_a_month_drop_empties_its_days_and_keeps_what_other_months_count(web, server):
    gone_month = partitions.month_add(THIS_MONTH, -6)
    a, b = make_contact(email="a@drop.test"), make_contact(email="b@drop.test")
    # the month's own events, on its own days
    for hour in (1, 2, 3):
        page(web, a, "/pricing", timestamp=month(-6, hours=hour), received_at=month(-6, hours=hour))
    page(web, b, "/pricing", timestamp=month(-6), received_at=month(-6))
    # a late arrival: received the month after, stamped on the month's last day -> kept
    last_day = partitions.month_add(THIS_MONTH, -5) - dt.timedelta(hours=1)
    late = page(server, b, "/pricing", timestamp=last_day, received_at=month(-5, day=1))
    # an import of old history received in the month, stamped three months before it -> goes,
    # while another month's event on that same day stays
    page(web, a, "/docs", timestamp=month(-9, day=3), received_at=month(-6, day=4))
    kept_old = page(server, a, "/docs", timestamp=month(-9, day=3, hours=5), received_at=month(-4))
    ProfileUpdate.objects.all().delete()
    # when retention drops the month (web keeps 30 days; the months with server rows stay)
    dropped = services.events_retention_enforce(now=NOW)
    # then its events are gone and the rollups equal a recompute from what is left
    assert dropped >= 5
    assert partitions.partition_name(gone_month) not in {p.name for p in partitions.event_partitions()}
    after = rollups([a.pk, b.pk])
    assert after == recomputed([a.pk, b.pk])
    assert (b.pk, last_day.date(), "page", "/pricing", 1) in after
    assert (a.pk, month(-9, day=3).date(), "page", "/docs", 1) in after
    assert not any(row[1] == month(-6).date() for row in after)
    # the month of days holds only the late arrival's row now
    partition = event_months.rollup_month_partition(start=gone_month)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT contact_id, day, count FROM {partition}")
        assert cursor.fetchall() == [(b.pk, last_day.date(), 1)]
    assert ContactEvent.objects.filter(pk__in=[late.pk, kept_old.pk]).count() == 2
    # the person rebuilt one day at a time (the import's day) was marked for segments
    assert set(ProfileUpdate.objects.values_list("contact_id", flat=True)) >= {a.pk}


@pytest.mark.django_db
def test_a_merge_committed_between_the_read_and_the_lock_leaves_no_stale_day(web, server, monkeypatch):
    # given a loser whose event received in the dropped month counts on a day outside it
    winner, loser = make_contact(email="w@drop.test"), make_contact(email="l@drop.test")
    old_day = month(-9, day=3)
    page(web, loser, "/docs", timestamp=old_day, received_at=month(-6, day=4))
    page(server, winner, "/docs", timestamp=old_day + dt.timedelta(hours=2), received_at=month(-3))
    admin = make_admin()
    # and a merge into the winner that lands after the month hook read its rows, before it locked
    lock = event_months.contact_services.contacts_lock_ids
    calls = []

    def merge_then_lock(*, contact_ids):
        if not calls:
            contact_merge(winner=winner, loser=loser, field_choices={}, actor=admin)
        calls.append(set(contact_ids))
        lock(contact_ids=contact_ids)

    monkeypatch.setattr(event_months.contact_services, "contacts_lock_ids", merge_then_lock)
    services.events_retention_enforce(now=NOW)
    # then the hook read again under its locks, locked the winner too and rebuilt their day
    assert calls == [{loser.pk}, {winner.pk}]
    assert rollups([winner.pk]) == {(winner.pk, old_day.date(), "page", "/docs", 1)}
    assert rollups([winner.pk]) == recomputed([winner.pk])
