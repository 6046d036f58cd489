"""Retention of the segments' logs: the membership change log, the size samples behind the size
chart and the webhook delivery log grow with every recompute and every delivery. Beat prunes
them hourly (`segments.tasks.segment_logs_prune`); the periods are settings:

- SEGMENT_CHANGE_LOG_DAYS (180): entries and exits older than this leave the change log (the
  membership itself keeps `entered_at` / `exited_at`);
- SEGMENT_SIZE_SAMPLE_DAYS (90): the chart shows 30 days;
- SEGMENT_WEBHOOK_LOG_DAYS (30): finished deliveries (delivered or given up) older than this;
  a delivery still being retried is never pruned.

Rows go per segment (or webhook) through their (parent, time) index, in batches of their own
transaction, within a time budget; the next run carries on."""

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from segments.models import DeliveryStatus, MembershipChange, Segment, SizeSample, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

BATCH = 5_000


def _prune(queryset: QuerySet, *, deadline: float) -> int:
    deleted = 0
    while time.monotonic() < deadline:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:BATCH])
            if not ids:
                break
            count, _ = queryset.model.objects.filter(pk__in=ids).delete()
            deleted += count
        if len(ids) < BATCH:
            break
    return deleted


def segment_logs_prune(*, now: dt.datetime | None = None, budget_seconds: float = 120.0) -> dict[str, int]:
    """Delete log rows past their retention. Returns rows deleted per log."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget_seconds
    changes_before = now - dt.timedelta(days=settings.SEGMENT_CHANGE_LOG_DAYS)
    samples_before = now - dt.timedelta(days=settings.SEGMENT_SIZE_SAMPLE_DAYS)
    deliveries_before = now - dt.timedelta(days=settings.SEGMENT_WEBHOOK_LOG_DAYS)
    deleted = {"changes": 0, "size_samples": 0, "deliveries": 0}
    for segment_id in Segment.objects.order_by("pk").values_list("pk", flat=True):
        changes = MembershipChange.objects.filter(segment_id=segment_id, at__lt=changes_before)
        deleted["changes"] += _prune(changes, deadline=deadline)
        samples = SizeSample.objects.filter(segment_id=segment_id, at__lt=samples_before)
        deleted["size_samples"] += _prune(samples, deadline=deadline)
    for webhook_id in Webhook.objects.order_by("pk").values_list("pk", flat=True):
        deliveries = WebhookDelivery.objects.filter(
            webhook_id=webhook_id, created_at__lt=deliveries_before
        ).exclude(status=DeliveryStatus.PENDING)
        deleted["deliveries"] += _prune(deliveries, deadline=deadline)
    if any(deleted.values()):
        logger.info("segment logs pruned: %s", deleted)
    return deleted
