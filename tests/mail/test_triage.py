"""The Unmatched inbox (link, create the contact, ignore) and the never-log list, through the pages."""

import datetime as dt

import pytest
from django.urls import reverse

from contacts.models import Contact
from mail import crypto
from mail.models import (
    EmailLink,
    EmailMessage,
    EmailParticipant,
    EmailThread,
    LinkReason,
    Mailbox,
    MailboxMessage,
    NeverLogEntry,
)
from tests.factories import make_admin, make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def _pending(owner, *, key: str, subject: str, sender: str, sender_name: str = "") -> MailboxMessage:
    mailbox, _ = Mailbox.objects.get_or_create(
        owner=owner,
        email_address=f"{owner.username}@ourco.test",
        defaults={
            "imap_host": "127.0.0.1",
            "username": owner.username,
            "secret_encrypted": crypto.secret_encrypt("x"),
        },
    )
    message = EmailMessage.objects.create(
        message_key=key,
        thread=EmailThread.objects.create(subject=subject),
        subject=subject,
        from_address=sender,
        sent_at=AT,
        snippet="first words",
    )
    EmailParticipant.objects.create(message=message, role="from", address=sender, name=sender_name)
    EmailParticipant.objects.create(message=message, role="to", address=mailbox.email_address)
    return MailboxMessage.objects.create(
        mailbox=mailbox, message=message, folder="INBOX", uid=1, direction="incoming"
    )


@pytest.fixture
def rep(client):
    user = make_user(username="rita", email="rita@ourco.test")
    client.force_login(user)
    return user


def test_the_inbox_lists_the_users_own_unmatched_mail_only(client, rep):
    _pending(rep, key="a@x", subject="Pricing question <b>now</b>", sender="lead@prospect.test")
    _pending(make_user(username="olga"), key="b@x", subject="Olga's private thread", sender="x@y.test")
    page = client.get(reverse("mail:unmatched")).content.decode()
    # the subject is shown escaped; another rep's private mail is not there at all
    assert "Pricing question &lt;b&gt;now&lt;/b&gt;" in page
    assert "lead@prospect.test" in page
    assert "Olga&#x27;s private thread" not in page and "Olga's private thread" not in page
    assert '<span class="badge text-bg-secondary" data-testid="unmatched-total">1</span>' in page


def test_linking_by_the_picker_puts_the_message_on_the_contact_and_its_company(client, rep):
    acme = make_company(name="Acme", domain="acme.test")
    ada = make_contact(first_name="Ada", email="ada@acme.test", company=acme)
    copy = _pending(rep, key="a@x", subject="Hi", sender="assistant@elsewhere.test")
    response = client.post(reverse("mail:unmatched_link", args=[copy.pk]), {"contact": f"Ada (#{ada.pk})"})
    assert response.status_code == 302
    assert set(EmailLink.objects.values_list("contact_id", "company_id", "reason")) == {
        (ada.pk, None, LinkReason.MANUAL),
        (None, acme.pk, LinkReason.COMPANY),
    }
    copy.refresh_from_db()
    assert copy.triage == MailboxMessage.Triage.LINKED
    assert "Hi" not in client.get(reverse("mail:unmatched")).content.decode().split("<tbody>")[1]


def test_linking_by_an_exact_email_works_and_an_unknown_one_says_what_to_do(client, rep):
    ada = make_contact(first_name="Ada", email="ada@acme.test")
    copy = _pending(rep, key="a@x", subject="Hi", sender="someone@elsewhere.test")
    response = client.post(
        reverse("mail:unmatched_link", args=[copy.pk]), {"contact": "nobody@acme.test"}, follow=True
    )
    assert "Pick a contact from the list, or type their exact email." in response.content.decode()
    assert not EmailLink.objects.exists()
    client.post(reverse("mail:unmatched_link", args=[copy.pk]), {"contact": "ada@acme.test"})
    assert EmailLink.objects.get().contact_id == ada.pk


def test_creating_the_contact_from_an_address_links_the_message_to_it(client, rep):
    copy = _pending(rep, key="a@x", subject="Hi", sender="nora@prospect.test", sender_name="Nora Lead")
    response = client.post(
        reverse("mail:unmatched_create_contact", args=[copy.pk]),
        {"address": "Nora@Prospect.test"},
        follow=True,
    )
    nora = Contact.objects.get(email="nora@prospect.test")
    assert (nora.first_name, nora.last_name, nora.owner_id) == ("Nora", "Lead", rep.pk)
    assert f"Created {nora} and linked the message." in response.content.decode()
    assert EmailLink.objects.get().contact_id == nora.pk


def test_creating_a_contact_for_an_address_not_on_the_message_is_refused(client, rep):
    copy = _pending(rep, key="a@x", subject="Hi", sender="nora@prospect.test")
    response = client.post(
        reverse("mail:unmatched_create_contact", args=[copy.pk]),
        {"address": "other@prospect.test"},
        follow=True,
    )
    assert "Choose one of the message&#x27;s addresses." in response.content.decode()
    assert not Contact.objects.exists()


def test_ignoring_takes_the_message_out_of_the_inbox_and_another_rep_gets_a_404(client, rep):
    copy = _pending(rep, key="a@x", subject="Newsletter", sender="news@letters.test")
    client.post(reverse("mail:unmatched_ignore", args=[copy.pk]))
    copy.refresh_from_db()
    assert copy.triage == MailboxMessage.Triage.IGNORED

    client.force_login(make_user(username="olga"))
    other = _pending(rep, key="b@x", subject="Still private", sender="x@y.test")
    assert client.post(reverse("mail:unmatched_ignore", args=[other.pk])).status_code == 404
    other.refresh_from_db()
    assert other.triage == MailboxMessage.Triage.PENDING


def test_the_never_log_list_validates_and_refuses_duplicates(client, rep):
    url = reverse("mail:never_log_add")
    bad = client.post(url, {"value": "not a domain"})
    assert bad.status_code == 422
    assert "Enter an email address or a domain such as example.com." in bad.content.decode()
    assert client.post(url, {"value": " @LawFirm.test "}).status_code == 302
    assert list(NeverLogEntry.objects.values_list("value", "owner_id")) == [("lawfirm.test", rep.pk)]
    dup = client.post(url, {"value": "lawfirm.test"})
    assert dup.status_code == 422 and "“lawfirm.test” is already on the list." in dup.content.decode()
    assert client.post(url, {"value": "CEO@Acme.test"}).status_code == 302
    assert NeverLogEntry.objects.filter(value="ceo@acme.test", owner=rep).exists()


def test_workspace_entries_are_for_admins_and_apply_to_everyone(client, rep):
    assert client.post(reverse("mail:never_log_add_workspace"), {"value": "legal.test"}).status_code == 403
    client.force_login(make_admin(username="ann"))
    assert client.post(reverse("mail:never_log_add_workspace"), {"value": "legal.test"}).status_code == 302
    entry = NeverLogEntry.objects.get(value="legal.test")
    assert entry.owner_id is None
    client.force_login(rep)
    page = client.get(reverse("mail:never_log")).content.decode()
    assert "legal.test" in page and "Everyone" in page
    # a rep cannot remove it
    assert client.post(reverse("mail:never_log_remove", args=[entry.pk])).status_code == 403
    assert NeverLogEntry.objects.filter(pk=entry.pk).exists()
