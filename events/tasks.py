import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Drain in slices and stop after a time budget, well inside the task time limit; the next
# wake-up or the beat sweep carries on.
DRAIN_BATCH = 500
DRAIN_SECONDS = 60


@shared_task(
    ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=8
)
def ingest_drain() -> int:
    """Process queued events. Wake-ups come on commit of each request; beat runs it as the sweeper
    every 30 s, so events whose wake-up Redis lost are still processed."""
    from events import services

    done = 0
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        processed = services.ingest_queue_process(limit=DRAIN_BATCH)
        done += processed
        if processed < DRAIN_BATCH:
            break
    return done


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True)
def event_dedup_expire() -> int:
    from events import services

    return services.event_dedup_expire()
