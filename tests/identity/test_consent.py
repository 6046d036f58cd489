"""The person's consent state on the contact: the newest event's, by event timestamp."""

import pytest
from django.urls import reverse

from contacts.models import Contact
from contacts.services.merging import contact_merge
from tests.factories import identify_payload, make_admin, make_contact, page_payload, send, track_payload
from tests.identity.helpers import drain, live

pytestmark = pytest.mark.django_db


def with_consent(message: dict, gpc: bool | None = None, **preferences) -> dict:
    message["context"] = {"consent": {"categoryPreferences": preferences}}
    if gpc is not None:
        message["context"]["gpc"] = gpc
    return message


def test_the_newest_event_by_timestamp_sets_the_consent_even_from_out_of_order_batches(client, source):
    # given a visitor who granted marketing at minute 10
    send(client, source, with_consent(track_payload("Accepted", anonymous_id="a1", at=10), marketing=True))
    drain()
    (contact,) = live()
    assert contact.consent["categoryPreferences"] == {"marketing": True}
    assert contact.consent["gpc"] is False
    # when a late batch arrives holding an older choice (minute 5: refused), and an event that
    # says nothing about consent (minute 20)
    send(
        client,
        source,
        with_consent(page_payload("/pricing", anonymous_id="a1", at=5), marketing=False),
        page_payload("/docs", anonymous_id="a1", at=20),
    )
    drain()
    # then the newer choice stands
    contact.refresh_from_db()
    assert contact.consent["categoryPreferences"] == {"marketing": True}
    assert contact.consent["timestamp"].startswith("2026-11-02T09:10")
    # when a newer event withdraws it, in a batch where an older one comes after it
    send(
        client,
        source,
        with_consent(track_payload("Withdrew", anonymous_id="a1", at=30), gpc=True, marketing=False),
        with_consent(track_payload("Old", anonymous_id="a1", at=15), marketing=True),
    )
    drain()
    contact.refresh_from_db()
    assert contact.consent["categoryPreferences"] == {"marketing": False}
    assert contact.consent["gpc"] is True


def test_only_boolean_categories_are_kept(client, source):
    message = identify_payload({"email": "ada@example.com"}, user_id="u1", at=1)
    message["context"] = {
        "consent": {"categoryPreferences": {"marketing": "yes", "analytics": True, "": True, "x" * 101: True}}
    }
    send(client, source, message, with_consent(page_payload("/", user_id="u2", at=2), marketing=[1]))
    drain()
    by_user = {c.traits.get("email", "u2"): c for c in live()}
    assert by_user["ada@example.com"].consent["categoryPreferences"] == {"analytics": True}
    assert by_user["u2"].consent["categoryPreferences"] == {}


def test_a_merge_keeps_the_newer_consent(client, source):
    # given two people: a CRM contact whose tracked consent is older, and a visitor's newer one
    send(client, source, with_consent(page_payload("/", anonymous_id="old", at=1), marketing=True))
    send(client, source, with_consent(page_payload("/", anonymous_id="new", at=9), marketing=False))
    drain()
    older, newer = live()
    # when an Admin merges them, the older record winning
    winner = contact_merge(winner=older, loser=newer, field_choices={}, actor=make_admin())
    # then the winner carries the newer choice
    assert Contact.objects.get(pk=winner.pk).consent["categoryPreferences"] == {"marketing": False}


def test_the_contact_page_shows_the_consent_state(client):
    contact = make_contact(email="c@x.io")
    Contact.objects.filter(pk=contact.pk).update(
        consent={
            "categoryPreferences": {"marketing": True, "analytics": False},
            "gpc": True,
            "timestamp": "2026-11-02T09:10:00+00:00",
        }
    )
    client.force_login(make_admin())
    html = client.get(reverse("contacts:contact_detail", args=[contact.pk])).content.decode()
    assert 'data-category="marketing" data-granted="true"' in html
    assert 'data-category="analytics" data-granted="false"' in html
    assert ">GPC<" in html and "as of 2026-11-02" in html


def test_rebuild_identity_replays_the_same_consent(client, source):
    from io import StringIO

    from django.core.management import call_command

    send(
        client,
        source,
        with_consent(identify_payload({"email": "ada@example.com"}, user_id="u1", at=9), marketing=False),
        with_consent(track_payload("Old", user_id="u1", at=3), marketing=True),
    )
    drain()
    (before,) = live()
    # a hand-edited state is derived data too: the rebuild resets it and replays the events
    Contact.objects.filter(pk=before.pk).update(consent={"categoryPreferences": {"x": True}})
    call_command("rebuild_identity", stdout=StringIO())
    (after,) = live()
    assert after.consent == before.consent
    assert after.consent["categoryPreferences"] == {"marketing": False}


def test_consent_from_events_moves_people_in_and_out_of_a_segment_in_realtime(client, source):
    from segments import services as segment_services

    # given a segment of people who viewed pricing, requiring marketing consent
    segment = segment_services.segment_create(
        actor=None,
        name="Pricing, marketing OK",
        definition={"op": "and", "conditions": [{"type": "page"}], "require_consent": "marketing"},
    )
    segment_services.segment_refresh(segment=segment)

    def members() -> set[int]:
        return set(segment.memberships.filter(exited_at__isnull=True).values_list("contact_id", flat=True))

    # when a visitor views pricing without saying anything about consent: not a member
    send(client, source, page_payload("/pricing", anonymous_id="a1", at=1))
    drain()
    segment_services.profile_updates_process()
    assert members() == set()
    # when they grant marketing: the realtime path lets them in
    send(client, source, with_consent(track_payload("Consented", anonymous_id="a1", at=2), marketing=True))
    drain()
    segment_services.profile_updates_process()
    (person,) = live()
    assert members() == {person.pk}
    # when they withdraw it: out again
    send(client, source, with_consent(track_payload("Withdrew", anonymous_id="a1", at=3), marketing=False))
    drain()
    segment_services.profile_updates_process()
    assert members() == set()
