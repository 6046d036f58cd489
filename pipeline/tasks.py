from celery import shared_task
from django.db import OperationalError


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def tasks_send_reminders() -> int:
    """Beat, every minute: email assignees about tasks due soon. Safe to run twice at once."""
    from pipeline.services import activities

    return activities.tasks_send_reminders()
