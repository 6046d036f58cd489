"""A send from the CRM is filed in the rep's IMAP Sent folder (real Dovecot and SMTP servers, one
password for both), and the sync that later reads that folder knows it: one message, one copy."""

import pytest

from mail import crypto
from mail.models import EmailMessage, Mailbox, MailboxMessage
from mail.services import sending
from mail.services.sync import mailbox_sync
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def test_a_send_is_filed_in_sent_and_the_sync_does_not_double_it(imap_user, dovecot, smtp_server):
    name, _ = imap_user
    rep = make_user(username=name.split("@")[0], email=name)
    ada = make_contact(first_name="Ada", email="ada@acme.test")
    mailbox = Mailbox.objects.create(
        owner=rep, email_address=name, username=name, imap_host="127.0.0.1", imap_port=dovecot.port,
        imap_security="none", smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none",
        secret_encrypted=crypto.secret_encrypt(smtp_server.password), folders=["INBOX", "Sent"],
        unknown_policy="never",
    )  # fmt: skip
    send = sending.email_send(
        sender=rep, mailbox=mailbox, to=["ada@acme.test"], subject="Filed", body_text="Hi", contact=ada
    )

    assert sending.send_deliver(send_id=send.pk).status == "sent" and len(smtp_server.received) == 1

    result = mailbox_sync(mailbox_id=mailbox.pk)
    assert not result.error, result.error
    sent = next(f for f in result.folders if f.folder == "Sent")
    assert (sent.fetched, sent.imported) == (1, 0)  # the filed copy is read, and known
    assert EmailMessage.objects.filter(subject="Filed").count() == 1
    assert MailboxMessage.objects.filter(mailbox=mailbox, message__subject="Filed").count() == 1


def test_providers_that_file_sent_mail_themselves_get_no_second_copy(settings):
    mailbox = Mailbox(imap_host="imap.gmail.com")
    assert sending.sent_copy_save(mailbox=mailbox, mime=None) == ""
