"""Which records a message lands on, and why: the matcher the sync, the dropbox and the sender share."""

import datetime as dt
import itertools

import pytest

from contacts.models import Contact
from events.models import Event
from identity.models import ContactEvent
from mail import crypto
from mail.models import (
    Direction,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    EmailThread,
    LinkReason,
    Mailbox,
    MailboxMessage,
    NeverLogEntry,
    OutgoingEmail,
    UnknownAddressPolicy,
)
from mail.services import matching
from pipeline.models import DealStatus
from tests.factories import link_identity, make_company, make_contact, make_deal, make_user
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
_seq = itertools.count(1)


def _mailbox(owner, **fields) -> Mailbox:
    fields.setdefault("email_address", owner.email or f"{owner.username}@ourco.test")
    return Mailbox.objects.create(
        owner=owner,
        imap_host="127.0.0.1",
        username=owner.username,
        secret_encrypted=crypto.secret_encrypt("pw"),
        **fields,
    )


def _message(
    mailbox, *, sender, to=(), cc=(), direction=Direction.INCOMING, thread=None, **fields
) -> EmailMessage:
    n = next(_seq)
    thread = thread or EmailThread.objects.create(subject=fields.get("subject", "Hello"))
    message = EmailMessage.objects.create(
        message_key=f"m{n}@mail.test",
        header_message_id=f"<m{n}@mail.test>",
        thread=thread,
        from_address=sender,
        sent_at=AT + dt.timedelta(minutes=n),
        **{"subject": "Hello", **fields},
    )
    rows = [EmailParticipant(message=message, role="from", address=sender)]
    rows += [EmailParticipant(message=message, role="to", address=a) for a in to]
    rows += [EmailParticipant(message=message, role="cc", address=a) for a in cc]
    EmailParticipant.objects.bulk_create(rows)
    MailboxMessage.objects.create(
        mailbox=mailbox, message=message, folder="INBOX", uid=n, direction=direction
    )
    return message


def _links(message) -> set[tuple]:
    return set(
        EmailLink.objects.filter(message=message).values_list("contact_id", "company_id", "deal_id", "reason")
    )


@pytest.fixture
def rep():
    return make_user(username="rita", email="rita@ourco.test")


@pytest.fixture
def mailbox(rep):
    return _mailbox(rep, unknown_policy=UnknownAddressPolicy.NEVER)


def test_addresses_are_normalised_and_non_addresses_are_empty():
    assert matching.address_normalise("  <Ada@Example.COM> ") == "ada@example.com"
    assert matching.address_normalise("undisclosed-recipients") == ""
    assert matching.address_normalise("a b@example.com") == ""
    assert matching.address_normalise("ada@localhost") == ""


def test_a_message_links_to_its_contacts_their_company_and_open_deals(mailbox):
    acme = make_company(name="Acme", domain="acme.test")
    ada = make_contact(email="Ada@Acme.test", company=acme)
    open_deal = make_deal(title="Pilot", contact=ada)
    make_deal(title="Old", contact=ada, status=DealStatus.WON)
    message = _message(mailbox, sender="ada@acme.test", to=["rita@ourco.test"])

    assert matching.messages_link(mailbox=mailbox, messages=[message]) == 3

    assert _links(message) == {
        (ada.pk, None, None, LinkReason.ADDRESS),
        (None, acme.pk, None, LinkReason.COMPANY),
        (None, None, open_deal.pk, LinkReason.DEAL),
    }
    assert EmailLink.objects.get(message=message, contact=ada).via == "ada@acme.test"
    assert EmailParticipant.objects.get(message=message, role="from").contact_id == ada.pk
    # the rep's own address is not a contact, and the copy leaves the Unmatched inbox
    assert EmailParticipant.objects.get(message=message, role="to").contact_id is None
    assert MailboxMessage.objects.get(message=message).triage == MailboxMessage.Triage.LINKED


def test_linking_twice_makes_nothing_twice(mailbox):
    make_contact(email="ada@acme.test")
    message = _message(mailbox, sender="ada@acme.test")
    assert matching.messages_link(mailbox=mailbox, messages=[message]) == 1
    assert matching.messages_link(mailbox=mailbox, messages=[message]) == 0
    assert EmailLink.objects.count() == 1


