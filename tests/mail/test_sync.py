"""IMAP sync against a real Dovecot: each message imported once, however the run is cut."""

import datetime as dt

import pytest
from django.utils import timezone

from mail import crypto
from mail.models import (
    EmailLink,
    EmailMessage,
    FolderCursor,
    Mailbox,
    MailboxMessage,
    SkippedMessage,
    SyncState,
)
from mail.services.sync import mailbox_sync
from tests.factories import make_contact, make_user
from tests.mail.imap_server import CuttingProxy

pytestmark = pytest.mark.django_db


def raw(
    n: int, *, sender="Ada <ada@acme.test>", to="rep@ourco.test", subject=None, body=None, day=2
) -> bytes:
    return (
        f"Message-ID: <m{n}@acme.test>\r\nFrom: {sender}\r\nTo: {to}\r\n"
        f"Subject: {subject or f'Message {n}'}\r\nDate: Mon, {day:02d} Nov 2026 09:00:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body or f'Body of message {n}'}\r\n"
    ).encode()


@pytest.fixture
def account(imap_user, dovecot):
    name, password = imap_user
    owner = make_user(username=name.split("@")[0], email=name)
    mailbox = Mailbox.objects.create(
        owner=owner, email_address=name, username=name, imap_host="127.0.0.1", imap_port=dovecot.port,
        imap_security="none", secret_encrypted=crypto.secret_encrypt(password), folders=["INBOX", "Sent"],
        unknown_policy="never",
    )  # fmt: skip
    return mailbox


def copies(mailbox) -> int:
    return MailboxMessage.objects.filter(mailbox=mailbox).count()


def test_first_sync_imports_both_folders_links_and_a_second_run_imports_nothing(account, dovecot):
    ada = make_contact(email="ada@acme.test")
    me = account.email_address
    dovecot.deliver(me, [raw(1, to=me), raw(2, to=me)])
    # A message the rep sent, also in the INBOX (Cc to self): one email, one copy in this mailbox.
    sent = raw(3, sender=me, to="Ada <ada@acme.test>")
    dovecot.deliver(me, [sent])
    dovecot.deliver(me, [sent, raw(4, sender=me, to="Ada <ada@acme.test>")], folder="Sent")

    result = mailbox_sync(mailbox_id=account.pk)

    assert result.ran and not result.error, result.error
    assert sorted((f.folder, f.fetched, f.imported) for f in result.folders) == [
        ("INBOX", 3, 3),
        ("Sent", 2, 1),
    ]
    rows = MailboxMessage.objects.filter(mailbox=account)
    assert sorted(rows.values_list("folder", "uid", "message__subject", "direction")) == [
        ("INBOX", 1, "Message 1", "incoming"), ("INBOX", 2, "Message 2", "incoming"),
        ("INBOX", 3, "Message 3", "outgoing"), ("Sent", 2, "Message 4", "outgoing"),
    ]  # fmt: skip
    assert set(EmailLink.objects.filter(contact=ada).values_list("message__subject", flat=True)) == {
        "Message 1", "Message 2", "Message 3", "Message 4",
    }  # fmt: skip
    account.refresh_from_db()
    assert (
        account.sync_state == SyncState.ACTIVE and account.last_imported == 4 and account.imported_total == 4
    )
    assert (
        account.last_success_at is not None and account.last_error == "" and account.sync_lease_until is None
    )
    assert dict(FolderCursor.objects.filter(mailbox=account).values_list("folder", "last_uid")) == {
        "INBOX": 3, "Sent": 2,
    }  # fmt: skip

    again = mailbox_sync(mailbox_id=account.pk)
    account.refresh_from_db()
    assert again.imported == 0 and copies(account) == 4
    assert account.last_imported == 0 and account.imported_total == 4  # "0 new", not a bare "synced"

    dovecot.deliver(me, [raw(5, to=me)])
    assert mailbox_sync(mailbox_id=account.pk).imported == 1 and copies(account) == 5


def test_ten_thousand_messages_interrupted_halfway_and_resumed_are_each_imported_once(account, dovecot):
    me = account.email_address
    dovecot.deliver(me, (raw(n, to=me) for n in range(10_000)))

    first = mailbox_sync(mailbox_id=account.pk, budget=5_000, batch_size=500)  # the run stops halfway
    assert first.more and first.imported == 5_000 and copies(account) == 5_000
    assert FolderCursor.objects.get(mailbox=account, folder="INBOX").last_uid == 5_000

    rest = mailbox_sync(mailbox_id=account.pk, budget=20_000, batch_size=500)
    assert not rest.more and rest.imported == 5_000 and not rest.error
    keys = list(EmailMessage.objects.filter(copies__mailbox=account).values_list("message_key", flat=True))
    assert len(keys) == len(set(keys)) == 10_000
    assert set(keys) == {f"m{n}@acme.test" for n in range(10_000)}
    account.refresh_from_db()
    assert account.imported_total == 10_000


