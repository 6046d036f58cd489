"""The partitioned event log: inserts land in their month's partition (or DEFAULT), partitions are
created ahead (idempotent, rescuing DEFAULT's rows), retention drops whole months when every source
with rows in them is past its retention and deletes the rest in batches, erasure finds events in
every partition, and the append-only trigger guards each partition."""

import datetime as dt
import itertools

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events import services, tasks
from events.ingest.parse import normalise
from events.models import Event, IngestBatch, IngestQueue, Source
from events.selectors import queued_event_ids
from events.services import partitions
from identity.models import ContactEvent, DailyActivity, ProfileUpdate
from identity.services.projection import daily_activity_recompute
from tests.identity.helpers import drain

_seq = itertools.count(1)
NOW = timezone.now()
THIS_MONTH = partitions.month_start(NOW)


def month(offset: int, day: int = 10) -> dt.datetime:
    """A moment `day` days into the month `offset` months from this one (UTC)."""
    return partitions.month_add(THIS_MONTH, offset) + dt.timedelta(days=day, hours=3)


def stored(
    source: Source, *, at: dt.datetime, anonymous_id: str = "a1", queued: bool = True, **fields
) -> Event:
    """An event as the API stores it, received at `at` (the API stamps now; old ones are history)."""
    event = Event.objects.create(
        source=source,
        message_id=f"m{next(_seq)}",
        type=fields.pop("type", "page"),
        anonymous_id=anonymous_id,
        properties={"path": fields.pop("path", "/pricing")},
        timestamp=at,
        received_at=at,
        **fields,
    )
    if queued:
        IngestBatch.objects.create(event_ids=[event.pk], size=1, enqueued_at=at)
    return event


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM events_event WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def partition_names() -> set[str]:
    return {p.name for p in partitions.event_partitions()}


def keep_for(source: Source, days: int | None) -> Source:
    return services.source_privacy_update(
        actor=None, source=source, require_consent=False, honor_gpc=False, retention_days=days
    )


@pytest.mark.django_db
def test_a_fresh_install_is_partitioned_by_month_with_partitions_ahead_and_a_default():
    assert partitions.event_log_is_partitioned()
    names = partition_names()
    assert {partitions.partition_name(partitions.month_add(THIS_MONTH, i)) for i in range(4)} <= names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_event_pkey'"
        )
        assert cursor.fetchone()[0] == "PRIMARY KEY (id, received_at)"
        cursor.execute("SELECT to_regclass(%s)::text", [partitions.DEFAULT_PARTITION])
        assert cursor.fetchone()[0] == partitions.DEFAULT_PARTITION


@pytest.mark.django_db
def test_inserts_are_routed_to_their_month_and_the_default_partition_takes_the_rest(paused_worker):
    source = Source.objects.create(name="Web")
    # the API's path (one statement, dedup and queue row): stamped now, so this month's partition
    message = normalise(
        {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "api-1"}, received_at=NOW
    )
    assert services.events_store(source=source, messages=[message], rejections=[], received_at=NOW) == 1
    # the same messageId again is still deduplicated
    assert services.events_store(source=source, messages=[message], rejections=[], received_at=NOW) == 0
    (api_event,) = Event.objects.filter(message_id="api-1")
    assert partition_of(api_event.pk) == partitions.partition_name(THIS_MONTH)
    assert queued_event_ids() == [api_event.pk]
    # a month with a partition, and one years back without: DEFAULT (an insert never fails)
    ahead = stored(source, at=month(2))
    ancient = stored(source, at=month(-60))
    assert partition_of(ahead.pk) == partitions.partition_name(partitions.month_add(THIS_MONTH, 2))
    assert partition_of(ancient.pk) == partitions.DEFAULT_PARTITION
    # and the ORM reads them by id across partitions
    assert set(
        Event.objects.filter(pk__in=[api_event.pk, ahead.pk, ancient.pk]).values_list("pk", flat=True)
    ) == {
        api_event.pk,
        ahead.pk,
        ancient.pk,
    }


