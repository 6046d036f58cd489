import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification
from accounts.services import notifications
from contacts.models import Contact, ContactMerge
from identity.models import HotDealAlert, HotRule
from identity.services import hot
from pipeline.models import Deal, DealStatus
from tests.factories import (
    default_hot_rule,
    make_contact,
    make_deal,
    make_pipeline,
    make_user,
    stages_of,
    stored_contact_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def pricing_rule(db):
    return default_hot_rule()


@pytest.fixture
def stage():
    return stages_of(make_pipeline())[0]


@pytest.fixture
def rita():
    return make_user(role="Sales", username="rita", email="rita@example.com")


@pytest.fixture
def now():
    return timezone.now()


def _pricing(contact, *at):
    for when in at:
        stored_contact_event(contact, at=when, path="/pricing")


def test_two_pricing_views_in_a_day_notify_the_owner_once(stage, rita, now):
    # given Ada, on Rita's open deal, viewing pricing twice in the last hours
    ada = make_contact(first_name="Ada", last_name="Lovelace")
    deal = make_deal(stage, contact=ada, owner=rita)
    _pricing(ada, now - timedelta(hours=5), now - timedelta(minutes=1))
    # when the worker reports Ada's batch (twice: a redelivered batch)
    first = hot.hot_deals_notify(contact_ids=[ada.pk], now=now)
    again = hot.hot_deals_notify(contact_ids=[ada.pk, ada.pk], now=now + timedelta(minutes=5))
    # then Rita has exactly one notification, about the deal
    assert (first, again) == (1, 0)
    [note] = Notification.objects.filter(user=rita)
    assert note.title == "Hot deal: Acme pilot"
    assert "Ada Lovelace" in note.body and "2 times" in note.body
    assert note.url == f"/deals/{deal.pk}/"


def test_one_view_or_views_outside_the_window_do_not_notify(stage, rita, now):
    ada, bob = make_contact(first_name="Ada"), make_contact(first_name="Bob")
    make_deal(stage, contact=ada, owner=rita)
    make_deal(stage, contact=bob, owner=rita)
    _pricing(ada, now - timedelta(minutes=3))
    _pricing(
        bob, now - timedelta(hours=30), now - timedelta(hours=25), now + timedelta(hours=1)
    )  # old, and future
    stored_contact_event(ada, at=now - timedelta(minutes=2), path="/docs")
    stored_contact_event(ada, at=now - timedelta(minutes=1), path="/pricing", is_bot=True)
    assert hot.hot_deals_notify(contact_ids=[ada.pk, bob.pk], now=now) == 0
    assert not Notification.objects.exists()
    assert not HotDealAlert.objects.exists()


def test_a_new_window_notifies_again(stage, rita, now):
    ada = make_contact(first_name="Ada")
    make_deal(stage, contact=ada, owner=rita)
    _pricing(ada, now - timedelta(hours=1), now)
    assert hot.hot_deals_notify(contact_ids=[ada.pk], now=now) == 1
    # still hot 23 hours later (new views), but within the rule window: nothing new
    _pricing(ada, now + timedelta(hours=22), now + timedelta(hours=23))
    assert hot.hot_deals_notify(contact_ids=[ada.pk], now=now + timedelta(hours=23)) == 0
    # a day later, hot again: a new window, a new notification
    _pricing(ada, now + timedelta(hours=24, minutes=30))
    assert hot.hot_deals_notify(contact_ids=[ada.pk], now=now + timedelta(hours=25)) == 1
    assert Notification.objects.filter(user=rita).count() == 2


def test_participants_count_and_only_open_owned_deals_notify(stage, rita, now):
    ada, bob = make_contact(first_name="Ada"), make_contact(first_name="Bob")
    carol = make_user(role="Sales", username="carol")
    participating = make_deal(stage, title="Bob's deal", contact=ada, owner=rita)
    participating.participants.add(bob)
    make_deal(stage, title="Won deal", contact=bob, owner=carol, status=DealStatus.WON)
    unowned = make_deal(stage, title="Nobody's", contact=bob)
    _pricing(bob, now - timedelta(hours=2), now - timedelta(hours=1))

    assert hot.hot_deals_notify(contact_ids=[bob.pk], now=now) == 1

    assert list(Notification.objects.values_list("user__username", "title")) == [
        ("rita", "Hot deal: Bob's deal")
    ]
    # the unowned deal was not claimed: once someone owns it, they are told
    Deal.objects.filter(pk=unowned.pk).update(owner=carol)
    assert hot.hot_deals_notify(contact_ids=[bob.pk], now=now) == 1
    assert Notification.objects.filter(user=carol, title="Hot deal: Nobody's").exists()


def test_rules_are_configurable_and_can_be_disabled(stage, rita, now):
    ada = make_contact(first_name="Ada")
    make_deal(stage, contact=ada, owner=rita)
    HotRule.objects.update(enabled=False)
    rule = HotRule.objects.create(name="demo", path_contains="/book-a-demo", min_views=3, window_hours=1)
    for minutes in (50, 20, 1):
        stored_contact_event(ada, at=now - timedelta(minutes=minutes), path="/en/Book-A-Demo?x=1")
    _pricing(ada, now - timedelta(minutes=3), now - timedelta(minutes=2))  # the disabled rule matches
    assert hot.hot_deals_notify(contact_ids=[ada.pk], now=now) == 1
    assert list(HotDealAlert.objects.values_list("rule_id", flat=True)) == [rule.pk]
    assert "rule “demo”" in Notification.objects.get().body


def test_no_contacts_no_queries(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert hot.hot_deals_notify(contact_ids=[]) == 0


def test_an_opted_in_owner_gets_an_email_after_commit(
    stage, rita, now, mailoutbox, django_capture_on_commit_callbacks
):
    notifications.user_preferences_update(user=rita, email_notifications=True)
    ada = make_contact(first_name="Ada")
    deal = make_deal(stage, contact=ada, owner=rita)
    _pricing(ada, now - timedelta(hours=1), now)
    with django_capture_on_commit_callbacks() as callbacks:
        assert hot.hot_deals_notify(contact_ids=[ada.pk], now=now) == 1
    assert len(callbacks) == 1  # the email task is queued on commit, not sent inline
    assert mailoutbox == []
    note = Notification.objects.get()
    # the task's work: sent once, however often it runs
    assert notifications.notification_email_send(notification_id=note.pk)
    assert not notifications.notification_email_send(notification_id=note.pk)
    [mail] = mailoutbox
    assert mail.to == ["rita@example.com"] and mail.subject == "Hot deal: Acme pilot"
    assert f"/deals/{deal.pk}/" in mail.body


def test_an_owner_who_did_not_opt_in_gets_no_email(stage, rita, now, django_capture_on_commit_callbacks):
    ada = make_contact(first_name="Ada")
    make_deal(stage, contact=ada, owner=rita)
    _pricing(ada, now - timedelta(hours=1), now)
    with django_capture_on_commit_callbacks() as callbacks:
        hot.hot_deals_notify(contact_ids=[ada.pk], now=now)
    assert callbacks == []
    assert Notification.objects.filter(user=rita, emailed_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_notify_once(stage, rita, now):
    ada = make_contact(first_name="Ada")
    make_deal(stage, contact=ada, owner=rita)
    _pricing(ada, now - timedelta(hours=1), now)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(hot.hot_deals_notify(contact_ids=[ada.pk], now=now))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(results) == [0, 0, 0, 1]
    assert Notification.objects.count() == 1


# --- "browse, then sign in": history a merge brings along


def _sent_now(message: dict, now) -> dict:
    return {**message, "timestamp": now.isoformat()}


def test_pricing_views_made_anonymously_notify_once_the_visitor_identifies(
    client, source, stage, rita, now, django_capture_on_commit_callbacks
):
    from tests.factories import identify_payload, page_payload, send
    from tests.identity.helpers import drain

    # given Ada, on Rita's open deal, and a visitor who viewed pricing twice before signing in
    ada = make_contact(first_name="Ada", email="ada@example.com")
    make_deal(stage, contact=ada, owner=rita)
    with django_capture_on_commit_callbacks(execute=True):
        send(client, source, *(_sent_now(page_payload("/pricing", anonymous_id="v1"), now) for _ in range(2)))
        drain()
    assert not Notification.objects.exists()  # nobody's deal: the visitor is anonymous
    # when the visitor identifies as Ada (the anonymous history is stitched onto her)
    with django_capture_on_commit_callbacks(execute=True):
        send(
            client, source, _sent_now(identify_payload({"email": "ada@example.com"}, anonymous_id="v1"), now)
        )
        drain()
    # then Rita is told, once
    [note] = Notification.objects.filter(user=rita)
    assert note.title == "Hot deal: Acme pilot" and "2 times" in note.body
    # and a second device's pricing views, stitched in the same window, tell her nothing new
    with django_capture_on_commit_callbacks(execute=True):
        send(client, source, *(_sent_now(page_payload("/pricing", anonymous_id="v2"), now) for _ in range(2)))
        drain()
        send(
            client, source, _sent_now(identify_payload({"email": "ada@example.com"}, anonymous_id="v2"), now)
        )
        drain()
    assert Contact.objects.get(pk=ada.pk).merged_into_id is None
    assert ContactMerge.objects.filter(winner=ada).count() == 2
    assert Notification.objects.filter(user=rita).count() == 1


def test_a_merge_on_the_duplicates_page_brings_hot_history_and_notifies_once(
    admin_client, stage, rita, now, django_capture_on_commit_callbacks
):
    # given Ada on Rita's deal, and a duplicate record of her that viewed pricing twice
    ada = make_contact(first_name="Ada", email="ada@example.com")
    make_deal(stage, contact=ada, owner=rita)
    twin = make_contact(first_name="Ada", email="ada.l@example.com")
    _pricing(twin, now - timedelta(hours=2), now - timedelta(hours=1))
    other = make_contact(first_name="Ada", email="ada.3@example.com")
    _pricing(other, now - timedelta(minutes=30), now - timedelta(minutes=20))
    url = reverse("contacts_tools:merge")
    # when an Admin merges the duplicate into Ada
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"winner": ada.pk, "loser": twin.pk})
    # then Rita is told once; merging another hot duplicate in the window tells her nothing new
    assert response.status_code == 302
    [note] = Notification.objects.filter(user=rita)
    assert "Ada" in note.body
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"winner": ada.pk, "loser": other.pk})
    assert Contact.objects.get(pk=other.pk).merged_into_id == ada.pk
    assert Notification.objects.filter(user=rita).count() == 1