def test_an_address_known_only_to_the_identity_graph_finds_its_contact(mailbox):
    # the tracker stitched bob's second address to him; his CRM email is another one
    bob = make_contact(email="bob@work.test")
    link_identity(bob, kind="email", value="bob.home@mail.test")
    message = _message(mailbox, sender="Bob.Home@mail.test")
    matching.messages_link(mailbox=mailbox, messages=[message])
    assert _links(message) == {(bob.pk, None, None, LinkReason.ADDRESS)}


def test_an_address_of_a_merged_contact_links_to_the_survivor(mailbox):
    survivor = make_contact(email="ada@acme.test")
    make_contact(email="ada.old@acme.test", merged_into=survivor)
    message = _message(mailbox, sender="ada.old@acme.test")
    matching.messages_link(mailbox=mailbox, messages=[message])
    assert _links(message) == {(survivor.pk, None, None, LinkReason.ADDRESS)}


def test_the_deal_links_are_capped_by_the_mailbox_setting_newest_first(rep):
    mailbox = _mailbox(rep, unknown_policy=UnknownAddressPolicy.NEVER, deal_link_limit=2)
    ada = make_contact(email="ada@acme.test")
    deals = [make_deal(title=f"D{i}", contact=ada) for i in range(4)]
    message = _message(mailbox, sender="ada@acme.test")
    matching.messages_link(mailbox=mailbox, messages=[message])
    linked = set(
        EmailLink.objects.filter(message=message, deal__isnull=False).values_list("deal_id", flat=True)
    )
    assert linked == {deals[3].pk, deals[2].pk}


def test_a_deal_the_contact_participates_in_is_linked_too(mailbox):
    ada = make_contact(email="ada@acme.test")
    deal = make_deal(title="Shared", contact=make_contact(email="boss@acme.test"))
    deal.participants.add(ada)
    message = _message(mailbox, sender="ada@acme.test")
    matching.messages_link(mailbox=mailbox, messages=[message])
    assert (None, None, deal.pk, LinkReason.DEAL) in _links(message)


def test_mail_between_colleagues_links_to_nobody_and_stays_unmatched(mailbox):
    colleague = make_user(username="carl", email="carl@ourco.test")
    # even when a contact with a colleague's address exists (imported by mistake)
    make_contact(email="carl@ourco.test")
    message = _message(mailbox, sender=colleague.email, to=["rita@ourco.test"])
    assert matching.messages_link(mailbox=mailbox, messages=[message]) == 0
    assert MailboxMessage.objects.get(message=message).triage == MailboxMessage.Triage.PENDING


def test_the_sent_policy_creates_contacts_for_people_the_rep_wrote_to_only(rep):
    mailbox = _mailbox(rep, unknown_policy=UnknownAddressPolicy.SENT)
    sent = _message(
        mailbox,
        sender="rita@ourco.test",
        to=["new.lead@prospect.test"],
        direction=Direction.OUTGOING,
    )
    EmailParticipant.objects.filter(message=sent, address="new.lead@prospect.test").update(name="Nora Lead")
    received = _message(mailbox, sender="newsletter@spam.test", to=["rita@ourco.test"])
    matching.messages_link(mailbox=mailbox, messages=[sent, received])
    created = Contact.objects.get(email="new.lead@prospect.test")
    assert (created.first_name, created.last_name, created.owner_id) == ("Nora", "Lead", rep.pk)
    assert not Contact.objects.filter(email="newsletter@spam.test").exists()
    assert _links(sent) == {(created.pk, None, None, LinkReason.ADDRESS)}
    assert _links(received) == set()


def test_the_all_policy_creates_contacts_for_senders_too_and_never_creates_nothing(rep):
    mailbox = _mailbox(rep, unknown_policy=UnknownAddressPolicy.ALL)
    matching.messages_link(mailbox=mailbox, messages=[_message(mailbox, sender="cold@inbound.test")])
    assert Contact.objects.filter(email="cold@inbound.test").exists()

    never = _mailbox(make_user(username="nina", email="nina@ourco.test"), unknown_policy="never")
    matching.messages_link(mailbox=never, messages=[_message(never, sender="other@inbound.test")])
    assert not Contact.objects.filter(email="other@inbound.test").exists()


