import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from contacts.models import Contact
from core.errors import Conflict, Forbidden
from identity.models import ProfileUpdate
from segments import services
from segments.definition import compiler
from segments.models import MembershipChange, Segment, SizeSample
from tests.factories import make_contact, make_segment, make_user, profile_update, stored_page, stored_track
from tests.segments.helpers import members

pytestmark = pytest.mark.django_db

PRICING_NEVER_BOUGHT = {
    "op": "and",
    "conditions": [
        {
            "type": "page",
            "where": [{"property": "path", "operator": "contains", "value": "/pricing"}],
            "count": {"operator": "gte", "value": 2},
            "within_days": 7,
        },
        {"type": "event", "name": "Order Completed", "count": {"operator": "eq", "value": 0}},
    ],
}


def test_full_recompute_records_entries_exits_sizes_and_timing():
    curious = make_contact(email="c@x.io")
    buyer = make_contact(email="b@x.io")
    for contact in (curious, buyer):
        stored_page(contact, "/pricing")
        stored_page(contact, "/pricing/teams")
    segment = make_segment(PRICING_NEVER_BOUGHT)
    stored_track(buyer, "Order Completed")  # bought before the first compute
    segment = services.segment_refresh(segment=segment)
    assert members(segment) == {curious.pk}
    assert segment.member_count == 1 and segment.last_computed_at and segment.last_compute_ms is not None
    # curious buys: the next recompute closes the membership and logs the exit
    stored_track(curious, "Order Completed")
    segment = services.segment_refresh(segment=segment)
    assert members(segment) == set()
    membership = segment.memberships.get(contact=curious)
    assert membership.exited_at >= membership.entered_at
    kinds = list(
        MembershipChange.objects.filter(segment=segment).order_by("pk").values_list("kind", flat=True)
    )
    assert kinds == ["entered", "exited"]
    assert [s.size for s in SizeSample.objects.filter(segment=segment).order_by("pk")] == [1, 0]


def test_reentry_reopens_the_membership_row():
    contact = make_contact(email="r@x.io", tags=["vip"])
    segment = make_segment({"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": "vip"}]})
    services.segment_refresh(segment=segment)
    Contact.objects.filter(pk=contact.pk).update(tags=[])
    services.segment_refresh(segment=segment)
    Contact.objects.filter(pk=contact.pk).update(tags=["vip"])
    segment = services.segment_refresh(segment=segment)
    row = segment.memberships.get()
    assert row.exited_at is None and segment.member_count == 1
    assert MembershipChange.objects.filter(segment=segment).count() == 3


def test_window_expiry_is_handled_by_the_scheduled_recompute():
    contact = make_contact(email="w@x.io")
    stored_page(contact, "/pricing", days_ago=6)
    stored_page(contact, "/pricing", days_ago=6)
    segment = make_segment(PRICING_NEVER_BOUGHT)
    assert segment.has_window
    services.segment_refresh(segment=segment)
    assert members(segment) == {contact.pk}
    # The visits fall out of the 7-day window; the segment was computed "yesterday".
    Contact.objects.filter(pk=contact.pk)  # (no event happens: only time passes)
    from identity.models import ContactEvent, DailyActivity

    ContactEvent.objects.filter(contact=contact).update(timestamp=timezone.now() - dt.timedelta(days=8))
    DailyActivity.objects.filter(contact=contact).update(day=timezone.now().date() - dt.timedelta(days=8))
    Segment.objects.filter(pk=segment.pk).update(last_computed_at=timezone.now() - dt.timedelta(days=1))
    assert services.segments_refresh_due() == [segment.pk]
    assert members(segment) == set()


def test_scheduler_picks_stalest_first_skips_failing_and_recovers_stuck():
    now = timezone.now()
    fresh = make_segment({}, name="fresh")
    stale = make_segment({}, name="stale")
    older = make_segment({}, name="older")
    broken = make_segment({}, name="broken")
    stuck = make_segment({}, name="stuck")
    Segment.objects.filter(pk=fresh.pk).update(last_computed_at=now)
    Segment.objects.filter(pk=stale.pk).update(last_computed_at=now - dt.timedelta(hours=1))
    Segment.objects.filter(pk=older.pk).update(last_computed_at=now - dt.timedelta(hours=2))
    Segment.objects.filter(pk=broken.pk).update(last_computed_at=None, error_count=services.MAX_ERRORS)
    Segment.objects.filter(pk=stuck.pk).update(
        last_computed_at=now - dt.timedelta(hours=3), computing_since=now - dt.timedelta(hours=1)
    )
    assert services.segments_refresh_due(limit=2) == [stuck.pk, older.pk]
    stuck.refresh_from_db()
    assert stuck.computing_since is None and stuck.error_count == 0  # recovered, then succeeded


