import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

# Drain in slices and stop after a time budget, well inside the task time limit; the next
# wake-up or the beat sweep carries on.
DRAIN_BATCH = 2000
DRAIN_SECONDS = 60
# Once the queue is empty a drain keeps looking for this long: the API sends at most one wake-up
# per process per services.queue.WAKE_UP_INTERVAL_SECONDS, so events committed just after a wake-up
# rely on this tail (it must stay longer than that interval).
IDLE_POLL_SECONDS = 1.0
IDLE_POLL_STEP = 0.1


@shared_task(
    ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=8
)
def ingest_drain() -> int:
    """Process queued events. Wake-ups come on commit of each request; beat runs it as the sweeper
    every 30 s, so events whose wake-up Redis lost are still processed."""
    from events import services

    done = 0
    now = time.monotonic()
    deadline = now + DRAIN_SECONDS
    idle_until = now + IDLE_POLL_SECONDS
    while (now := time.monotonic()) < deadline:
        processed = services.ingest_queue_process(limit=DRAIN_BATCH)
        done += processed
        if processed:
            idle_until = now + IDLE_POLL_SECONDS
        elif now >= idle_until:
            break
        if processed < DRAIN_BATCH:
            time.sleep(IDLE_POLL_STEP)
    return done


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True)
def event_dedup_expire() -> int:
    from events import services

    return services.event_dedup_expire()


@shared_task(
    ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=5
)
def events_retention_enforce() -> int:
    """Beat, hourly: delete events past their source's retention (a time-boxed run; the next one
    continues). Every batch commits on its own, so a retried or redelivered run redoes nothing."""
    from events import services

    return services.events_retention_enforce()


@shared_task(
    ignore_result=True, autoretry_for=(OperationalError, InterfaceError), retry_backoff=True, max_retries=5
)
def event_partitions_ensure() -> int:
    """Beat, hourly: the event log's partitions for this month and the next three (and for any
    month found in the DEFAULT partition). Idempotent; a lock it cannot get soon fails the run
    (OperationalError) and the retry or the next hour carries on."""
    from events import services

    return len(services.event_partitions_ensure())
