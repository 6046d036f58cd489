from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError, Forbidden
from pipeline.models import Activity, ActivityKind, Deal, Task
from pipeline.services import activities
from tests.factories import make_admin, make_contact, make_user

pytestmark = pytest.mark.django_db


def _refetch(deal):
    return Deal.objects.get(pk=deal.pk)


# --- last / next activity


def test_logging_an_activity_sets_the_deals_last_activity(sales_user, deal):
    # given a deal with no activity
    when = timezone.now() - timedelta(hours=2)
    # when a rep logs a call on it
    activities.activity_log(actor=sales_user, kind="call", subject="Intro call", deal=deal, occurred_at=when)
    # then the deal's last activity is that call's time
    assert _refetch(deal).last_activity_at == when


def test_last_activity_is_the_latest_and_follows_edits_and_deletes(sales_user, deal):
    # given two activities on a deal
    now = timezone.now()
    older = activities.activity_log(
        actor=sales_user, kind="note", body="a", deal=deal, occurred_at=now - timedelta(days=3)
    )
    newer = activities.activity_log(
        actor=sales_user, kind="note", body="b", deal=deal, occurred_at=now - timedelta(days=1)
    )
    assert _refetch(deal).last_activity_at == newer.occurred_at
    # when the newer one is moved back in time, then the older one is the latest
    activities.activity_update(activity=newer, actor=sales_user, occurred_at=now - timedelta(days=5))
    assert _refetch(deal).last_activity_at == older.occurred_at
    # when both are deleted, then the deal has no last activity
    activities.activity_delete(activity=older, actor=sales_user)
    activities.activity_delete(activity=newer, actor=sales_user)
    assert _refetch(deal).last_activity_at is None


def test_next_activity_is_the_earliest_open_task_and_follows_complete_reschedule_delete(sales_user, deal):
    now = timezone.now()
    # given two open tasks on the deal and one undated
    soon = activities.task_create(
        actor=sales_user, title="Send quote", due_at=now + timedelta(days=1), deal=deal
    )
    later = activities.task_create(
        actor=sales_user, title="Follow up", due_at=now + timedelta(days=4), deal=deal
    )
    activities.task_create(actor=sales_user, title="Someday", deal=deal)
    assert _refetch(deal).next_activity_at == soon.due_at
    # when the soonest is done, then the next one counts
    activities.task_complete(task=soon, actor=sales_user)
    assert _refetch(deal).next_activity_at == later.due_at
    # when it is reopened, it counts again
    activities.task_reopen(task=soon, actor=sales_user)
    assert _refetch(deal).next_activity_at == soon.due_at
    # when it is rescheduled after the other one, the other one is next
    activities.task_update(task=soon, actor=sales_user, due_at=now + timedelta(days=9))
    assert _refetch(deal).next_activity_at == later.due_at
    # when every dated task is gone, there is no next activity
    activities.task_delete(task=later, actor=sales_user)
    activities.task_complete(task=soon, actor=sales_user)
    assert _refetch(deal).next_activity_at is None


def test_refresh_is_idempotent_and_repairs_drifted_dates(sales_user, deal):
    # given a deal whose dates drifted (written by hand)
    task = activities.task_create(
        actor=sales_user, title="Call", due_at=timezone.now() + timedelta(hours=3), deal=deal
    )
    Deal.objects.filter(pk=deal.pk).update(next_activity_at=None, last_activity_at=timezone.now())
    # when the refresh runs twice
    activities.deal_activity_dates_refresh(deal_id=deal.pk)
    activities.deal_activity_dates_refresh(deal_id=deal.pk)
    # then the dates come from the data
    fresh = _refetch(deal)
    assert fresh.next_activity_at == task.due_at and fresh.last_activity_at is None


def test_activity_on_a_contact_only_leaves_deals_alone(sales_user, deal):
    contact = make_contact(first_name="Ada")
    activity = activities.activity_log(actor=sales_user, kind="email", subject="Hi", contact=contact)
    assert activity.contact_id == contact.pk and _refetch(deal).last_activity_at is None


# --- validation


def test_an_activity_needs_a_record_a_kind_and_some_text(sales_user, deal):
    with pytest.raises(DomainError, match="contact, a deal or a company"):
        activities.activity_log(actor=sales_user, kind="note", body="x")
    with pytest.raises(DomainError, match="Unknown activity kind"):
        activities.activity_log(actor=sales_user, kind="fax", body="x", deal=deal)
    with pytest.raises(DomainError, match="subject or a body"):
        activities.activity_log(actor=sales_user, kind="note", body="   ", deal=deal)
    assert Activity.objects.count() == 0