def test_a_failing_recompute_counts_an_error(settings):
    make_contact(email="a@x.io")
    segment = make_segment({})
    Segment.objects.filter(pk=segment.pk).update(definition={"op": "nope"})
    segment = services.segment_refresh(segment=segment)
    assert segment.error_count == 1 and "op" in segment.last_error and segment.computing_since is None


def test_statement_timeout_applies(settings):
    import psycopg

    from tests.conftest import _test_database_url

    settings.SEGMENT_STATEMENT_TIMEOUT_MS = 50
    contact = make_contact(email="t@x.io")
    stored_track(contact, "Login")
    segment = make_segment(
        {
            "op": "or",
            "conditions": [{"type": "event", "name": "Login", "count": {"operator": "gte", "value": 1}}],
        }
    )
    # a recompute that cannot finish in time: another session holds the membership table (a
    # 1 ms timeout on a real query was a race a quiet machine could win)
    with psycopg.connect(_test_database_url(), options="-c lock_timeout=5000") as other:
        other.execute("LOCK TABLE segments_membership IN ACCESS EXCLUSIVE MODE")
        segment = services.segment_refresh(segment=segment)
        other.rollback()
    assert segment.error_count == 1 and "timeout" in segment.last_error
    # and the timeout did not outlive the recompute in the caller's transaction
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


def test_a_recompute_inside_a_transaction_does_not_leave_its_timeout_behind(settings):
    settings.SEGMENT_STATEMENT_TIMEOUT_MS = 50
    segment = make_segment({"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": "vip"}]})
    assert services.segment_refresh(segment=segment).error_count == 0
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


def test_realtime_evaluates_only_affected_segments_for_the_updated_contacts():
    a = make_contact(email="a@x.io")
    b = make_contact(email="b@x.io")
    buyers = make_segment(
        {"op": "and", "conditions": [{"type": "event", "name": "Order Completed"}]}, name="buyers"
    )
    vips = make_segment(
        {"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": "vip"}]}, name="vips"
    )
    never_opened = make_segment(
        {
            "op": "and",
            "conditions": [
                {"type": "event", "name": "Newsletter Opened", "count": {"operator": "eq", "value": 0}}
            ],
        },
        name="never opened",
    )
    Contact.objects.filter(pk__in=[a.pk, b.pk]).update(tags=["vip"])  # behind the services' back
    stored_track(a, "Order Completed")
    stored_track(b, "Order Completed")
    profile_update(a)
    assert services.profile_updates_process() == 1
    assert members(buyers) == {a.pk}  # b's event has no profile update yet
    assert members(vips) == {a.pk}  # profile conditions (tags) are re-read for an updated contact
    # a segment about an event `a` never did cannot change for `a`: not evaluated (the scheduled
    # recompute computes it)
    assert members(never_opened) == set()
    assert not ProfileUpdate.objects.exists()
    buyers.refresh_from_db()
    assert buyers.member_count == 1


def test_realtime_follows_nested_segments():
    contact = make_contact(email="n@x.io")
    inner = make_segment({"op": "and", "conditions": [{"type": "event", "name": "Signed Up"}]}, name="inner")
    outer = make_segment(
        {"op": "and", "conditions": [{"type": "segment", "segment_id": inner.pk, "operator": "in"}]},
        name="outer",
    )
    stored_track(contact, "Signed Up")
    profile_update(contact)
    services.profile_updates_process()
    assert members(inner) == {contact.pk} and members(outer) == {contact.pk}


def test_cycles_and_missing_segments_are_refused():
    a = make_segment({}, name="a")
    b = make_segment({"op": "and", "conditions": [{"type": "segment", "segment_id": a.pk}]}, name="b")
    with pytest.raises(compiler.DefinitionError, match="cycle"):
        services.segment_update(
            actor=None,
            segment=a,
            definition={"op": "and", "conditions": [{"type": "segment", "segment_id": b.pk}]},
        )
    with pytest.raises(compiler.DefinitionError, match="does not exist"):
        make_segment({"op": "and", "conditions": [{"type": "segment", "segment_id": 999999}]})
    with pytest.raises(Conflict):
        services.segment_delete(actor=None, segment=a)


