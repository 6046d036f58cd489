"""The event projection (identity_contactevent) is partitioned with the event log's months:
created together, dropped together by retention, and merges and erasure see every partition."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from contacts.services.merging import contact_merge
from events import services
from events.models import Event
from events.services import partitions
from identity.models import ContactEvent, DailyActivity
from identity.services.projection import daily_activity_recompute
from tests.factories import make_admin, make_contact
from tests.factories.identity import stored_page

NOW = timezone.now()
THIS_MONTH = partitions.month_start(NOW)
TABLE = "identity_contactevent"


def month(offset: int, day: int = 10) -> dt.datetime:
    return partitions.month_add(THIS_MONTH, offset) + dt.timedelta(days=day, hours=3)


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE event_id = %s", [event_id])
        return cursor.fetchone()[0]


def projection_partitions() -> set[str]:
    return {p.name for p in partitions.event_partitions(table=TABLE)}


@pytest.mark.django_db
def test_the_projection_is_partitioned_with_the_event_logs_months():
    # given partitions ensured back two months
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -2), ahead=5)
    # then every event month has the projection's month, same bounds, and both have a DEFAULT
    events = {(p.start, p.end) for p in partitions.event_partitions()}
    projection = {(p.start, p.end) for p in partitions.event_partitions(table=TABLE)}
    assert events == projection
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        assert cursor.fetchone()[0] == "p"
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partitions.copartition_default(TABLE)])
        assert cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_row_lands_in_its_events_month_and_default_rows_move_when_their_month_is_created():
    person = make_contact(email="p@parts.test")
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -1), ahead=2)
    recent = stored_page(person, "/a", at=month(-1))
    assert ContactEvent.objects.get(pk=recent.pk).received_at == recent.received_at
    assert partition_of(recent.pk) == partitions.copartition_name(TABLE, partitions.month_add(THIS_MONTH, -1))
    # a month without a partition: DEFAULT, until ensure gives it one (rows move, none lost)
    old = stored_page(person, "/b", at=month(-30))
    assert partition_of(old.pk) == partitions.copartition_default(TABLE)
    created = services.event_partitions_ensure(now=month(-30), ahead=0)
    name = partitions.copartition_name(TABLE, partitions.month_add(THIS_MONTH, -30))
    assert name in created
    assert partition_of(old.pk) == name
    assert ContactEvent.objects.filter(contact=person).count() == 2


@pytest.mark.django_db
def test_retention_drops_the_projections_month_with_the_events_and_nothing_else():
    person = make_contact(email="r@parts.test")
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -6), ahead=6)
    gone = [stored_page(person, "/old", at=month(-6, day=d)) for d in (1, 2)]
    kept = [stored_page(person, "/new", at=NOW - dt.timedelta(days=2))]
    # the factory's source keeps events 30 days
    services.source_privacy_update(
        actor=None,
        source=Event.objects.get(pk=gone[0].pk).source,
        require_consent=False,
        honor_gpc=False,
        retention_days=30,
    )
    name = partitions.copartition_name(TABLE, partitions.month_add(THIS_MONTH, -6))
    assert name in projection_partitions()
    assert services.events_retention_enforce(now=NOW) == 2
    assert name not in projection_partitions()
    assert set(ContactEvent.objects.values_list("pk", flat=True)) == {kept[0].pk}
    # the rollups equal a recompute from what is left (the old month's day is gone)
    after = set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count"))
    daily_activity_recompute(contact_ids=[person.pk])
    assert set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count")) == after
    assert {row[3] for row in after} == {"/new"}


@pytest.mark.django_db
def test_a_merge_moves_the_losers_rows_in_every_partition_and_erasure_finds_them():
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -2), ahead=2)
    winner, loser = make_contact(email="w@parts.test"), make_contact(email="l@parts.test")
    theirs = [stored_page(loser, "/x", at=at) for at in (month(-2), month(-1), month(-40))]
    assert len({partition_of(e.pk) for e in theirs}) == 3
    contact_merge(winner=winner, loser=loser, field_choices={}, actor=make_admin())
    assert set(ContactEvent.objects.filter(contact=winner).values_list("pk", flat=True)) == {
        e.pk for e in theirs
    }
    counts = services.events_delete(event_ids=[e.pk for e in theirs])
    assert counts["identity.ContactEvent"] == 3
    assert not ContactEvent.objects.exists()


@pytest.mark.django_db
def test_converting_a_populated_unpartitioned_table_keeps_every_row():
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -1), ahead=1)
    person = make_contact(email="m@parts.test")
    for at in (month(-1), NOW, month(-40)):
        stored_page(person, "/m", at=at)
    with connection.cursor() as cursor:
        # an unpartitioned copy with the projection's columns, indexes and foreign keys
        cursor.execute("CREATE TABLE ce_copy (LIKE identity_contactevent INCLUDING DEFAULTS)")
        cursor.execute("ALTER TABLE ce_copy ADD PRIMARY KEY (event_id)")
        cursor.execute("CREATE INDEX ce_copy_timeline ON ce_copy (contact_id, timestamp DESC)")
        cursor.execute(
            "ALTER TABLE ce_copy ADD CONSTRAINT ce_copy_contact_fk FOREIGN KEY (contact_id) "
            "REFERENCES contacts_contact (id) DEFERRABLE INITIALLY DEFERRED"
        )
        cursor.execute("INSERT INTO ce_copy SELECT * FROM identity_contactevent")
        cursor.execute("SELECT array_agg(event_id ORDER BY event_id) FROM ce_copy")
        before = cursor.fetchone()[0]
        partitions.copartitioned_convert(cursor, table="ce_copy", key="event_id")
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'ce_copy'")
        assert cursor.fetchone()[0] == "p"
        cursor.execute("SELECT array_agg(event_id ORDER BY event_id) FROM ce_copy")
        assert cursor.fetchone()[0] == before
        cursor.execute("SELECT count(*) FROM ce_copy_default")
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'ce_copy'")
        assert {"ce_copy_pkey", "ce_copy_timeline"} <= {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'ce_copy'::regclass AND contype = 'f'"
        )
        assert [row[0] for row in cursor.fetchall()] == ["ce_copy_contact_fk"]
