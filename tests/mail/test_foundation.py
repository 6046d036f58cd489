"""The pieces every part of rep email stands on: secrets at rest, and email activity as events on
the contact through the one ingestion path."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from contacts.models import Contact
from events.models import Event
from identity.models import ContactEvent, DailyActivity
from mail import crypto
from mail.services import EmailEvent, email_events_record
from tests.factories import make_contact
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def test_a_secret_is_stored_encrypted_and_reads_back():
    token = crypto.secret_encrypt("app-password-123")
    assert "app-password-123" not in token
    assert crypto.secret_decrypt(token) == "app-password-123"


def test_a_rotated_key_still_reads_old_secrets_and_rotation_moves_them_to_the_new_key():
    with override_settings(MAIL_ENCRYPTION_KEYS=["old passphrase"]):
        old = crypto.secret_encrypt("s3cret")
    with override_settings(MAIL_ENCRYPTION_KEYS=["new passphrase", "old passphrase"]):
        assert crypto.secret_decrypt(old) == "s3cret"
        rotated = crypto.secret_rotate(old)
    with override_settings(MAIL_ENCRYPTION_KEYS=["new passphrase"]):
        assert crypto.secret_decrypt(rotated) == "s3cret"
        with pytest.raises(crypto.SecretUnreadable):
            crypto.secret_decrypt(old)


def test_an_email_event_lands_on_the_contact_through_the_stitching_worker():
    # given a CRM contact with no web identity at all
    contact = make_contact(email="ada@example.com")
    # when an email sent to her is recorded, twice (a retried task)
    event = EmailEvent(
        contact_id=contact.pk, name="Email Sent", key="send:1", timestamp=AT, properties={"subject": "Hi"}
    )
    assert email_events_record(events=[event]) == 1
    assert email_events_record(events=[event]) == 0
    drain()
    # then the log holds one event, on her record, counted in her rollups; no new person exists
    stored = Event.objects.get(event="Email Sent")
    assert stored.properties == {"subject": "Hi"} and stored.source.name == "CRM email"
    assert list(ContactEvent.objects.values_list("contact_id", flat=True)) == [contact.pk]
    assert DailyActivity.objects.filter(contact=contact, key="Email Sent", count=1).exists()
    assert Contact.objects.count() == 1


def test_an_email_event_for_a_merged_contact_lands_on_the_survivor():
    survivor = make_contact(email="ada@example.com")
    tombstone = make_contact(email="ada.old@example.com", merged_into=survivor)
    email_events_record(
        events=[EmailEvent(contact_id=tombstone.pk, name="Email Opened", key="open:1:1", timestamp=AT)]
    )
    drain()
    assert list(ContactEvent.objects.values_list("contact_id", flat=True)) == [survivor.pk]
    assert Contact.objects.filter(merged_into=None).count() == 1


def test_a_name_outside_the_email_events_is_refused():
    contact = make_contact(email="ada@example.com")
    with pytest.raises(ValueError, match="not an email event"):
        email_events_record(
            events=[EmailEvent(contact_id=contact.pk, name="Page Viewed", key="x", timestamp=AT)]
        )
    assert not Event.objects.exists()


def test_a_rebuilt_identity_graph_puts_email_events_back_on_the_same_contact():
    # given email events on a CRM contact, stitched
    contact = make_contact(email="ada@example.com")
    email_events_record(
        events=[
            EmailEvent(contact_id=contact.pk, name="Email Sent", key="send:9", timestamp=AT),
            EmailEvent(contact_id=contact.pk, name="Email Opened", key="open:9:1", timestamp=AT),
        ]
    )
    drain()
    # when the graph is rebuilt from the event log
    call_command("rebuild_identity", stdout=StringIO())
    # then both events are on her again, and no anonymous visitor was made of her reference
    assert sorted(ContactEvent.objects.values_list("contact_id", flat=True)) == [contact.pk, contact.pk]
    assert Contact.objects.count() == 1
