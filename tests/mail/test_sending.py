"""Sending from the CRM through a real SMTP server (aiosmtpd): the message as received, its record
on the timelines, the `Email Sent` event, the daily cap, retries and failures, and a send that
goes once however often (and however concurrently) delivery runs."""

import datetime as dt
import email
import email.policy
import threading

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from core.errors import DomainError, Forbidden
from events.models import Event
from identity.models import ContactEvent
from mail import crypto
from mail.models import (
    Direction,
    EmailLink,
    EmailMessage,
    LinkReason,
    Mailbox,
    MailboxMessage,
    OutgoingEmail,
    SendStatus,
    TrackedLink,
)
from mail.services import sending
from mail.services.sending import SendCapReached, email_send, send_cancel, send_deliver, sends_due
from tests.factories import make_contact, make_deal, make_message, make_user
from tests.factories.mail import make_sending_mailbox
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db

PUBLIC = "https://crm.example.test"


@pytest.fixture
def rep():
    return make_user(username="rita", email="rita@ourco.test", first_name="Rita", last_name="Rep")


@pytest.fixture
def mailbox(rep, smtp_server):
    return make_sending_mailbox(rep, smtp_server, email_address="rita@ourco.test")


def received(smtp_server, n: int = 0) -> email.message.EmailMessage:
    return email.message_from_bytes(smtp_server.received[n].raw, policy=email.policy.default)


def parts(message) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}


def send_now(rep, mailbox, **kwargs) -> OutgoingEmail:
    kwargs.setdefault("to", ["Ada Lovelace <ada@acme.test>"])
    kwargs.setdefault("subject", "Proposal")
    kwargs.setdefault("body_text", "Hi Ada,\n\nThe proposal: https://acme.example/proposal\n")
    return email_send(sender=rep, mailbox=mailbox, **kwargs)


def test_a_send_arrives_with_its_headers_text_and_html_and_lands_on_the_contact_and_deal(
    rep, mailbox, smtp_server
):
    # given a contact with a deal
    ada = make_contact(email="ada@acme.test", first_name="Ada")
    deal = make_deal(title="Pilot", contact=ada)
    # when the rep sends her an email from the deal
    send = send_now(
        rep,
        mailbox,
        cc=["boss@acme.test"],
        bcc=["archive@ourco.test"],
        body_html='<p>Hi Ada, the <a href="https://acme.example/proposal">proposal</a>.</p>',
        body_text="",
        contact=ada,
        deal=deal,
    )
    result = send_deliver(send_id=send.pk)

    # then the server got one message, to every recipient, Bcc in the envelope only
    assert result.status == SendStatus.SENT, result.error
    [got] = smtp_server.received
    assert got.mail_from == "rita@ourco.test"
    assert sorted(got.rcpt_tos) == ["ada@acme.test", "archive@ourco.test", "boss@acme.test"]
    raw = received(smtp_server)
    assert raw["Message-ID"] == send.header_message_id
    assert send.header_message_id.endswith("@ourco.test>")
    assert raw["From"] == "Rita Rep <rita@ourco.test>"
    assert raw["To"] == "Ada Lovelace <ada@acme.test>" and raw["Cc"] == "boss@acme.test"
    assert raw["Bcc"] is None and raw["In-Reply-To"] is None
    body = parts(raw)
    assert "the proposal (https://acme.example/proposal)." in body["text/plain"]
    assert 'href="https://acme.example/proposal"' in body["text/html"]
    assert "/t/o/" not in body["text/html"]  # not tracked: no pixel, links as written
    # and the sent message is stored: the mailbox's outgoing copy, on the contact and the deal
    send.refresh_from_db()
    assert send.status == SendStatus.SENT and send.sent_at is not None and send.attempts == 1
    message = send.message
    assert message.header_message_id == send.header_message_id and message.subject == "Proposal"
    copy = MailboxMessage.objects.get(message=message)
    assert copy.mailbox == mailbox and copy.direction == Direction.OUTGOING
    assert copy.triage == MailboxMessage.Triage.LINKED
    links = set(EmailLink.objects.filter(message=message).values_list("contact_id", "deal_id", "reason"))
    assert (ada.pk, None, LinkReason.SENT) in links and (None, deal.pk, LinkReason.SENT) in links
    # and an Email Sent event on her record, through the event log
    event = Event.objects.get(event="Email Sent")
    assert event.source.name == "CRM email" and event.message_id == f"mail:send:{send.pk}"
    assert event.properties["send_id"] == send.pk and event.properties["deal_id"] == deal.pk
    drain()
    assert list(ContactEvent.objects.filter(event=event).values_list("contact_id", flat=True)) == [ada.pk]


