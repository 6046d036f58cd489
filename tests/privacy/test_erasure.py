import json
import time

import pytest
from django.test import Client

from contacts.models import Contact, ContactMerge
from events.models import Event, IngestBatch, Suppression
from events.selectors import queued_event_count
from events.services import suppression
from identity.models import ContactEvent, Identity
from pipeline.models import Deal
from privacy import services
from privacy.models import ErasureRequest, ErasureStatus
from segments.models import Membership
from tests.factories import identify_payload, make_contact, make_user, page_payload, send, track_payload
from tests.identity.helpers import drain

from .helpers import ANON_1, ANON_2, EMAIL, IDENTIFIERS, USER_ID, build_person, rows_mentioning


def test_erasing_a_person_with_10k_events_leaves_no_trace_anywhere(client, source, admin_user):
    # given a person with 10k events, merges and tombstones, CRM records and a bystander
    person = build_person(client, source, admin=admin_user, events=10_000)
    assert ContactEvent.objects.filter(contact=person.contact).count() >= 10_000
    # (the scan finds them in every kind of place before)
    assert set(rows_mentioning(IDENTIFIERS)) >= {
        "contacts_contact.email",
        "contacts_contact.traits",
        "contacts_contactmerge.winner_snapshot",
        "contacts_importrowerror.values",
        "events_event.anonymous_id",
        "events_event.user_id",
        "events_rejectedevent.payload",
        "identity_identity.value",
        "pipeline_activity.body",
        "segments_webhookdelivery.payload",
    }
    events_before = Event.objects.count()

    # when an Admin erases them and the task runs
    request = services.person_erase_request(actor=admin_user, contact=person.contact)
    done = services.person_erase(request_id=request.pk)

    # then no text, varchar, json or array column of any table holds one of their identifiers
    assert done.status == ErasureStatus.DONE
    assert rows_mentioning(IDENTIFIERS) == {}
    # the deal survives, detached; the bystander and their rows are untouched
    deal = Deal.objects.get(pk=person.deal_id)
    assert deal.contact_id is None
    assert list(deal.participants.all()) == [person.bystander]
    assert Membership.objects.filter(contact=person.bystander).exists()
    assert rows_mentioning(["bob.q7@example.net"]) != {}
    # the audit record keeps counts and no personal data
    done.refresh_from_db()
    assert done.contact_id is None
    assert done.deleted["events.Event"] >= 10_000
    assert done.deleted["contacts.Contact"] >= 3  # the contact and its two tombstones
    assert done.deleted["contacts.ContactMerge"] >= 2
    assert done.deleted["segments.WebhookDelivery"] == 1
    assert done.deleted["accounts.Notification"] == 2
    assert done.deleted["contacts.ImportRowError"] == 1
    assert Event.objects.count() == events_before - done.deleted["events.Event"]
    # their identifiers are on the suppression list as hashes only
    assert Suppression.objects.filter(value_hash=suppression.value_hash(EMAIL)).exists()

    # when they come back through /v1 with any identifier, nothing is stored, and the answer is 200
    stored = Event.objects.count()
    dropped = suppression.suppressed_count()
    send(
        client,
        source,
        page_payload("/again", anonymous_id=ANON_1),
        track_payload("Back", user_id=USER_ID),
        identify_payload({"email": EMAIL}, anonymous_id="a-new-device"),
        identify_payload(
            {}, anonymous_id="another-device", context={"traits": {"email": f"  {EMAIL.upper()} "}}
        ),
        page_payload("/x", anonymous_id=ANON_2.upper()),
    )
    assert Event.objects.count() == stored
    assert suppression.suppressed_count() == dropped + 5
    assert rows_mentioning(IDENTIFIERS) == {}

    # and running the task again changes nothing
    again = services.person_erase(request_id=request.pk)
    assert (again.status, again.deleted, again.finished_at) == (done.status, done.deleted, done.finished_at)


def test_an_event_from_someone_else_is_still_stored(client, source, admin_user):
    suppression.suppression_add(values=[EMAIL, ANON_1])
    before = Event.objects.count()
    send(
        client,
        source,
        page_payload("/p", anonymous_id="someone-else"),
        page_payload("/p", anonymous_id=ANON_1),
    )
    assert Event.objects.count() == before + 1


