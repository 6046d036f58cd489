"""Raw messages into the tables: parsing that never crashes on real-world mail, and a batch store
that is idempotent by message key and links through the one matcher."""

import datetime as dt

import pytest

from mail import crypto
from mail.models import (
    EmailAttachment,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    Mailbox,
    MailboxKind,
    MailboxMessage,
    NeverLogEntry,
)
from mail.parsing import MessageUnparseable, message_parse
from mail.services.ingest import IncomingItem, messages_store
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def raw(*, mid="<m1@acme.test>", sender="Ada <ada@acme.test>", to="rita@ourco.test", subject="Hello",
        body="Hi Rita", extra="", content_type="text/plain; charset=utf-8") -> bytes:  # fmt: skip
    head = f"Message-ID: {mid}\r\nFrom: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
    head += f"Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n{extra}Content-Type: {content_type}\r\n\r\n"
    return head.encode() + (body.encode() if isinstance(body, str) else body)


@pytest.fixture
def mailbox():
    owner = make_user(username="rita", email="rita@ourco.test")
    return Mailbox.objects.create(
        owner=owner, email_address="rita@ourco.test", imap_host="127.0.0.1", username="rita",
        secret_encrypted=crypto.secret_encrypt("pw"), unknown_policy="never",
    )  # fmt: skip


def test_a_plain_message_parses_into_its_parts():
    parsed = message_parse(raw=raw(extra="Cc: Bob <BOB@acme.test>, nobody\r\nReferences: <a@x> <b@x>\r\n"))
    assert parsed.message_key == "m1@acme.test" and parsed.header_message_id == "<m1@acme.test>"
    assert (parsed.sender.address, parsed.sender.name) == ("ada@acme.test", "Ada")
    assert [a.address for a in parsed.cc] == ["bob@acme.test"]
    assert parsed.references == ["<a@x>", "<b@x>"] and parsed.sent_at == AT
    assert parsed.text_body.strip() == "Hi Rita" and parsed.snippet == "Hi Rita"


def test_an_unknown_charset_and_bad_bytes_decode_with_replacement_not_a_crash():
    parsed = message_parse(raw=raw(body=b"caf\xe9 \xff\xfe", content_type="text/plain; charset=x-unknown-8"))
    assert parsed.text_body.startswith("caf")
    parsed = message_parse(raw=raw(subject="=?utf-8?q?broken=ZZ?=", body="x"))
    assert parsed.subject  # some readable text, never an exception


