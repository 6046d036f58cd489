"""The read replica against a real streaming replica (tests/replica/cluster.py): opted-in reads go
to the standby, a unit of work that wrote reads the primary, and a standby that is down or lags is
not used until it is back."""

import threading
from decimal import Decimal

import pytest
from django.db import connections, router, transaction
from django.http import HttpResponse
from django.test import RequestFactory

from contacts.models import Contact
from core.csv import stream_csv
from core.replica import ReplicaMiddleware, replica_reads, replica_status, unit_of_work
from pipeline.models import Deal, Pipeline, Stage
from pipeline.selectors.reports import ReportFilters, pipeline_by_stage
from segments import services as segment_services
from tests.factories import make_admin, make_company, make_contact
from tests.replica.cluster import wait_for

pytestmark = [pytest.mark.replica, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]

BY_EMAIL = {
    "op": "and",
    "conditions": [{"type": "field", "field": "email", "operator": "contains", "value": "@replica.test"}],
}


@replica_reads
def where_reads_go() -> tuple[str, bool]:
    """The alias an opted-in read uses now, and whether that server is a standby."""
    alias = router.db_for_read(Contact)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        return alias, cursor.fetchone()[0]


@replica_reads
def emails() -> set[str]:
    return set(Contact.objects.values_list("email", flat=True))


def csv_of(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def open_deals(user, stage) -> int:
    rows = pipeline_by_stage(user=user, filters=ReportFilters())
    return next(row["count"] for row in rows if row["pk"] == stage.pk)


@pytest.fixture
def admin(client):
    user = make_admin()
    client.force_login(user)
    return user


@pytest.fixture
def stage():
    pipeline = Pipeline.objects.create(name="Sales")
    return Stage.objects.create(pipeline=pipeline, name="Lead", position=0, probability=10)


def deal(stage, title: str) -> Deal:
    return Deal.objects.create(pipeline=stage.pipeline, stage=stage, title=title, amount=Decimal(100))


def test_opted_in_reads_go_to_the_replica(replica, client, admin, stage):
    old = make_contact(email="old@replica.test", company=make_company(name="Old Co"))
    deal(stage, "old")
    segment = segment_services.segment_create(actor=admin, name="Hand-picked", kind="static")
    segment_services.segment_members_add(actor=admin, segment=segment, contact_ids=[old.pk])
    replica.wait_caught_up()
    with unit_of_work():
        assert where_reads_go() == ("replica", True)

    # Rows the standby has not replayed: only a read on the primary sees them.
    replica.pause_replay()
    new = make_contact(email="new@replica.test", company=make_company(name="New Co"))
    deal(stage, "new")
    segment_services.segment_members_add(actor=admin, segment=segment, contact_ids=[new.pk])

    contacts = csv_of(client.get("/contacts/export.csv"))
    assert "old@replica.test" in contacts and "new@replica.test" not in contacts
    companies = csv_of(client.get("/companies/export.csv"))
    assert "Old Co" in companies and "New Co" not in companies
    members = csv_of(client.get(f"/segments/{segment.pk}/export.csv"))
    assert "old@replica.test" in members and "new@replica.test" not in members
    preview = client.post(
        "/api/v1/segments/preview/", {"definition": BY_EMAIL}, content_type="application/json"
    )
    assert preview.status_code == 200 and preview.json()["count"] == 1
    assert client.get("/reports/").status_code == 200
    with unit_of_work():
        assert open_deals(admin, stage) == 1

    # Reads that did not opt in read the primary.
    assert Contact.objects.filter(email="new@replica.test").exists()
    assert Deal.objects.filter(stage=stage).count() == 2
    assert "new@replica.test" in client.get("/contacts/").content.decode()


def test_a_unit_of_work_that_wrote_reads_the_primary(replica):
    make_contact(email="before@replica.test")
    replica.wait_caught_up()
    replica.pause_replay()

    def writes_then_reads(request):
        make_contact(email="mine@replica.test")  # the request's own write
        return HttpResponse(",".join(sorted(emails())))

    response = ReplicaMiddleware(writes_then_reads)(RequestFactory().get("/"))
    assert "mine@replica.test" in response.content.decode()

    @replica_reads
    def rows():
        for email in Contact.objects.order_by("email").values_list("email", flat=True).iterator():
            yield [email]

    def writes_then_streams(request):
        make_contact(email="streamed@replica.test")
        return stream_csv(filename="x.csv", header=["email"], rows=rows())

    # The rows are read after the view and its middleware returned, on the choice made in the view.
    assert "streamed@replica.test" in csv_of(
        ReplicaMiddleware(writes_then_streams)(RequestFactory().get("/"))
    )

    # A request that only reads uses the standby, which has not replayed those rows.
    response = ReplicaMiddleware(lambda request: HttpResponse(",".join(sorted(emails()))))(
        RequestFactory().get("/")
    )
    assert response.content.decode() == "before@replica.test"

    # Inside transaction.atomic reads go to the primary, also when the block opens inside an
    # opted-in read.
    with unit_of_work():
        with transaction.atomic():
            assert "mine@replica.test" in emails()
        with replica_reads():
            assert not Contact.objects.filter(email="mine@replica.test").exists()
            with transaction.atomic():
                assert Contact.objects.filter(email="mine@replica.test").exists()


def test_a_replica_that_is_down_is_not_used_and_nothing_fails(replica, client, admin, stage):
    make_contact(email="old@replica.test")
    deal(stage, "old")
    replica.wait_caught_up()
    assert "old@replica.test" in csv_of(client.get("/contacts/export.csv"))
    assert replica_status().usable  # and the replica's connection is open

    replica.standby.stop()
    make_contact(email="new@replica.test")
    deal(stage, "new")
    # The cached verdict still says "usable": the report's query fails on the replica, marks it
    # down and runs again on the primary.
    with unit_of_work():
        assert open_deals(admin, stage) == 2
    status = replica_status()
    assert not status.usable and "connection failed" in status.reason
    # Until the next check every opted-in read goes straight to the primary, without trying the
    # replica (the verdict is not checked again).
    assert client.get("/reports/").status_code == 200
    body = csv_of(client.get("/contacts/export.csv"))
    assert "old@replica.test" in body and "new@replica.test" in body
    preview = client.post(
        "/api/v1/segments/preview/", {"definition": BY_EMAIL}, content_type="application/json"
    )
    assert preview.status_code == 200 and preview.json()["count"] == 2
    assert replica_status().checked_at == status.checked_at

    # Back up: the next check uses it again.
    replica.standby.start()
    wait_for(lambda: replica_status(refresh=True).usable, timeout=30, what="the replica to be usable again")
    with unit_of_work():
        assert where_reads_go() == ("replica", True)

    # Down again under an export: its first row fails on the replica, so it starts over on the
    # primary before anything was sent.
    replica.standby.stop()
    body = csv_of(client.get("/contacts/export.csv"))
    assert "old@replica.test" in body and "new@replica.test" in body
    assert not replica_status().usable


def test_a_restarted_replica_is_used_at_the_next_check(replica):
    make_contact(email="old@replica.test")
    replica.wait_caught_up()
    assert replica_status(refresh=True).usable  # the process now holds a replica connection
    replica.standby.stop()
    replica.standby.start()
    # That connection died with the old server: the check retries once on a new one instead of
    # calling the replica down for another interval.
    status = replica_status(refresh=True)
    assert status.usable, status.reason
    with unit_of_work():
        assert where_reads_go() == ("replica", True)


@pytest.fixture
def no_standby_delay(replica):
    """The standby cancels a query that conflicts with replay at once (production waits up to
    max_standby_streaming_delay, 30 s by default)."""
    with replica.standby.connect() as conn:
        conn.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
        conn.execute("SELECT pg_reload_conf()")
    yield
    with replica.standby.connect() as conn:
        conn.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
        conn.execute("SELECT pg_reload_conf()")


def test_a_query_the_standby_cancels_for_a_recovery_conflict_runs_again_on_the_primary(
    replica, no_standby_delay
):
    dbname = connections["default"].settings_dict["NAME"]
    with replica.primary.connect(dbname) as conn:  # a table of its own: raw deletes and VACUUM
        conn.execute("CREATE TABLE conflict_probe AS SELECT generate_series(1, 1000) AS n")
    replica.wait_caught_up()
    runs, errors = [], []

    @replica_reads
    def slow_read():
        alias = router.db_for_read(Contact)
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery(), count(*), pg_sleep(2) FROM conflict_probe")
            runs.append(alias)
            return alias, cursor.fetchone()[0]

    def vacuum_under_it():
        # Once the read runs on the standby, remove rows its snapshot still sees: replaying the
        # cleanup conflicts with the query, which the standby then cancels.
        running = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE '%FROM conflict_probe' AND pid <> pg_backend_pid()"
        )
        try:
            wait_for(
                lambda: replica.standby.query(running), timeout=10, what="the read to run on the standby"
            )
            with replica.primary.connect(dbname) as conn:
                conn.execute("DELETE FROM conflict_probe WHERE n > 10")
                conn.execute("VACUUM conflict_probe")
        except Exception as exc:
            errors.append(exc)

    vacuum = threading.Thread(target=vacuum_under_it)
    vacuum.start()
    try:
        with unit_of_work():
            answer = slow_read()
    finally:
        vacuum.join()
        with replica.primary.connect(dbname) as conn:
            conn.execute("DROP TABLE conflict_probe")
    assert not errors
    # Cancelled on the standby (it never returned there), answered by the primary.
    assert runs == ["default"] and answer == ("default", False)
    assert replica_status().usable  # a cancelled query is not a replica that is down


