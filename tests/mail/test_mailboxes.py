"""Settings → Email against a real Dovecot: connect (tested before it is saved), choose folders
with a dry-run count, start the import (through a real Celery worker), honest health."""

import datetime as dt
import time

import pytest
from django.urls import reverse

from mail.crypto import secret_decrypt
from mail.models import Mailbox, MailboxMessage, SyncState
from mail.services.sync import mailbox_sync, mailboxes_due
from tests.factories import make_user

FORM = {
    "display_name": "Rita",
    "imap_host": "127.0.0.1",
    "imap_security": "none",
    "smtp_host": "",
    "smtp_port": "465",
    "smtp_security": "ssl",
    "unknown_policy": "never",
    "deal_link_limit": "5",
    "daily_send_cap": "1000",
    "attachment_max_bytes": "26214400",
}


def raw(n: int, *, to: str) -> bytes:
    return (
        f"Message-ID: <ui{n}@acme.test>\r\nFrom: Ada <ada@acme.test>\r\nTo: {to}\r\nSubject: Hello {n}\r\n"
        "Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n\r\nHi\r\n"
    ).encode()


@pytest.fixture
def rep(client, imap_user):
    name, _ = imap_user
    user = make_user(username=name.split("@")[0], email=name)
    client.force_login(user)
    return user


def connect(client, dovecot, rep, *, password=None, port=None):
    data = {
        **FORM,
        "email_address": rep.email,
        "username": rep.email,
        "imap_port": str(port or dovecot.port),
        "password": password or dovecot.password,
    }
    return client.post(reverse("mail:mailbox_new"), data)


