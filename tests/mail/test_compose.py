"""Compose and reply from the contact, deal and thread pages, through a real SMTP server."""

import datetime as dt
import email
import email.policy

import pytest
from django.urls import reverse
from django.utils import timezone

from mail import tasks as mail_tasks
from mail.models import EmailLink, EmailTemplate, OutgoingEmail
from mail.services import sending
from tests.factories import make_contact, make_pipeline, make_user
from tests.factories.mail import make_link, make_mailbox, make_message, make_sending_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep(client):
    user = make_user(username="rita", email="rita@ourco.test", first_name="Rita", last_name="Rep")
    client.force_login(user)
    return user


@pytest.fixture
def mailbox(rep, smtp_server, monkeypatch, django_capture_on_commit_callbacks):
    # The task after commit delivers right here (the real-worker path is the browser test's).
    monkeypatch.setattr(
        mail_tasks.send_deliver_task, "delay", lambda send_id: sending.send_deliver(send_id=send_id)
    )
    return make_sending_mailbox(rep, smtp_server, email_address="rita@ourco.test")


@pytest.fixture
def ada():
    return make_contact(first_name="Ada", last_name="Byron", email="ada@acme.test")


def received(smtp_server, n=0):
    return email.message_from_bytes(smtp_server.received[n].raw, policy=email.policy.default)


def post(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("mail:compose"), data)


def test_the_contact_page_composes_to_the_contact_and_the_sent_email_lands_on_its_timeline(
    client, rep, mailbox, ada, smtp_server, django_capture_on_commit_callbacks
):
    page = client.get(reverse("contacts:contact_detail", args=[ada.pk])).content.decode()
    assert f'href="{reverse("mail:compose")}?contact={ada.pk}"' in page
    form = client.get(reverse("mail:compose"), {"contact": ada.pk}).content.decode()
    assert 'value="ada@acme.test"' in form and "rita@ourco.test" in form

    response = post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="ada@acme.test", contact=ada.pk,
        subject="Hi {{ contact.first_name }}",
        body="Hello {{ contact.first_name }},\nthe quote is attached.\n{{ sender.first_name }}",
    )  # fmt: skip

    assert response.status_code == 302 and response["Location"] == reverse(
        "contacts:contact_detail", args=[ada.pk]
    )
    got = received(smtp_server)
    assert got["Subject"] == "Hi Ada" and got["To"] == "ada@acme.test"
    assert (
        got.get_body(("plain",)).get_content().replace("\r\n", "\n").strip()
        == "Hello Ada,\nthe quote is attached.\nRita"
    )
    timeline = client.get(reverse("identity:timeline", args=[ada.pk])).content.decode()
    assert "Hi Ada" in timeline and "Sent from the CRM" in timeline


def test_a_template_fills_the_form_and_a_missing_field_is_named_and_stops_the_send(
    client, rep, mailbox, ada, smtp_server, django_capture_on_commit_callbacks
):
    template = EmailTemplate.objects.create(
        name="Follow-up", owner=rep, subject="Following up, {{ contact.first_name }}",
        body="Hi {{ contact.first_name }}, call me on {{ contact.phone }}.",
    )  # fmt: skip
    form = client.get(reverse("mail:compose"), {"contact": ada.pk, "template": template.pk}).content.decode()
    assert 'value="Following up, Ada"' in form
    assert "contact.phone" in form and 'data-testid="compose-missing"' in form
    assert "{{ contact.phone }}" in form  # left as written, for the rep to fix

    response = post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="ada@acme.test", contact=ada.pk,
        template=template.pk, subject="Following up, Ada", body="Hi Ada, call me on {{ contact.phone }}.",
    )  # fmt: skip
    assert response.status_code == 422
    assert "contact.phone" in response.content.decode() and smtp_server.received == []
    assert not OutgoingEmail.objects.exists()


def test_preview_shows_the_filled_text_escaped_and_sends_nothing(
    client, rep, mailbox, smtp_server, django_capture_on_commit_callbacks
):
    eve = make_contact(first_name="<script>alert(1)</script>", email="eve@acme.test")
    response = post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="eve@acme.test", contact=eve.pk,
        subject="For {{ contact.first_name }}", body="Dear {{ contact.first_name }}", action="preview",
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="compose-preview-card"' in page
    assert "Dear &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert smtp_server.received == [] and not OutgoingEmail.objects.exists()


