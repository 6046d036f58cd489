from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=8
)
def person_erase_task(request_id: int) -> None:
    """Thin: the service is idempotent and resumable, and leaves a done or deleted request alone."""
    from privacy import services  # inside the task: services import this module at its top

    services.person_erase(request_id=request_id)