def test_a_resumed_erasure_finishes_what_a_crashed_run_left(client, source, admin_user):
    # given a run that died after deleting some of the events (simulated: the first batch only)
    person = build_person(client, source, admin=admin_user, events=300)
    request = services.person_erase_request(actor=admin_user, contact=person.contact)
    from events.services import erasure

    first = list(
        ContactEvent.objects.filter(contact=person.contact)
        .order_by("event_id")
        .values_list("event_id", flat=True)[:100]
    )
    erasure.events_delete(event_ids=first)
    ErasureRequest.objects.filter(pk=request.pk).update(
        status=ErasureStatus.FAILED, failure="OperationalError"
    )
    # when the task runs again
    done = services.person_erase(request_id=request.pk)
    # then it completes
    assert done.status == ErasureStatus.DONE and done.failure == ""
    assert rows_mentioning(IDENTIFIERS) == {}


def test_a_request_for_a_tombstone_erases_its_survivor(source, admin_user):
    winner = make_contact(email="w.q7@example.org")
    loser = make_contact(email=None, first_name="Old", merged_into=winner)
    request = services.person_erase_request(actor=admin_user, contact=loser)
    assert request.contact_id == winner.pk
    services.person_erase(request_id=request.pk)
    assert not Contact.objects.filter(pk__in=[winner.pk, loser.pk]).exists()


def test_asking_twice_while_pending_returns_the_same_request(admin_user):
    contact = make_contact(email="twice.q7@example.org")
    first = services.person_erase_request(actor=admin_user, contact=contact)
    second = services.person_erase_request(actor=admin_user, contact=contact)
    assert first.pk == second.pk


def test_erasing_a_contact_deleted_meanwhile_just_completes(admin_user):
    contact = make_contact(email="gone.q7@example.org")
    request = services.person_erase_request(actor=admin_user, contact=contact)
    Contact.objects.filter(pk=contact.pk).delete()
    assert services.person_erase(request_id=request.pk).status == ErasureStatus.DONE
    assert services.person_erase(request_id=10**9) is None


# --- the API, permissions, CSRF


def test_api_erase_is_admin_only_and_404s(client, admin_user, sales_user, marketing_user):
    contact = make_contact(email="api.q7@example.org")
    for user in (sales_user, marketing_user):
        client.force_login(user)
        response = client.post(f"/api/v1/contacts/{contact.pk}/erase/")
        assert response.status_code == 403, response.content
        assert "Admin" in response.json()["detail"]
    client.logout()
    assert client.post(f"/api/v1/contacts/{contact.pk}/erase/").status_code in (401, 403)
    client.force_login(admin_user)
    assert client.post("/api/v1/contacts/999999999/erase/").status_code == 404
    assert client.get("/api/v1/privacy/erasures/999999999/").status_code == 404
    assert not ErasureRequest.objects.exists()


def test_api_erase_answers_202_with_the_request_url(client, admin_user, sales_user):
    contact = make_contact(email="api2.q7@example.org")
    client.force_login(admin_user)
    response = client.post(f"/api/v1/contacts/{contact.pk}/erase/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["url"].endswith(f"/api/v1/privacy/erasures/{body['id']}/")
    assert response["Location"] == body["url"]
    assert client.get(f"/api/v1/privacy/erasures/{body['id']}/").json()["reference"] == body["reference"]
    client.force_login(sales_user)
    assert client.get(f"/api/v1/privacy/erasures/{body['id']}/").status_code == 403


def test_erase_page_needs_csrf_the_admin_and_the_typed_email(admin_user, sales_user):
    contact = make_contact(email="page.q7@example.org", first_name="Page", last_name="Person")
    url = f"/privacy/contact/{contact.pk}/erase/"
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)
    assert csrf_client.post(url, {"confirm": "page.q7@example.org"}).status_code == 403
    assert not ErasureRequest.objects.exists()

    client = Client()
    client.force_login(sales_user)
    assert client.get(url).status_code == 403
    assert client.post(url, {"confirm": "page.q7@example.org"}).status_code == 403
    client.force_login(admin_user)
    page_ = client.get(url)
    assert page_.status_code == 200 and b"cannot be undone" in page_.content
    wrong = client.post(url, {"confirm": "someone@else.com"})
    assert wrong.status_code == 400 and b"not this person" in wrong.content
    assert not ErasureRequest.objects.exists()
    ok = client.post(url, {"confirm": " Page Person "})
    request = ErasureRequest.objects.get()
    assert ok.status_code == 302 and ok["Location"] == request.get_absolute_url()
    assert client.get("/privacy/contact/999999999/erase/").status_code == 404
    log = client.get("/settings/erasures/")
    assert log.status_code == 200 and request.reference.encode() in log.content
    client.force_login(sales_user)
    assert client.get("/settings/erasures/").status_code == 403
    assert client.get(request.get_absolute_url()).status_code == 403