def test_from_a_deal_the_email_goes_to_its_contact_and_links_to_the_deal(
    client, rep, mailbox, ada, smtp_server, django_capture_on_commit_callbacks
):
    pipeline = make_pipeline()
    deal = pipeline.stages.first().deals.create(title="Big deal", pipeline=pipeline, contact=ada, owner=rep)
    form = client.get(reverse("mail:compose"), {"deal": deal.pk}).content.decode()
    assert 'value="ada@acme.test"' in form and "Big deal" in form
    response = post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="ada@acme.test", deal=deal.pk,
        contact=ada.pk, subject="About {{ deal.name }}", body="Numbers inside.",
    )  # fmt: skip
    assert response["Location"] == reverse("pipeline:deal_detail", args=[deal.pk])
    assert received(smtp_server)["Subject"] == "About Big deal"
    assert EmailLink.objects.filter(deal=deal, reason="sent").count() == 1


def test_a_reply_quotes_threads_and_goes_to_the_sender(
    client, rep, mailbox, ada, smtp_server, django_capture_on_commit_callbacks
):
    incoming = make_message(
        mailbox, sender=("ada@acme.test", "Ada Byron"), to=["rita@ourco.test"], subject="Pricing?",
        text_body="What does it cost?", header_message_id="<q1@acme.test>",
    )  # fmt: skip
    make_link(incoming, contact=ada)
    thread = client.get(reverse("mail:thread", args=[incoming.thread_id])).content.decode()
    assert f"?reply_to={incoming.pk}" in thread
    form = client.get(reverse("mail:compose"), {"reply_to": incoming.pk}).content.decode()
    assert (
        'value="ada@acme.test"' in form
        and 'value="Re: Pricing?"' in form
        and "&gt; What does it cost?" in form
    )

    post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="ada@acme.test",
        reply_to=incoming.pk, subject="Re: Pricing?", body="Ten dollars.",
    )  # fmt: skip
    got = received(smtp_server)
    assert got["In-Reply-To"] == "<q1@acme.test>" and "<q1@acme.test>" in got["References"]


def test_send_later_is_scheduled_listed_and_cancellable(
    client, rep, mailbox, ada, smtp_server, django_capture_on_commit_callbacks
):
    later = timezone.localtime(timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="ada@acme.test", contact=ada.pk,
        subject="Tomorrow", body="See you", send_at=later,
    )  # fmt: skip
    assert response.status_code == 302 and smtp_server.received == []
    send = OutgoingEmail.objects.get()
    assert send.status == "scheduled" and send.send_at > timezone.now() + dt.timedelta(hours=23)
    page = client.get(reverse("mail:compose")).content.decode()
    assert 'data-testid="scheduled-sends"' in page and "Tomorrow" in page
    client.post(reverse("mail:send_cancel", args=[send.pk]))
    send.refresh_from_db()
    assert send.status == "canceled"


def test_bad_input_is_a_form_error_and_another_users_mail_cannot_be_replied_to(
    client, rep, mailbox, smtp_server, django_capture_on_commit_callbacks
):
    response = post(
        client,
        django_capture_on_commit_callbacks,
        mailbox=mailbox.pk,
        to="not an address",
        subject="x",
        body="y",
    )
    assert response.status_code == 422 and 'data-testid="compose-field-error-to"' in response.content.decode()
    past = post(
        client, django_capture_on_commit_callbacks, mailbox=mailbox.pk, to="a@acme.test", subject="x",
        body="y", send_at="2020-01-01T10:00",
    )  # fmt: skip
    assert past.status_code == 422 and "That time has passed" in past.content.decode()
    other = make_user(username="olga", email="olga@ourco.test")
    private = make_message(make_mailbox(other), sender="x@elsewhere.test", to=["olga@ourco.test"])
    assert client.get(reverse("mail:compose"), {"reply_to": private.pk}).status_code == 404
    theirs = make_mailbox(other, email_address="olga2@ourco.test", smtp_host="127.0.0.1")
    refused = post(
        client, django_capture_on_commit_callbacks, mailbox=theirs.pk, to="a@acme.test", subject="x", body="y"
    )
    assert refused.status_code == 422 and smtp_server.received == []  # not a choice for this user


def test_without_a_sending_mailbox_the_page_says_how_to_connect_one(client, rep):
    page = client.get(reverse("mail:compose")).content.decode()
    assert 'data-testid="compose-no-mailbox"' in page and reverse("mail:mailboxes") in page