def test_malformed_mime_is_kept_with_a_note_and_junk_is_refused_with_a_reason():
    broken = raw(
        content_type='multipart/mixed; boundary="b"', body="--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    )
    parsed = message_parse(raw=broken)
    assert "hello" in parsed.text_body and any("Malformed MIME" in n for n in parsed.notes)
    with pytest.raises(MessageUnparseable, match="Empty message"):
        message_parse(raw=b"   ")


def test_hostile_html_is_sanitised_and_a_huge_body_is_cut_with_a_note():
    html = '<p onclick="x()">Hi</p><script>alert(1)</script><style>*{}</style><a href="javascript:x">l</a>'
    parsed = message_parse(raw=raw(body=html, content_type="text/html"))
    assert "<script" not in parsed.html_body and "onclick" not in parsed.html_body
    assert (
        "javascript:" not in parsed.html_body
        and "<style" not in parsed.html_body
        and "Hi" in parsed.html_body
    )
    big = message_parse(raw=raw(body="<p>" + "x" * 10_500_000 + "</p>", content_type="text/html"))
    assert len(big.html_body) <= 1_000_100 and any("HTML body cut" in n for n in big.notes)


def test_a_message_without_message_id_gets_a_stable_digest_key():
    first = message_parse(raw=raw(mid=""))
    again = message_parse(raw=raw(mid=""))
    assert first.message_key.startswith("sha256:") and first.message_key == again.message_key


def test_an_inline_forward_is_read_as_the_original():
    body = (
        "FYI\r\n\r\n---------- Forwarded message ---------\r\nFrom: Ada <ada@acme.test>\r\n"
        "Date: Sun, 1 Nov 2026 08:00:00 +0000\r\nSubject: Pricing\r\nTo: rita@ourco.test\r\n"
        "\r\nWhat does it cost?\r\n"
    )
    parsed = message_parse(raw=raw(sender="rita@ourco.test", to="dropbox@ourco.test", body=body))
    original = parsed.forwarded
    assert original is not None and original.sender.address == "ada@acme.test"
    assert original.subject == "Pricing" and "What does it cost?" in original.text_body


def test_storing_twice_and_from_two_folders_is_one_message(mailbox):
    ada = make_contact(email="ada@acme.test")
    item = IncomingItem(parsed=message_parse(raw=raw()), folder="INBOX", uid=1)
    first = messages_store(mailbox=mailbox, items=[item, item])  # a duplicate id in one batch too
    again = messages_store(mailbox=mailbox, items=[IncomingItem(parsed=item.parsed, folder="Archive", uid=9)])
    assert (first.stored, first.copies, again.stored, again.copies) == (1, 1, 0, 0)
    message = EmailMessage.objects.get()
    assert set(EmailParticipant.objects.values_list("role", "address")) == {
        ("from", "ada@acme.test"),
        ("to", "rita@ourco.test"),
    }
    assert EmailParticipant.objects.get(role="to").user_id == mailbox.owner_id
    assert EmailLink.objects.get().contact_id == ada.pk
    copy = MailboxMessage.objects.get()
    assert (copy.message_id, copy.direction, copy.triage) == (message.pk, "incoming", "linked")


def test_a_second_mailbox_gets_its_own_copy_and_sent_mail_is_outgoing(mailbox):
    other = Mailbox.objects.create(
        owner=make_user(username="olga", email="olga@ourco.test"), email_address="olga@ourco.test",
        imap_host="127.0.0.1", username="olga", unknown_policy="never",
    )  # fmt: skip
    sent = message_parse(raw=raw(sender="rita@ourco.test", to="olga@ourco.test, ada@acme.test"))
    messages_store(mailbox=mailbox, items=[IncomingItem(parsed=sent, folder="Sent", uid=3)])
    messages_store(mailbox=other, items=[IncomingItem(parsed=sent, folder="INBOX", uid=4)])
    assert EmailMessage.objects.count() == 1
    assert dict(MailboxMessage.objects.values_list("mailbox_id", "direction")) == {
        mailbox.pk: "outgoing",
        other.pk: "incoming",
    }


def test_a_reply_joins_its_parents_thread(mailbox):
    messages_store(mailbox=mailbox, items=[IncomingItem(parsed=message_parse(raw=raw()))])
    reply = message_parse(raw=raw(mid="<m2@ourco.test>", extra="In-Reply-To: <m1@acme.test>\r\n"))
    messages_store(mailbox=mailbox, items=[IncomingItem(parsed=reply)])
    assert EmailMessage.objects.values("thread_id").distinct().count() == 1


def test_never_logged_mail_is_not_stored_at_all(mailbox):
    NeverLogEntry.objects.create(value="acme.test")
    result = messages_store(mailbox=mailbox, items=[IncomingItem(parsed=message_parse(raw=raw()))])
    assert result.never_logged == 1 and not EmailMessage.objects.exists()


def test_attachments_are_kept_content_addressed_and_over_the_cap_skipped_with_a_reason(
    mailbox, settings, tmp_path
):
    storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)},
    }
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    mailbox.attachment_max_bytes = 10
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        '--b\r\nContent-Type: application/pdf\r\n'
        'Content-Disposition: attachment; filename="../../etc/q.pdf"\r\n\r\nsmall\r\n'
        '--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="big.pdf"\r\n\r\n'
        + "x" * 50 + "\r\n--b--\r\n"
    )  # fmt: skip
    parsed = message_parse(raw=raw(content_type='multipart/mixed; boundary="b"', body=body))
    messages_store(mailbox=mailbox, items=[IncomingItem(parsed=parsed)])
    small, big = EmailAttachment.objects.order_by("size_bytes")
    assert small.filename == "q.pdf" and small.file.name.startswith("mail/attachments/")
    assert small.file.read() == b"small"
    assert not big.file and "over the 10-byte cap" in big.skipped_reason


def test_the_dropbox_logs_a_users_forward_as_the_original_and_refuses_strangers():
    make_user(username="rita", email="rita@ourco.test")
    ada = make_contact(email="ada@acme.test")
    dropbox = Mailbox.objects.create(
        kind=MailboxKind.DROPBOX, email_address="log@ourco.test", imap_host="127.0.0.1", username="log"
    )
    body = (
        "---------- Forwarded message ---------\r\nFrom: Ada <ada@acme.test>\r\n"
        "Date: Sun, 1 Nov 2026 08:00:00 +0000\r\nSubject: Pricing\r\nTo: rita@ourco.test\r\n\r\nHow much?\r\n"
    )
    forward = message_parse(
        raw=raw(sender="rita@ourco.test", to="log@ourco.test", subject="Fwd: Pricing", body=body)
    )
    stranger = message_parse(raw=raw(mid="<s@evil.test>", sender="spam@evil.test", to="log@ourco.test"))
    result = messages_store(
        mailbox=dropbox, items=[IncomingItem(parsed=forward), IncomingItem(parsed=stranger)]
    )
    assert len(result.skipped) == 1 and "not a user of this workspace" in result.skipped[0][1]
    message = EmailMessage.objects.get()
    assert (message.subject, message.from_address) == ("Pricing", "ada@acme.test")
    assert EmailLink.objects.get(contact=ada).reason == "dropbox"