def test_contact_page_actions_by_role(client, admin_user, sales_user, marketing_user):
    other = make_user(username="other-rep")
    mine = make_contact(email="mine.q7@example.org", owner=sales_user)
    theirs = make_contact(email="theirs.q7@example.org", owner=other)
    client.force_login(admin_user)
    html = client.get(f"/privacy/contact/{theirs.pk}/actions/").content
    assert b"export-data" in html and b"erase-person" in html
    client.force_login(sales_user)
    html = client.get(f"/privacy/contact/{mine.pk}/actions/").content
    assert b"export-data" in html and b"erase-person" not in html
    html = client.get(f"/privacy/contact/{theirs.pk}/actions/").content
    assert b"export-data" not in html
    client.force_login(marketing_user)
    assert b"export-data" not in client.get(f"/privacy/contact/{mine.pk}/actions/").content


# --- export


def test_export_holds_everything_and_streams(client, source, admin_user, sales_user, marketing_user):
    person = build_person(client, source, admin=admin_user, events=1200)
    client.force_login(admin_user)
    response = client.get(f"/api/v1/contacts/{person.contact.pk}/export/")
    assert response.status_code == 200 and response.streaming
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(b"".join(response.streaming_content))
    assert data["contact"]["email"] == EMAIL
    assert len(data["merged_contacts"]) >= 2
    assert {i["value"] for i in data["identities"]} >= {EMAIL, USER_ID, ANON_1, ANON_2}
    assert len(data["events"]) == ContactEvent.objects.filter(contact=person.contact).count() >= 1200
    assert {e["anonymous_id"] for e in data["events"]} >= {ANON_1, ANON_2}
    assert [d["id"] for d in data["deals"]] == [person.deal_id]
    assert len(data["activities"]) == 1 and len(data["tasks"]) == 1
    assert [m["segment"] for m in data["segment_memberships"]] == ["Readers"]
    assert len(data["merges"]) == ContactMerge.objects.filter(winner=person.contact).count() >= 2
    # the HTML download is the same document
    page_download = client.get(f"/privacy/contact/{person.contact.pk}/export/")
    assert json.loads(b"".join(page_download.streaming_content))["contact"]["id"] == person.contact.pk
    # Sales may export contacts they may edit (this one is owned by the Admin who created it)
    client.force_login(sales_user)
    assert client.get(f"/api/v1/contacts/{person.contact.pk}/export/").status_code == 403
    unowned = make_contact(email="unowned.q7@example.org")
    assert client.get(f"/api/v1/contacts/{unowned.pk}/export/").status_code == 200
    client.force_login(marketing_user)
    assert client.get(f"/api/v1/contacts/{unowned.pk}/export/").status_code == 403
    assert client.get("/api/v1/contacts/999999999/export/").status_code == 404


# --- a real worker


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_runs_an_erasure_end_to_end(client, source, admin_user, celery_worker):
    send(
        client,
        source,
        identify_payload(
            {"email": "worker.q7@example.org"}, anonymous_id="anon-worker-q7", user_id="u-worker-q7"
        ),
    )
    send(client, source, *[page_payload(f"/p{i}", anonymous_id="anon-worker-q7") for i in range(20)])
    deadline = time.monotonic() + 60
    while queued_event_count() or not Contact.objects.filter(email="worker.q7@example.org").exists():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    contact = Contact.objects.get(email="worker.q7@example.org")
    client.force_login(admin_user)
    response = client.post(f"/api/v1/contacts/{contact.pk}/erase/")
    assert response.status_code == 202
    url = response.json()["url"]
    while (body := client.get(url).json())["status"] != "done":
        assert body["status"] != "failed" and time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    assert body["deleted"]["events.Event"] == 21
    assert rows_mentioning(["worker.q7@example.org", "u-worker-q7", "anon-worker-q7"]) == {}


def test_events_still_queued_for_stitching_go_too(client, source, admin_user):
    # given a person, and an event of theirs received but not yet stitched
    send(
        client,
        source,
        identify_payload(
            {"email": "queued.q7@example.org"}, anonymous_id="anon-queued-q7", user_id="u-queued-q7"
        ),
    )
    drain()
    contact = Contact.objects.get(email="queued.q7@example.org")
    send(client, source, page_payload("/late", anonymous_id="anon-queued-q7"))
    assert queued_event_count() == 1 and IngestBatch.objects.count() == 1
    # when they are erased
    request = services.person_erase_request(actor=admin_user, contact=contact)
    services.person_erase(request_id=request.pk)
    # then the queued event is gone with its queue row, and stitching has nothing to resurrect
    assert queued_event_count() == 0 and not IngestBatch.objects.exists()
    assert drain() == 0
    assert rows_mentioning(["queued.q7@example.org", "anon-queued-q7", "u-queued-q7"]) == {}


