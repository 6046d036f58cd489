from celery import shared_task
from django.db import OperationalError

from contacts.models import ImportJob


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def contact_import_run(job_id: int) -> None:
    """Run (or resume) a CSV import; long files continue in a fresh task every couple of minutes."""
    from contacts.services import importing  # importing queues this task

    if not ImportJob.objects.filter(pk=job_id).exists():  # deleted after it was queued
        return
    try:
        more = importing.import_run(job_id=job_id)
    except OperationalError:
        raise  # the database went away: retried, and the run resumes after the last batch
    except Exception as exc:
        importing.import_fail(job_id=job_id, reason=f"{type(exc).__name__}: {exc}")
        raise
    if more:
        contact_import_run.delay(job_id)


@shared_task(ignore_result=True)
def contact_import_sweep() -> None:
    """Beat: re-queue imports whose message or worker was lost; drop abandoned drafts."""
    from contacts.services import importing

    for job_id in importing.import_sweep():
        contact_import_run.delay(job_id)