def test_headers_decode_once_raw_utf8_encoded_words_and_names_holding_commas():
    message = (
        "Message-ID: <u1@acme.test>\r\nFrom: =?utf-8?q?M=C3=BCller=2C_Ada?= <ada@acme.test>\r\n"
        'To: "Doe, Jo" <jo@acme.test>, =?iso-8859-1?q?Ren=E9?= <rene@acme.test>\r\n'
        "Subject: Caf\u00e9 cr\u00e8me \u2615\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Gr\u00fc\u00dfe\r\n--b\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="=?utf-8?q?Angebot_M=C3=A4rz.pdf?="\r\n'
        "\r\nPDF\r\n--b--\r\n"
    ).encode()
    parsed = message_parse(raw=message)
    assert (parsed.sender.address, parsed.sender.name) == ("ada@acme.test", "Müller, Ada")
    assert [(a.address, a.name) for a in parsed.to] == [
        ("jo@acme.test", "Doe, Jo"), ("rene@acme.test", "René"),
    ]  # fmt: skip
    assert parsed.subject == "Café crème ☕" and parsed.text_body.strip() == "Grüße"
    assert [a.filename for a in parsed.attachments] == ["Angebot März.pdf"]


TOP = "Authentication-Results: mx.ourco.test; "


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        (TOP + "spf=pass smtp.mailfrom=acme.test; dkim=pass header.d=acme.test; dmarc=pass\r\n", ""),
        (TOP + "spf=fail; dkim=none; dmarc=fail (p=reject) header.from=acme.test\r\n", "dmarc=fail"),
        (TOP + "spf=fail smtp.mailfrom=acme.test; dkim=none\r\n", "spf=fail, dkim=none"),
        (TOP + "spf=fail; dkim=pass header.d=acme.test\r\n", ""),  # a signed forward keeps its DKIM
        ("", ""),  # a server that adds none: unknown, not a failure
        # only the topmost header is the receiving server's; one below came with the message
        (TOP + "dmarc=pass\r\nAuthentication-Results: evil.test; dmarc=fail\r\n", ""),
        (TOP + "dmarc=fail\r\nAuthentication-Results: evil.test; dmarc=pass\r\n", "dmarc=fail"),
    ],
)
def test_the_receiving_servers_authentication_results_flag_a_forged_from(headers, verdict):
    assert message_parse(raw=raw(extra=headers)).auth_failure == verdict


def test_a_forged_from_is_refused_by_the_dropbox_and_creates_nobody_from_a_mailbox():
    make_user(username="rita", email="rita@ourco.test")
    dropbox = Mailbox.objects.create(
        kind=MailboxKind.DROPBOX, email_address="log@ourco.test", imap_host="127.0.0.1", username="log"
    )
    forged = message_parse(
        raw=raw(sender="rita@ourco.test", to="log@ourco.test", extra=TOP + "dmarc=fail\r\n")
    )
    result = messages_store(mailbox=dropbox, items=[IncomingItem(parsed=forged)])
    assert result.stored == 0 and "could not verify that sender (dmarc=fail)" in result.skipped[0][1]

    owner = make_user(username="sam", email="sam@ourco.test")
    box = Mailbox.objects.create(
        owner=owner, email_address="sam@ourco.test", imap_host="127.0.0.1", username="sam",
        secret_encrypted=crypto.secret_encrypt("pw"), unknown_policy="all",
    )  # fmt: skip
    phish = message_parse(
        raw=raw(mid="<p@x>", sender="ceo@bank.test", to="sam@ourco.test", extra=TOP + "dmarc=fail\r\n")
    )
    honest = message_parse(raw=raw(mid="<h@x>", sender="bob@acme.test", to="sam@ourco.test"))
    messages_store(mailbox=box, items=[IncomingItem(parsed=phish), IncomingItem(parsed=honest)])
    assert EmailMessage.objects.get(message_key="p@x").auth_failure == "dmarc=fail"
    from contacts.models import Contact

    assert list(Contact.objects.values_list("email", flat=True)) == ["bob@acme.test"]  # not the forger