def test_later_messages_carrying_only_the_erased_phone_or_external_id_are_dropped(client, source, admin_user):
    # given a person known by a phone number and an external id, erased
    send(
        client,
        source,
        identify_payload(
            {"email": "phone.q7@example.org", "phone": "+1 415 555 0132"},
            anonymous_id="anon-phone-q7",
            context={"externalIds": [{"id": "Cus_Q7", "type": "Stripe", "collection": "users"}]},
        ),
    )
    drain()
    contact = Contact.objects.get(email="phone.q7@example.org")
    held = set(Identity.objects.filter(contact=contact).values_list("value", flat=True))
    assert {"+14155550132", "stripe:Cus_Q7"} <= held
    request = services.person_erase_request(actor=admin_user, contact=contact)
    assert services.person_erase(request_id=request.pk).status == ErasureStatus.DONE
    stored = Event.objects.count()
    # when they come back on new devices with only the phone (written another way) or the
    # external id (type in another case), in the traits or the context
    send(
        client,
        source,
        identify_payload({"phone": " +1 (415) 555-0132"}, anonymous_id="new-device-1"),
        identify_payload({}, anonymous_id="new-device-2", context={"traits": {"phone": "+14155550132"}}),
        track_payload(
            "Paid", anonymous_id="new-device-3", context={"externalIds": [stripe("Cus_Q7", "STRIPE")]}
        ),
        # and someone else with another number and another customer id
        identify_payload({"phone": "+1 415 555 0199"}, anonymous_id="someone-else"),
        track_payload("Paid", anonymous_id="someone-else", context={"externalIds": [stripe("Cus_Q7_other")]}),
    )
    # then only the other person's two events are stored
    new = Event.objects.order_by("id")[stored:]
    assert [(e.anonymous_id, e.type) for e in new] == [
        ("someone-else", "identify"),
        ("someone-else", "track"),
    ]


def stripe(customer: str, kind: str = "stripe") -> dict:
    return {"id": customer, "type": kind, "collection": "users"}


def test_a_failed_erasure_is_retried_from_its_page_and_resumes(
    client, source, admin_user, sales_user, django_capture_on_commit_callbacks
):
    # given an erasure whose run failed after deleting part of the person's events
    person = build_person(client, source, admin=admin_user, events=200)
    request = services.person_erase_request(actor=admin_user, contact=person.contact)
    from events.services import erasure

    first = list(ContactEvent.objects.filter(contact=person.contact).values_list("event_id", flat=True)[:50])
    erasure.events_delete(event_ids=first)
    ErasureRequest.objects.filter(pk=request.pk).update(
        status=ErasureStatus.FAILED, failure="OperationalError"
    )
    # its page says so and offers a retry to the Admin
    client.force_login(admin_user)
    html = client.get(request.get_absolute_url()).content.decode()
    assert "Failed (OperationalError)" in html and 'data-testid="erasure-retry"' in html
    # a Sales rep may not retry it
    client.force_login(sales_user)
    assert client.post(f"/settings/erasures/{request.pk}/retry/").status_code in (403, 404)
    assert ErasureRequest.objects.get(pk=request.pk).status == ErasureStatus.FAILED
    # when the Admin presses Retry
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/settings/erasures/{request.pk}/retry/", follow=True)
    # then it is queued again (one task sent on commit), and the page says so, without the button
    assert len(queued) == 1
    html = response.content.decode()
    assert "is queued again" in html and 'data-testid="erasure-retry"' not in html
    assert ErasureRequest.objects.get(pk=request.pk).status == ErasureStatus.QUEUED
    # and the task's run finishes what the failed one left
    done = services.person_erase(request_id=request.pk)
    assert done.status == ErasureStatus.DONE and done.failure == ""
    assert rows_mentioning(IDENTIFIERS) == {}
    # a second press (the button was stale) changes nothing and says why
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/settings/erasures/{request.pk}/retry/", follow=True)
    assert queued == [] and "nothing to retry" in response.content.decode()
    assert ErasureRequest.objects.get(pk=request.pk).status == ErasureStatus.DONE
