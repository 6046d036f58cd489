"""Thin Celery tasks: ids in, services do the work, deleted rows are ignored."""

import time

from celery import shared_task
from django.db import OperationalError

from core.wakeup import WakeUp

from .models import Segment

# The drain loops while rows keep coming, but yields its worker after this long.
DRAIN_BUDGET_SECONDS = 20


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def segment_refresh(segment_id: int) -> None:
    from segments import services

    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:  # deleted after it was queued
        return
    services.segment_refresh(segment=segment)


@shared_task(ignore_result=True)
def segments_refresh_due() -> None:
    from segments import services

    services.segments_refresh_due()


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def profile_updates_drain() -> None:
    """Realtime segment evaluation for contacts the stitching worker changed; also the sweeper."""
    from segments import services

    deadline = time.monotonic() + DRAIN_BUDGET_SECONDS
    while services.profile_updates_process() and time.monotonic() < deadline:
        pass


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def segment_logs_prune() -> None:
    """Beat, hourly: the change log, size samples and webhook delivery log past their retention."""
    from segments.services import logs

    logs.segment_logs_prune()


@shared_task(ignore_result=True)
def webhook_deliveries_send() -> None:
    from segments.services import webhooks

    webhooks.deliveries_send()


# Wake-ups from the stitching worker (settings.PROFILE_UPDATE_HOOK) are throttled per process:
# at most one message per interval. A call inside the interval schedules one message for the
# interval's end (with a countdown), which covers every later call until then, so a busy worker
# sends a few messages a second rather than one per batch and no update waits longer than the
# interval. The beat sweeper covers a lost message.
WAKE_INTERVAL = 0.25
_wake_up = WakeUp(interval=WAKE_INTERVAL, trailing=True)


def profile_updates_wake() -> None:
    countdown = _wake_up.due()
    if countdown is None:
        return  # the scheduled message runs after this caller's commit
    if countdown <= 0:
        profile_updates_drain.delay()
    else:
        profile_updates_drain.apply_async(countdown=countdown)