def test_a_connection_dropped_mid_fetch_keeps_what_was_stored_says_so_and_resumes(account, dovecot):
    me = account.email_address
    dovecot.deliver(me, (raw(n, to=me, body="x" * 2_000) for n in range(600)))
    # About 2.2 kB a message: the cut falls inside the third batch of 100.
    proxy = CuttingProxy(dovecot.port, cut_after=550_000)
    Mailbox.objects.filter(pk=account.pk).update(imap_port=proxy.port, folders=["INBOX"])
    try:
        cut = mailbox_sync(mailbox_id=account.pk, batch_size=100)
    finally:
        proxy.close()
    account.refresh_from_db()
    assert cut.ran and "connection was lost while reading INBOX" in cut.error
    assert account.sync_state == SyncState.FAILING and account.last_error == cut.error
    assert account.last_success_at is None and account.sync_lease_until is None
    stored = copies(account)
    assert 0 < stored < 600 and stored % 100 == 0  # whole batches only
    assert FolderCursor.objects.get(mailbox=account).last_uid == stored

    Mailbox.objects.filter(pk=account.pk).update(imap_port=dovecot.port)
    resumed = mailbox_sync(mailbox_id=account.pk, batch_size=100)
    account.refresh_from_db()
    assert resumed.imported == 600 - stored and copies(account) == 600
    assert account.sync_state == SyncState.ACTIVE and account.last_error == ""


def test_a_wrong_password_is_a_clear_error_and_imports_nothing(account, dovecot):
    dovecot.deliver(account.email_address, [raw(1)])
    Mailbox.objects.filter(pk=account.pk).update(secret_encrypted=crypto.secret_encrypt("not-it"))
    result = mailbox_sync(mailbox_id=account.pk)
    account.refresh_from_db()
    assert "refused the username or password" in result.error and account.username in result.error
    assert "not-it" not in result.error and "not-it" not in account.last_error
    assert account.sync_state == SyncState.FAILING and account.last_error_at is not None
    assert copies(account) == 0


def test_a_server_that_does_not_listen_is_named(account):
    Mailbox.objects.filter(pk=account.pk).update(imap_port=1)
    result = mailbox_sync(mailbox_id=account.pk)
    assert result.error == "IMAP 127.0.0.1:1: the connection was refused; check the host and port."


def test_unreadable_messages_are_skipped_with_their_reason_and_never_block_the_rest(account, dovecot):
    me = account.email_address
    dovecot.deliver(me, [raw(1, to=me), b"   \r\n", raw(2, to=me)])
    result = mailbox_sync(mailbox_id=account.pk)
    assert result.imported == 2 and not result.error
    skipped = SkippedMessage.objects.get(mailbox=account)
    assert (skipped.folder, skipped.uid, skipped.reason) == ("INBOX", 2, "Empty message.")
    assert mailbox_sync(mailbox_id=account.pk).folders[0].fetched == 0  # never retried forever


def test_a_renumbered_folder_restarts_its_cursor_without_duplicates(account, dovecot):
    me = account.email_address
    dovecot.deliver(me, [raw(1, to=me), raw(2, to=me)])
    mailbox_sync(mailbox_id=account.pk)
    before = FolderCursor.objects.get(mailbox=account, folder="INBOX").uidvalidity
    dovecot.reset_uidvalidity(me)
    dovecot.deliver(me, [raw(3, to=me)])
    result = mailbox_sync(mailbox_id=account.pk)
    cursor = FolderCursor.objects.get(mailbox=account, folder="INBOX")
    assert cursor.uidvalidity != before and cursor.last_uid == 3
    assert result.folders[0].fetched == 3 and result.imported == 1  # the two known ones are not doubled
    assert copies(account) == 3


def test_mail_before_the_start_date_is_not_imported_and_a_missing_folder_is_reported(account, dovecot):
    me = account.email_address
    dovecot.deliver(me, [raw(1, to=me)], received=dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC))
    dovecot.deliver(me, [raw(2, to=me)], received=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC))
    Mailbox.objects.filter(pk=account.pk).update(
        sync_since=dt.date(2026, 11, 10), folders=["INBOX", "Archive/2019"]
    )
    result = mailbox_sync(mailbox_id=account.pk)
    assert "Folder 'Archive/2019' could not be opened" in result.error
    assert [m.message.subject for m in MailboxMessage.objects.filter(mailbox=account)] == ["Message 2"]
    account.refresh_from_db()
    assert account.sync_state == SyncState.FAILING and "Archive/2019" in account.last_error


def test_a_held_mailbox_is_left_alone_and_a_lapsed_lease_is_taken(account):
    Mailbox.objects.filter(pk=account.pk).update(sync_lease_until=timezone.now() + dt.timedelta(minutes=5))
    assert mailbox_sync(mailbox_id=account.pk).ran is False
    Mailbox.objects.filter(pk=account.pk).update(sync_lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert mailbox_sync(mailbox_id=account.pk).ran is True
    Mailbox.objects.filter(pk=account.pk).update(sync_state=SyncState.PAUSED)
    assert mailbox_sync(mailbox_id=account.pk).ran is False
