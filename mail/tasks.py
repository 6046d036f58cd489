"""Thin Celery tasks: ids in, services do the work, deleted rows are ignored."""

from celery import shared_task
from django.db import OperationalError


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def mailbox_sync(mailbox_id: int) -> None:
    """One run over a mailbox (its lease makes a second, concurrent one return at once). A first
    import bigger than a run's budget continues in a fresh task right away, so other mailboxes'
    runs interleave with it instead of waiting for the whole import."""
    from mail.models import Mailbox
    from mail.services import sync

    if not Mailbox.objects.filter(pk=mailbox_id).exists():
        return
    result = sync.mailbox_sync(mailbox_id=mailbox_id)
    if result.ran and result.more and not result.error:
        mailbox_sync.delay(mailbox_id)


@shared_task(ignore_result=True)
def mailboxes_sync() -> None:
    """Beat: a run for every mailbox that syncs (held ones return at once)."""
    from mail.services import sync

    for mailbox_id in sync.mailboxes_due():
        mailbox_sync.delay(mailbox_id)


# --- sending from the CRM (a second run is a no-op: the send's claim)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def send_deliver_task(send_id: int) -> None:
    from mail.services import sending  # sending imports this module

    sending.send_deliver(send_id=send_id)


@shared_task(ignore_result=True)
def sends_deliver_due() -> None:
    """Beat, every minute: fail sends a dead worker left SENDING, queue the ones now due."""
    from mail.services import sending

    sending.sends_stale_fail()
    for send_id in sending.sends_due():
        send_deliver_task.delay(send_id)