@pytest.mark.django_db
def test_connecting_tests_first_stores_the_password_encrypted_and_waits_for_the_count(client, dovecot, rep):
    dovecot.deliver(rep.email, [raw(1, to=rep.email)], received=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    dovecot.deliver(rep.email, [raw(2, to=rep.email), raw(3, to=rep.email)])

    response = connect(client, dovecot, rep)

    mailbox = Mailbox.objects.get(owner=rep)
    assert response.status_code == 302 and response["Location"] == reverse(
        "mail:mailbox_detail", args=[mailbox.pk]
    )
    assert dovecot.password not in mailbox.secret_encrypted
    assert secret_decrypt(mailbox.secret_encrypted) == dovecot.password
    assert mailbox.folders == ["INBOX", "Sent"] and mailbox.sync_state == SyncState.NEW
    assert mailbox.pk not in mailboxes_due()  # nothing is imported before the owner has seen the count

    page = client.get(response["Location"]).content.decode()
    assert 'value="INBOX" id="folder-1" checked' in page and 'value="Sent"' in page
    assert "Start import" in page and 'data-testid="mailbox-start" disabled' in page
    assert dovecot.password not in page
    assert (
        dovecot.password not in client.get(reverse("mail:mailbox_edit", args=[mailbox.pk])).content.decode()
    )

    counted = client.post(
        reverse("mail:mailbox_folders", args=[mailbox.pk]), {"folders": ["INBOX"], "sync_since": "2026-06-01"}
    )
    page = client.get(counted["Location"]).content.decode()
    mailbox.refresh_from_db()
    assert mailbox.folders == ["INBOX"] and mailbox.sync_since == dt.date(2026, 6, 1)
    assert "INBOX: 2 messages" in page  # the January one is before the start date
    assert 'data-testid="mailbox-start" disabled' not in page

    client.post(reverse("mail:mailbox_start", args=[mailbox.pk]))
    mailbox.refresh_from_db()
    assert mailbox.sync_state == SyncState.ACTIVE and mailbox.pk in mailboxes_due()
    mailbox_sync(mailbox_id=mailbox.pk)
    listing = client.get(reverse("mail:mailboxes")).content.decode()
    assert "2 new messages" in listing and "Syncing" in listing


@pytest.mark.django_db
def test_a_wrong_password_or_port_is_a_form_error_naming_it_and_nothing_is_saved(client, dovecot, rep):
    response = connect(client, dovecot, rep, password="wrong")
    assert response.status_code == 422
    assert f"the server refused the username or password for {rep.email}" in response.content.decode()
    response = connect(client, dovecot, rep, port=1)
    assert response.status_code == 422
    assert "127.0.0.1:1: the connection was refused; check the host and port." in response.content.decode()
    assert not Mailbox.objects.filter(owner=rep).exists()


@pytest.mark.django_db
def test_a_failing_mailbox_shows_its_error_escaped_with_a_retry_and_its_skipped_mail(client, dovecot, rep):
    connect(client, dovecot, rep)
    mailbox = Mailbox.objects.get(owner=rep)
    dovecot.deliver(rep.email, [b"\r\n"])
    Mailbox.objects.filter(pk=mailbox.pk).update(sync_state=SyncState.ACTIVE)
    mailbox_sync(mailbox_id=mailbox.pk)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        sync_state=SyncState.FAILING, last_error="IMAP x: <script>alert(1)</script> refused"
    )
    page = client.get(reverse("mail:mailbox_detail", args=[mailbox.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; refused" in page and "<script>alert(1)" not in page
    assert 'data-testid="mailbox-retry"' in page and ">Retry<" in page
    assert "Empty message." in page  # the skipped message and its reason


@pytest.mark.django_db
def test_another_users_mailbox_is_not_found(client, dovecot, rep):
    connect(client, dovecot, rep)
    mailbox = Mailbox.objects.get(owner=rep)
    client.force_login(make_user(username="nosy", email="nosy@ourco.test", role="Admin"))
    assert client.get(reverse("mail:mailbox_detail", args=[mailbox.pk])).status_code == 404
    assert client.post(reverse("mail:mailbox_retry", args=[mailbox.pk])).status_code == 404
    assert rep.email not in client.get(reverse("mail:mailboxes")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_start_import_runs_the_sync_in_a_real_worker(client, dovecot, rep, celery_worker):
    dovecot.deliver(rep.email, (raw(n, to=rep.email) for n in range(30)))
    connect(client, dovecot, rep)
    mailbox = Mailbox.objects.get(owner=rep)
    client.post(reverse("mail:mailbox_start", args=[mailbox.pk]))
    deadline = time.monotonic() + 60
    while not Mailbox.objects.filter(pk=mailbox.pk, last_success_at__isnull=False).exists():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    mailbox.refresh_from_db()
    assert mailbox.last_imported == 30 and MailboxMessage.objects.filter(mailbox=mailbox).count() == 30
    assert mailbox.sync_state == SyncState.ACTIVE and mailbox.sync_lease_until is None


@pytest.mark.django_db
def test_the_dropbox_is_set_up_by_an_admin_and_logs_only_what_users_send_to_it(client, dovecot, imap_user):
    from tests.factories import make_admin

    address, _ = imap_user
    rep = make_user(username="sam", email="sam@ourco.test")
    client.force_login(rep)
    assert client.get(reverse("mail:mailbox_new") + "?dropbox=1").status_code == 403
    client.force_login(make_admin(username="boss", email="boss@ourco.test"))
    data = {**FORM, "email_address": address, "username": address, "imap_port": str(dovecot.port)}
    data["password"] = dovecot.password
    response = client.post(reverse("mail:mailbox_new") + "?dropbox=1", data)
    dropbox = Mailbox.objects.get(kind="dropbox")
    assert response.status_code == 302 and dropbox.owner is None
    assert 'data-testid="dropbox"' in client.get(reverse("mail:mailboxes")).content.decode()
    # Sam BCCs the dropbox on a mail to a customer; a stranger writes to it directly
    bcc = (
        "Message-ID: <bcc1@ourco.test>\r\nFrom: Sam <sam@ourco.test>\r\nTo: Ada <ada@acme.test>\r\n"
        f"Bcc: {address}\r\nSubject: Our offer\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n\r\nHi Ada\r\n"
    ).encode()
    spam = raw(99, to=address).replace(b"Ada <ada@acme.test>", b"Spammer <spam@elsewhere.test>")
    dovecot.deliver(address, [bcc, spam])
    Mailbox.objects.filter(pk=dropbox.pk).update(sync_state=SyncState.ACTIVE, unknown_policy="all")
    result = mailbox_sync(mailbox_id=dropbox.pk)
    assert not result.error and result.imported == 1 and result.folders[0].skipped == 1
    assert list(
        MailboxMessage.objects.filter(mailbox=dropbox).values_list("message__subject", flat=True)
    ) == ["Our offer"]
