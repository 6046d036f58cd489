from smtplib import SMTPException

from celery import shared_task
from django.db import OperationalError


@shared_task(
    ignore_result=True,
    autoretry_for=(OperationalError, SMTPException, OSError),
    retry_backoff=True,
    max_retries=8,
)
def notification_email_send(notification_id: int) -> None:
    """Email a notification; a deleted one, or one already sent, is skipped."""
    from accounts.services import notifications

    notifications.notification_email_send(notification_id=notification_id)