@pytest.mark.django_db
def test_ensure_creates_months_ahead_idempotently_and_gives_default_rows_their_month():
    source = Source.objects.create(name="Web")
    # given events that landed in DEFAULT (their months had no partition: beat was down)
    later = partitions.month_add(THIS_MONTH, 30)
    stranded = [stored(source, at=later + dt.timedelta(days=d), queued=False) for d in (1, 20)]
    other = stored(source, at=partitions.month_add(THIS_MONTH, 40) + dt.timedelta(days=2), queued=False)
    assert {partition_of(e.pk) for e in stranded + [other]} == {partitions.DEFAULT_PARTITION}
    # when partitions are ensured as of that later month
    created = services.event_partitions_ensure(now=later + dt.timedelta(days=5))
    # then that month and three more exist, and the month found in DEFAULT got one too
    expected = {partitions.partition_name(partitions.month_add(later, i)) for i in range(4)}
    expected.add(partitions.partition_name(partitions.month_add(THIS_MONTH, 40)))
    # (each together with the projection's partition of the same month, and the rollups' month
    # of days)
    projection = {name.replace("events_event", "identity_contactevent") for name in expected}
    rollups = {name.replace("events_event", "identity_dailyactivity") for name in expected}
    assert set(created) == expected | projection | rollups
    assert expected <= partition_names()
    # the stranded rows moved out of DEFAULT, ids and contents unchanged
    assert {partition_of(e.pk) for e in stranded} == {partitions.partition_name(later)}
    assert partition_of(other.pk) == partitions.partition_name(partitions.month_add(THIS_MONTH, 40))
    assert Event.objects.get(pk=stranded[0].pk).message_id == stranded[0].message_id
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT_PARTITION}")
        assert cursor.fetchone()[0] == 0
    # and running it again changes nothing
    assert services.event_partitions_ensure(now=later + dt.timedelta(days=5)) == []
    assert services.event_partitions_ensure() == []


def test_the_ensure_task_is_scheduled_by_beat_on_the_default_queue():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["events.tasks.event_partitions_ensure"] <= 24 * 3600
    assert settings.CELERY_TASK_ROUTES["events.tasks.event_partitions_ensure"] == {"queue": "default"}


@pytest.mark.django_db(transaction=True)
def test_the_ensure_task_on_the_worker_recreates_a_missing_month(celery_worker):
    # given next month's (empty) partition is missing
    name = partitions.partition_name(partitions.month_add(THIS_MONTH, 1))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {name}")
    assert name not in partition_names()
    # when the beat task runs on the worker
    tasks.event_partitions_ensure.delay()
    celery_worker.wait_until_idle()
    # then it is back
    assert name in partition_names()


@pytest.mark.django_db
def test_retention_drops_whole_months_and_deletes_only_at_the_boundary(paused_worker):
    # given three sources keeping 30 days, 365 days and forever, and monthly partitions back 16 months
    web = keep_for(Source.objects.create(name="Web"), 30)
    server = keep_for(Source.objects.create(name="Server"), 365)
    app = Source.objects.create(name="App")
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -16), ahead=16)
    # a month 16 back holding web and server events (both past retention) -> dropped whole
    gone_month = [stored(web, at=month(-16)), stored(server, at=month(-16), anonymous_id="s1")]
    # a month 6 back with a web event and an app event (kept forever) -> stays, web's row deleted
    app_old, web_6 = stored(app, at=month(-6), anonymous_id="p1"), stored(web, at=month(-6))
    # a month 3 back with web (expired) and server (kept 365 days) -> stays, web's row deleted
    server_3, web_3 = stored(server, at=month(-3), anonymous_id="s1"), stored(web, at=month(-3))
    # the boundary: web events 35 and 20 days old
    web_35, web_20 = stored(web, at=NOW - dt.timedelta(days=35)), stored(web, at=NOW - dt.timedelta(days=20))
    drain()
    person_ids = set(ContactEvent.objects.values_list("contact_id", flat=True))
    assert ContactEvent.objects.filter(event_id__in=[e.pk for e in gone_month]).count() == 2
    # and an event of the dropped month still waiting in the queue
    queued_old = stored(web, at=month(-16, day=12), anonymous_id="a9")
    # and one dead-lettered there (a retry row of its own)
    IngestQueue.objects.create(event_id=gone_month[0].pk, enqueued_at=NOW, attempts=5, dead_at=NOW)
    ProfileUpdate.objects.all().delete()
    # when retention runs
    deleted = services.events_retention_enforce(now=NOW)
    # then the old month's partition is gone, with its events' projections and queue row
    assert deleted == 3 + 3  # the dropped month's 3, then web's 3 past-cutoff rows in kept months
    assert partitions.partition_name(partitions.month_add(THIS_MONTH, -16)) not in partition_names()
    dropped_ids = [e.pk for e in gone_month] + [queued_old.pk]
    assert not Event.objects.filter(pk__in=dropped_ids).exists()
    assert not ContactEvent.objects.filter(event_id__in=dropped_ids).exists()
    assert queued_old.pk not in queued_event_ids()
    assert not IngestQueue.objects.exists()
    # the months other sources still keep stay, losing only web's rows (the batch delete)
    assert {
        partitions.partition_name(partitions.month_add(THIS_MONTH, m)) for m in (-6, -3)
    } <= partition_names()
    assert set(Event.objects.values_list("pk", flat=True)) == {app_old.pk, server_3.pk, web_20.pk}
    assert not ContactEvent.objects.filter(event_id__in=[web_6.pk, web_3.pk, web_35.pk]).exists()
    # the people were marked for segments and their rollups equal a recompute from what is left
    assert set(ProfileUpdate.objects.values_list("contact_id", flat=True)) & person_ids
    after = set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count"))
    daily_activity_recompute(contact_ids=sorted(person_ids))
    assert set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count")) == after
    # and a second run finds nothing: a month shared with a source that keeps it is not dropped
    assert services.events_retention_enforce(now=NOW) == 0
    assert {
        partitions.partition_name(partitions.month_add(THIS_MONTH, m)) for m in (-6, -3)
    } <= partition_names()