def test_a_lagging_replica_is_not_used_until_it_catches_up(replica, client, admin, settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 1
    make_contact(email="old@replica.test")
    replica.wait_caught_up()
    assert replica_status(refresh=True).usable

    replica.pause_replay()
    make_contact(email="new@replica.test")
    # Behind the primary, and its last replayed commit is older and older.
    wait_for(lambda: not replica_status(refresh=True).usable, timeout=30, what="the replica to lag past 1 s")
    status = replica_status()
    assert status.lag_seconds > 1 and "lags" in status.reason
    assert "new@replica.test" in csv_of(client.get("/contacts/export.csv"))
    with unit_of_work():
        assert where_reads_go() == ("default", False)

    replica.resume_replay()
    wait_for(lambda: replica_status(refresh=True).usable, timeout=30, what="the replica to catch up")
    with unit_of_work():
        assert where_reads_go() == ("replica", True)
        assert "new@replica.test" in emails()


def test_an_idle_caught_up_replica_is_used_however_old_its_last_commit(replica, settings):
    """Lag is measured in WAL: on an idle primary the standby's replay timestamp grows without
    bound, yet it has everything."""
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 1
    make_contact(email="old@replica.test")
    replica.wait_caught_up()
    old_commit = "SELECT now() - pg_last_xact_replay_timestamp() > interval '1.5 seconds'"
    wait_for(lambda: replica.standby.query(old_commit), timeout=30, what="the last commit to be 1.5 s old")
    status = wait_for(
        lambda: (s := replica_status(refresh=True)).usable and s, timeout=10, what="a check on the idle pair"
    )
    assert status.lag_seconds == 0
    with unit_of_work():
        assert where_reads_go() == ("replica", True)