def test_a_task_needs_a_title_and_defaults_to_the_actor(sales_user, deal):
    with pytest.raises(DomainError, match="title"):
        activities.task_create(actor=sales_user, title="  ", deal=deal)
    task = activities.task_create(actor=sales_user, title="Call back", deal=deal)
    assert task.assignee_id == sales_user.pk and task.created_by_id == sales_user.pk


def test_rescheduling_a_task_allows_a_new_reminder(sales_user):
    task = activities.task_create(
        actor=sales_user, title="Call", due_at=timezone.now(), contact=make_contact()
    )
    Task.objects.filter(pk=task.pk).update(reminder_sent_at=timezone.now())
    task.refresh_from_db()
    activities.task_update(task=task, actor=sales_user, due_at=timezone.now() + timedelta(days=1))
    assert Task.objects.get(pk=task.pk).reminder_sent_at is None


# --- permissions matrix


@pytest.mark.parametrize(
    ("who", "log", "edit_own", "edit_others"),
    [
        ("admin", True, True, True),
        ("sales", True, True, False),
        ("marketing", False, False, False),
    ],
)
def test_activity_permissions(who, log, edit_own, edit_others, deal):
    # given a user of each role, and an activity another rep wrote on someone else's deal
    user = {"admin": make_admin, "sales": make_user, "marketing": lambda: make_user(role="Marketing")}[who]()
    other_rep = make_user()
    Deal.objects.filter(pk=deal.pk).update(owner=other_rep)
    others = activities.activity_log(actor=other_rep, kind="note", body="theirs", deal=deal)
    own = Activity.objects.create(
        kind=ActivityKind.NOTE, body="mine", deal=deal, author=user, occurred_at=timezone.now()
    )

    def attempt(fn):
        try:
            fn()
        except Forbidden:
            return False
        return True

    # then logging (even on another rep's deal), editing own and editing others' follow the role
    assert attempt(lambda: activities.activity_log(actor=user, kind="call", body="x", deal=deal)) is log
    assert attempt(lambda: activities.activity_update(activity=own, actor=user, body="edited")) is edit_own
    assert (
        attempt(lambda: activities.activity_update(activity=others, actor=user, body="edited")) is edit_others
    )
    assert attempt(lambda: activities.activity_delete(activity=others, actor=user)) is edit_others
    assert Activity.objects.filter(pk=others.pk).exists() is not edit_others


@pytest.mark.parametrize(
    ("who", "create", "change_others"),
    [("admin", True, True), ("sales", True, False), ("marketing", False, False)],
)
def test_task_permissions(who, create, change_others):
    user = {"admin": make_admin, "sales": make_user, "marketing": lambda: make_user(role="Marketing")}[who]()
    contact = make_contact()
    other = make_user()
    theirs = activities.task_create(actor=other, title="Theirs", contact=contact)

    def attempt(fn):
        try:
            fn()
        except Forbidden:
            return False
        return True

    assert attempt(lambda: activities.task_create(actor=user, title="Mine", contact=contact)) is create
    assert attempt(lambda: activities.task_complete(task=theirs, actor=user)) is change_others
    assert attempt(lambda: activities.task_delete(task=theirs, actor=user)) is change_others


def test_a_rep_may_complete_a_task_assigned_to_them_by_someone_else(sales_user):
    manager = make_admin()
    task = activities.task_create(
        actor=manager, title="Call Ada", assignee=sales_user, contact=make_contact()
    )
    activities.task_complete(task=task, actor=sales_user)
    task.refresh_from_db()
    assert task.done and task.done_at is not None


def test_an_activity_body_is_capped_with_a_message_that_says_by_how_much(sales_user):
    contact = make_contact()
    # the longest allowed body is kept whole
    note = activities.activity_log(actor=sales_user, kind="note", body="x" * 50_000, contact=contact)
    assert len(note.body) == 50_000
    # one more character is refused, on create and on edit
    with pytest.raises(DomainError, match="at most 50,000 characters; this one has 50,001") as exc:
        activities.activity_log(actor=sales_user, kind="note", body="x" * 50_001, contact=contact)
    assert "body" in exc.value.fields
    with pytest.raises(DomainError, match="this one has 60,000"):
        activities.activity_update(activity=note, actor=sales_user, body="y" * 60_000)
    assert Activity.objects.get().body == "x" * 50_000