def test_a_reply_threads_in_the_customers_client_and_in_the_crm(rep, mailbox, smtp_server):
    ada = make_contact(email="ada@acme.test")
    parent = make_message(
        mailbox,
        sender="ada@acme.test",
        to=["rita@ourco.test"],
        subject="Question",
        header_message_id="<q2@acme.test>",
        message_key="q2@acme.test",
        in_reply_to="<q1@acme.test>",
        references=["<q0@acme.test>", "<q1@acme.test>"],
    )
    send = send_now(rep, mailbox, subject="Re: Question", reply_to_message=parent, contact=ada)
    assert send_deliver(send_id=send.pk).status == SendStatus.SENT

    raw = received(smtp_server)
    assert raw["In-Reply-To"] == "<q2@acme.test>"
    assert raw["References"] == "<q0@acme.test> <q1@acme.test> <q2@acme.test>"
    send.refresh_from_db()
    assert send.message.thread_id == parent.thread_id
    assert send.message.in_reply_to == "<q2@acme.test>"


def test_a_tracked_send_has_a_pixel_and_rewritten_links_stored_for_the_redirect(rep, mailbox, smtp_server):
    ada = make_contact(email="ada@acme.test")
    with override_settings(CDP_PUBLIC_HOST=PUBLIC):
        send = send_now(
            rep,
            mailbox,
            contact=ada,
            track=True,
            body_html=(
                '<p><a href="https://acme.example/a?x=1&amp;y=2">A</a> '
                '<a href="mailto:rita@ourco.test">me</a> <a href="http://acme.example/b">B</a></p>'
            ),
        )
        send_deliver(send_id=send.pk)

    html = parts(received(smtp_server))["text/html"]
    token = send.tracking_token
    assert f'<img src="{PUBLIC}/t/o/{token}.gif" width="1" height="1"' in html
    assert f'href="{PUBLIC}/t/c/{token}/1"' in html and f'href="{PUBLIC}/t/c/{token}/2"' in html
    assert 'href="mailto:rita@ourco.test"' in html  # only http(s) links are tracked
    assert "acme.example" not in html
    assert list(TrackedLink.objects.filter(send=send).order_by("position").values_list("url", flat=True)) == [
        "https://acme.example/a?x=1&y=2",
        "http://acme.example/b",
    ]
    # the stored copy (what the CRM shows) has the links as written and no pixel
    send.refresh_from_db()
    assert "/t/" not in send.message.html_body and "https://acme.example/a" in send.message.html_body


def test_a_text_only_tracked_send_gets_an_html_part_for_its_pixel(rep, mailbox, smtp_server):
    with override_settings(CDP_PUBLIC_HOST=PUBLIC):
        send = send_now(rep, mailbox, track=True, body_text="Hi <Ada>,\nsee https://acme.example/x")
        send_deliver(send_id=send.pk)
    body = parts(received(smtp_server))
    assert body["text/plain"].startswith("Hi <Ada>,")
    assert "Hi &lt;Ada&gt;" in body["text/html"]
    assert f"{PUBLIC}/t/c/{send.tracking_token}/1" in body["text/html"]


def test_tracking_without_a_public_address_is_refused_in_words(rep, mailbox):
    with override_settings(CDP_PUBLIC_HOST=""), pytest.raises(DomainError, match="CDP_PUBLIC_HOST"):
        send_now(rep, mailbox, track=True)


def test_the_mailbox_default_decides_tracking_when_the_send_does_not_say(rep, mailbox, smtp_server):
    Mailbox.objects.filter(pk=mailbox.pk).update(track_by_default=True)
    mailbox.refresh_from_db()
    with override_settings(CDP_PUBLIC_HOST=PUBLIC):
        assert send_now(rep, mailbox).track is True
        assert send_now(rep, mailbox, track=False).track is False