@pytest.mark.django_db
def test_retention_drops_an_expired_month_only_when_its_lock_is_granted_and_never_without_retention():
    web = Source.objects.create(name="Web")
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -3), ahead=3)
    old = stored(web, at=month(-3), queued=False)
    # no source has a retention: nothing is read or dropped
    assert services.events_retention_enforce(now=NOW) == 0
    assert partitions.partition_name(partitions.month_add(THIS_MONTH, -3)) in partition_names()
    keep_for(web, 7)
    assert services.events_retention_enforce(now=NOW) == 1
    assert not Event.objects.filter(pk=old.pk).exists()
    assert partitions.partition_name(partitions.month_add(THIS_MONTH, -3)) not in partition_names()


@pytest.mark.django_db(transaction=True)
def test_a_drop_that_cannot_get_the_lock_gives_way_and_the_next_run_drops_it():
    web = keep_for(Source.objects.create(name="Web"), 7)
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -2), ahead=2)
    old = stored(web, at=month(-2), queued=False)
    name = partitions.partition_name(partitions.month_add(THIS_MONTH, -2))
    # given another connection holding a lock on the event log (a long report, say)
    from django.db import connections

    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("LOCK TABLE events_event IN ACCESS SHARE MODE")
            (partition,) = [p for p in partitions.event_partitions() if p.name == name]
            # then the drop waits only DDL_LOCK_TIMEOUT and reports it did not happen
            assert partitions.event_partition_drop(partition=partition) is False
        other.rollback()
    finally:
        other.close()
    assert Event.objects.filter(pk=old.pk).exists() and name in partition_names()
    # and once the lock is free, retention drops it
    assert services.events_retention_enforce(now=NOW) == 1
    assert name not in partition_names()


@pytest.mark.django_db
def test_erasure_finds_a_persons_events_in_every_partition():
    source = Source.objects.create(name="Web")
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -2), ahead=2)
    theirs = [
        stored(source, at=month(-2), anonymous_id="erase-me"),
        stored(source, at=month(-1), user_id="erase-me", anonymous_id=""),
        stored(source, at=NOW, anonymous_id="erase-me"),
        stored(source, at=month(-50), anonymous_id="erase-me"),  # DEFAULT
    ]
    others = [
        stored(source, at=month(-2), anonymous_id="keep"),
        stored(source, at=month(-50), anonymous_id="keep"),
    ]
    assert len({partition_of(e.pk) for e in theirs}) == 4
    drain()
    counts = services.events_delete_for_identifiers(identifiers=["erase-me"])
    assert counts["events.Event"] == 4
    assert counts["identity.ContactEvent"] == 4
    assert set(Event.objects.values_list("pk", flat=True)) == {e.pk for e in others}
    # by id too
    assert services.events_delete(event_ids=[others[1].pk])["events.Event"] == 1


@pytest.mark.django_db
def test_the_append_only_trigger_guards_every_partition():
    source = Source.objects.create(name="Web")
    # a partition created after the trigger (ensure), this month's, and DEFAULT
    created = services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, 12), ahead=0)
    assert created
    events = [
        stored(source, at=month(12), queued=False),
        stored(source, at=NOW, queued=False),
        stored(source, at=month(-50), queued=False),
    ]
    for event in events:
        for sql in (
            "UPDATE events_event SET event = 'tampered' WHERE id = %s",
            f"UPDATE {partition_of(event.pk)} SET event = 'tampered' WHERE id = %s",
        ):
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(sql, [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Event.objects.filter(pk=events[0].pk).update(event="tampered")
    assert not Event.objects.filter(event="tampered").exists()
    # DELETE stays possible (retention, erasure)
    assert Event.objects.filter(pk=events[1].pk).delete()[0] == 1


@pytest.mark.django_db
def test_ids_stay_unique_across_partitions_and_keep_insert_order():
    source = Source.objects.create(name="Web")
    ids = [stored(source, at=at, queued=False).pk for at in (month(-50), NOW, month(1), NOW)]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert Event.objects.filter(pk=ids[2]).get().received_at == month(1)
