"""Celery tasks of sending from the CRM (thin: ids in, mail.services.sending does the work; safe to
run twice, the claim makes a second run a no-op). The mailbox sync's tasks live in mail/tasks.py."""

from celery import shared_task
from django.db import OperationalError


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