def test_addresses_subject_and_mailbox_are_checked(rep, mailbox):
    with pytest.raises(DomainError) as bad:
        send_now(rep, mailbox, to=["ada@acme.test", "not an address"])
    assert "not an address" in bad.value.fields["to"]
    with pytest.raises(DomainError):
        send_now(rep, mailbox, to=["ada@acme.test\r\nBcc: everyone@acme.test"])
    with pytest.raises(DomainError):
        send_now(rep, mailbox, to=[])
    # a subject is one header line whatever is pasted into it
    assert send_now(rep, mailbox, subject="Hi\r\nBcc: x@evil.test").subject == "Hi Bcc: x@evil.test"
    other = make_user(username="olga", email="olga@ourco.test")
    with pytest.raises(Forbidden):
        email_send(sender=other, mailbox=mailbox, to=["ada@acme.test"], subject="Hi", body_text="x")


def test_the_daily_cap_counts_the_last_24_hours_and_says_so(rep, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(daily_send_cap=2)
    mailbox.refresh_from_db()
    now = timezone.now()
    old = send_now(rep, mailbox)
    OutgoingEmail.objects.filter(pk=old.pk).update(
        status=SendStatus.SENT, sent_at=now - dt.timedelta(hours=25)
    )
    recent = send_now(rep, mailbox)
    OutgoingEmail.objects.filter(pk=recent.pk).update(
        status=SendStatus.SENT, sent_at=now - dt.timedelta(hours=23)
    )
    send_now(rep, mailbox)  # queued now: counts too
    with pytest.raises(SendCapReached, match="limit of 2 emails in 24 hours"):
        send_now(rep, mailbox)
    # a send scheduled for after the window is fine
    assert send_now(rep, mailbox, send_at=now + dt.timedelta(days=2)).status == SendStatus.SCHEDULED


def test_a_temporary_refusal_is_retried_with_backoff_then_sent(rep, mailbox, smtp_server):
    smtp_server.reject_next("451 4.3.0 Greylisted, try again later")
    send = send_now(rep, mailbox)

    first = send_deliver(send_id=send.pk)

    send.refresh_from_db()
    assert first.status == SendStatus.SCHEDULED and send.status == SendStatus.SCHEDULED
    assert send.attempts == 1 and "451" in send.error and "Greylisted" in send.error
    assert send.send_at > timezone.now() + dt.timedelta(seconds=50)  # backed off a minute
    assert send.pk not in sends_due()
    assert send_deliver(send_id=send.pk).status == ""  # not due yet: nothing happens
    assert smtp_server.received == []
    # when it falls due it goes
    assert send.pk in sends_due(now=send.send_at)
    OutgoingEmail.objects.filter(pk=send.pk).update(send_at=timezone.now())
    assert send_deliver(send_id=send.pk).status == SendStatus.SENT
    send.refresh_from_db()
    assert send.attempts == 2 and len(smtp_server.received) == 1


def test_temporary_refusals_give_up_after_the_last_attempt(rep, mailbox, smtp_server, monkeypatch):
    monkeypatch.setattr(sending, "MAX_ATTEMPTS", 2)
    smtp_server.reject_next("451 4.3.0 Try later", "451 4.3.0 Try later")
    send = send_now(rep, mailbox)
    send_deliver(send_id=send.pk)
    OutgoingEmail.objects.filter(pk=send.pk).update(send_at=timezone.now())
    assert send_deliver(send_id=send.pk).status == SendStatus.FAILED
    send.refresh_from_db()
    assert send.error.startswith("Gave up after 2 attempts")


def test_a_permanent_refusal_fails_at_once_with_the_servers_words(rep, mailbox, smtp_server):
    smtp_server.reject_next("550 5.1.1 No such user here")
    send = send_now(rep, mailbox)
    assert send_deliver(send_id=send.pk).status == SendStatus.FAILED
    send.refresh_from_db()
    assert send.status == SendStatus.FAILED and "550" in send.error and "No such user" in send.error
    assert send.message is None and not Event.objects.filter(event="Email Sent").exists()


def test_a_refused_password_fails_without_retrying(rep, mailbox, smtp_server):
    Mailbox.objects.filter(pk=mailbox.pk).update(secret_encrypted=crypto.secret_encrypt("wrong"))
    send = send_now(rep, mailbox)
    assert send_deliver(send_id=send.pk).status == SendStatus.FAILED
    send.refresh_from_db()
    assert "refused the username or password" in send.error and "wrong" not in send.error


def test_a_server_that_is_not_there_is_a_temporary_failure(rep, mailbox):
    from tests.mail.imap_server import free_port

    Mailbox.objects.filter(pk=mailbox.pk).update(smtp_port=free_port())
    send = send_now(rep, mailbox)
    assert send_deliver(send_id=send.pk).status == SendStatus.SCHEDULED
    send.refresh_from_db()
    assert "refused" in send.error


def test_a_due_send_is_queued_for_delivery_after_commit(rep, mailbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        send_now(rep, mailbox)
    assert len(queued) == 1
    with django_capture_on_commit_callbacks(execute=False) as queued:
        send_now(rep, mailbox, send_at=timezone.now() + dt.timedelta(hours=1))
    assert queued == []  # the beat task picks it up when due


def test_delivering_twice_sends_once(rep, mailbox, smtp_server):
    ada = make_contact(email="ada@acme.test")
    send = send_now(rep, mailbox, contact=ada)
    assert send_deliver(send_id=send.pk).status == SendStatus.SENT
    assert send_deliver(send_id=send.pk).status == ""
    assert len(smtp_server.received) == 1
    assert EmailMessage.objects.count() == 1 and Event.objects.filter(event="Email Sent").count() == 1


def test_without_a_contact_the_event_goes_on_each_known_recipient(rep, mailbox, smtp_server):
    ada = make_contact(email="ada@acme.test")
    bob = make_contact(email="bob@acme.test")
    send = send_now(rep, mailbox, to=["ada@acme.test", "bob@acme.test", "new@acme.test"])
    send_deliver(send_id=send.pk)
    events = Event.objects.filter(event="Email Sent")
    assert sorted(events.values_list("message_id", flat=True)) == [
        f"mail:send:{send.pk}:{ada.pk}",
        f"mail:send:{send.pk}:{bob.pk}",
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_send_once(rep, mailbox, smtp_server, monkeypatch):
    from mail import tasks as send_tasks

    monkeypatch.setattr(send_tasks.send_deliver_task, "delay", lambda *args: None)  # no broker here
    # given a due send, and two workers that pick it up at the same instant
    send = send_now(rep, mailbox)
    barrier = threading.Barrier(2)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(send_deliver(send_id=send.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly one delivered it
    assert sorted(results) == ["", SendStatus.SENT]
    assert len(smtp_server.received) == 1
    assert OutgoingEmail.objects.get(pk=send.pk).attempts == 1


def test_a_send_a_dead_worker_left_sending_is_failed_not_resent(rep, mailbox, smtp_server):
    send = send_now(rep, mailbox)
    OutgoingEmail.objects.filter(pk=send.pk).update(
        status=SendStatus.SENDING, send_at=timezone.now() - dt.timedelta(minutes=20)
    )
    assert sending.sends_stale_fail() == 1
    send.refresh_from_db()
    assert send.status == SendStatus.FAILED and "Check your Sent folder" in send.error
    assert send_deliver(send_id=send.pk).status == "" and smtp_server.received == []


def test_a_scheduled_send_waits_and_a_canceled_one_never_goes(rep, mailbox, smtp_server):
    later = send_now(rep, mailbox, send_at=timezone.now() + dt.timedelta(hours=1))
    assert later.pk not in sends_due() and send_deliver(send_id=later.pk).status == ""
    canceled = send_now(rep, mailbox)
    send_cancel(send=canceled, actor=rep)
    assert send_deliver(send_id=canceled.pk).status == ""
    assert smtp_server.received == []
    other = make_user(username="olga")
    with pytest.raises(Forbidden):
        send_cancel(send=later, actor=other)


def test_scheduled_sends_falling_due_over_the_cap_wait_for_the_window(rep, mailbox, smtp_server):
    # given two sends scheduled together, and a mailbox whose cap leaves room for one
    later = timezone.now() + dt.timedelta(hours=1)
    first, second = send_now(rep, mailbox, send_at=later), send_now(rep, mailbox, send_at=later)
    Mailbox.objects.filter(pk=mailbox.pk).update(daily_send_cap=1)
    OutgoingEmail.objects.filter(pk__in=[first.pk, second.pk]).update(send_at=timezone.now())
    # when both are delivered
    assert send_deliver(send_id=first.pk).status == SendStatus.SENT
    assert send_deliver(send_id=second.pk).status == ""
    # then the second waits until the first leaves the 24 h window, saying why
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.status == SendStatus.SCHEDULED and second.attempts == 0
    assert second.send_at == first.sent_at + dt.timedelta(hours=24) and "limit of 1" in second.error
    assert len(smtp_server.received) == 1