def test_a_read_only_owner_creates_no_contacts_and_the_message_stays_unmatched():
    viewer = make_user(username="vic", email="vic@ourco.test", role="Marketing")
    mailbox = _mailbox(viewer, unknown_policy=UnknownAddressPolicy.ALL)
    message = _message(mailbox, sender="cold@inbound.test")
    assert matching.messages_link(mailbox=mailbox, messages=[message]) == 0
    assert not Contact.objects.exists()
    assert MailboxMessage.objects.get(message=message).triage == MailboxMessage.Triage.PENDING


def test_never_log_entries_match_addresses_and_domains_with_subdomains(rep):
    NeverLogEntry.objects.create(value="ceo@acme.test")
    NeverLogEntry.objects.create(value="lawfirm.test")
    NeverLogEntry.objects.create(value="private.test", owner=rep)
    other = make_user(username="olga")
    addresses = [
        "CEO@acme.test",
        "cfo@acme.test",
        "partner@lawfirm.test",
        "x@eu.lawfirm.test",
        "me@private.test",
        "notlawfirm.test@ok.test",
    ]
    assert matching.never_logged(addresses=addresses, owner_id=rep.pk) == {
        "ceo@acme.test",
        "partner@lawfirm.test",
        "x@eu.lawfirm.test",
        "me@private.test",
    }
    # another user's personal entry does not apply to her mail
    assert "me@private.test" not in matching.never_logged(addresses=addresses, owner_id=other.pk)


def test_a_message_joins_the_records_its_thread_is_on(mailbox):
    ada = make_contact(email="ada@acme.test")
    deal = make_deal(title="Pilot", contact=ada)
    first = _message(mailbox, sender="ada@acme.test")
    matching.messages_link(mailbox=mailbox, messages=[first])
    # a colleague of ada's nobody knows answers in the same thread
    reply = _message(mailbox, sender="unknown@acme.test", thread=first.thread)
    matching.messages_link(mailbox=mailbox, messages=[reply])
    assert _links(reply) == {
        (ada.pk, None, None, LinkReason.THREAD),
        (None, None, deal.pk, LinkReason.THREAD),
    }


def test_a_reply_to_a_crm_send_links_to_the_send_and_records_email_replied_once(rep, mailbox):
    ada = make_contact(email="ada@acme.test")
    deal = make_deal(title="Pilot", contact=ada)
    send = OutgoingEmail.objects.create(
        mailbox=mailbox,
        sender=rep,
        to=["ada@acme.test"],
        subject="Proposal",
        contact=ada,
        deal=deal,
        header_message_id="<send-1@ourco.test>",
        tracking_token="tok1",
        status="sent",
        send_at=AT,
    )
    # her client rewrote the domain's case; the references chain still names the send
    reply = _message(
        mailbox,
        sender="ada@acme.test",
        subject="Re: Proposal",
        in_reply_to="<send-1@OURCO.test>",
        references=["<send-1@ourco.test>"],
    )
    matching.messages_link(mailbox=mailbox, messages=[reply])
    matching.messages_link(mailbox=mailbox, messages=[reply])

    # the reply reason wins over the address that also matches
    assert _links(reply) == {(ada.pk, None, None, LinkReason.REPLY), (None, None, deal.pk, LinkReason.REPLY)}
    event = Event.objects.get(event="Email Replied")
    assert event.properties["send_id"] == send.pk and event.properties["deal_id"] == deal.pk
    drain()
    assert list(ContactEvent.objects.filter(event=event).values_list("contact_id", flat=True)) == [ada.pk]


def test_the_reps_own_follow_up_in_a_send_thread_is_not_a_reply(rep, mailbox):
    ada = make_contact(email="ada@acme.test")
    OutgoingEmail.objects.create(
        mailbox=mailbox,
        sender=rep,
        to=["ada@acme.test"],
        subject="Proposal",
        contact=ada,
        header_message_id="<send-2@ourco.test>",
        tracking_token="tok2",
        status="sent",
        send_at=AT,
    )
    follow_up = _message(
        mailbox,
        sender="rita@ourco.test",
        to=["ada@acme.test"],
        direction=Direction.OUTGOING,
        in_reply_to="<send-2@ourco.test>",
    )
    matching.messages_link(mailbox=mailbox, messages=[follow_up])
    assert (ada.pk, None, None, LinkReason.REPLY) in _links(follow_up)
    assert not Event.objects.filter(event="Email Replied").exists()