def test_static_members_by_hand_and_csv():
    segment = make_segment({}, kind="static")
    ada = make_contact(email="Ada@Example.com")
    bob = make_contact(email="bob@example.com")
    assert services.segment_members_add(actor=None, segment=segment, contact_ids=[ada.pk]) == 1
    result = services.segment_members_import_csv(
        actor=None, segment=segment, data=b"email\nada@example.com\nBOB@example.com\nnobody@x.io\n"
    )
    assert result == {"added": 1, "not_found": 1}
    assert members(segment) == {ada.pk, bob.pk}
    services.segment_members_remove(actor=None, segment=segment, contact_ids=[ada.pk])
    segment.refresh_from_db()
    assert members(segment) == {bob.pk} and segment.member_count == 1
    # Static segments are not touched by recomputes.
    services.segment_refresh(segment=segment)
    assert members(segment) == {bob.pk}


def test_roles():
    sales = make_user(role="Sales")
    marketing = make_user(role="Marketing")
    with pytest.raises(Forbidden):
        services.segment_create(actor=sales, name="x", definition={})
    assert services.segment_create(actor=marketing, name="x", definition={}).created_by == marketing


def test_realtime_sees_a_late_event_on_an_old_day():
    contact = make_contact(email="late@x.io")
    buyers = make_segment({"op": "and", "conditions": [{"type": "event", "name": "Order Completed"}]})
    services.segment_refresh(segment=buyers)
    # an offline app delivers a purchase made 20 days ago; the worker processes it now
    stored_track(contact, "Order Completed", days_ago=20)
    profile_update(contact)
    services.profile_updates_process()
    assert members(buyers) == {contact.pk}


def test_realtime_skips_segments_about_events_the_contact_never_did():
    contact = make_contact(email="skip@x.io")
    other = make_segment({"op": "and", "conditions": [{"type": "event", "name": "Webinar Joined"}]})
    never = make_segment(
        {
            "op": "and",
            "conditions": [
                {"type": "event", "name": "Webinar Joined", "count": {"operator": "eq", "value": 0}}
            ],
        }
    )
    stored_track(contact, "Login")
    profile_update(contact)
    services.profile_updates_process()
    # neither was evaluated: "never joined" would hold, but nothing about webinars changed
    assert members(other) == set() and members(never) == set()
    assert not MembershipChange.objects.exists()


def test_scheduler_stops_at_its_budget_and_releases_the_rest():
    segments = [make_segment({}, name=f"b{i}") for i in range(3)]
    assert services.segments_refresh_due(budget_seconds=0) == []  # over budget before the first
    assert Segment.objects.filter(computing_since__isnull=False).count() == 0
    assert set(services.segments_refresh_due()) == {s.pk for s in segments}


def test_a_changed_segment_queues_the_segments_that_read_it(django_capture_on_commit_callbacks, monkeypatch):
    from segments import tasks

    queued = []
    monkeypatch.setattr(tasks.segment_refresh, "delay", queued.append)
    make_contact(email="d@x.io", tags=["vip"])
    inner = make_segment({"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": "vip"}]})
    outer = make_segment({"op": "and", "conditions": [{"type": "segment", "segment_id": inner.pk}]}, name="o")
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_refresh(segment=inner)
    assert queued == [outer.pk]
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_refresh(segment=inner)  # no change: nothing to cascade
    assert queued == []


def test_realtime_closes_memberships_left_on_a_merged_tombstone():
    winner = make_contact(email="w@x.io", tags=["vip"])
    loser = make_contact(email="l@x.io", tags=["vip"])
    segment = make_segment(
        {"op": "and", "conditions": [{"type": "trait", "trait": "plan", "operator": "is_not_set"}]}
    )
    services.segment_refresh(segment=segment)
    assert members(segment) == {winner.pk, loser.pk}
    Contact.objects.filter(pk=loser.pk).update(merged_into=winner)  # the worker merged them
    profile_update(winner)
    services.profile_updates_process()
    assert members(segment) == {winner.pk}
    segment.refresh_from_db()
    assert segment.member_count == 1
