"""Retention of the segments' logs (segments/services/logs.py): change log, size samples, webhook
deliveries."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from segments import tasks
from segments.models import (
    ChangeKind,
    DeliveryStatus,
    MembershipChange,
    Segment,
    SizeSample,
    Webhook,
    WebhookDelivery,
)
from segments.services import logs
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _world():
    """Two segments with change-log rows and size samples of every age, a webhook with deliveries
    finished long ago, recently, and one still being retried since long ago."""
    contact = make_contact(email="logs.q9@example.org")
    rows = {}
    for name in ("A", "B"):
        segment = Segment.objects.create(name=name)
        for days in (200, 179, 1):
            at = NOW - dt.timedelta(days=days)
            rows[(name, "change", days)] = MembershipChange.objects.create(
                segment=segment, contact=contact, kind=ChangeKind.ENTERED, at=at
            ).pk
        for days in (100, 89, 0):
            at = NOW - dt.timedelta(days=days)
            rows[(name, "size", days)] = SizeSample.objects.create(segment=segment, at=at, size=days).pk
    webhook = Webhook.objects.create(segment=segment, url="https://hooks.example.com/x", secret="s")
    for key, status, days in (
        ("delivered-old", DeliveryStatus.SUCCEEDED, 40),
        ("failed-old", DeliveryStatus.FAILED, 31),
        ("pending-old", DeliveryStatus.PENDING, 45),
        ("delivered-new", DeliveryStatus.SUCCEEDED, 29),
    ):
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            message_id=f"msg_{key}",
            event_type="segment.entered",
            payload={},
            status=status,
            next_attempt_at=NOW,
        )
        # created_at is auto_now_add: set the age afterwards
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=NOW - dt.timedelta(days=days))
        rows[("delivery", key)] = delivery.pk
    return rows


def test_rows_past_their_retention_go_the_rest_stay():
    rows = _world()
    # when the logs are pruned with the default periods (180, 90 and 30 days)
    deleted = logs.segment_logs_prune(now=NOW)
    # then the old change-log rows and samples of both segments are gone, and finished deliveries
    # older than 30 days; a delivery still being retried stays however old
    assert deleted == {"changes": 2, "size_samples": 2, "deliveries": 2}
    assert set(MembershipChange.objects.values_list("pk", flat=True)) == {
        rows[(s, "change", d)] for s in "AB" for d in (179, 1)
    }
    assert set(SizeSample.objects.values_list("pk", flat=True)) == {
        rows[(s, "size", d)] for s in "AB" for d in (89, 0)
    }
    assert set(WebhookDelivery.objects.values_list("message_id", flat=True)) == {
        "msg_pending-old",
        "msg_delivered-new",
    }
    # and a second run finds nothing
    assert logs.segment_logs_prune(now=NOW) == {"changes": 0, "size_samples": 0, "deliveries": 0}


def test_the_periods_are_settings_and_batches_and_the_budget_hold(settings, monkeypatch):
    _world()
    settings.SEGMENT_CHANGE_LOG_DAYS = 2
    settings.SEGMENT_SIZE_SAMPLE_DAYS = 1
    settings.SEGMENT_WEBHOOK_LOG_DAYS = 100
    # a run without budget deletes nothing
    assert logs.segment_logs_prune(now=NOW, budget_seconds=0) == {
        "changes": 0,
        "size_samples": 0,
        "deliveries": 0,
    }
    # batches of one still get everything
    monkeypatch.setattr(logs, "BATCH", 1)
    assert logs.segment_logs_prune(now=NOW) == {"changes": 4, "size_samples": 4, "deliveries": 0}
    assert sorted(MembershipChange.objects.values_list("at", flat=True)) == [NOW - dt.timedelta(days=1)] * 2


def test_beat_prunes_hourly_on_the_default_queue():
    from cdp_crm.celery import app

    entry = app.conf.beat_schedule["segment-logs-prune"]
    assert entry["task"] == "segments.tasks.segment_logs_prune" and entry["schedule"] <= 3600
    assert app.conf.task_routes["segments.tasks.segment_logs_prune"] == {"queue": "default"}


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_prune(celery_worker):
    segment = Segment.objects.create(name="Old log")
    contact = make_contact(email="logs.worker.q9@example.org")
    old = MembershipChange.objects.create(
        segment=segment, contact=contact, kind=ChangeKind.EXITED, at=timezone.now() - dt.timedelta(days=400)
    )
    recent = MembershipChange.objects.create(
        segment=segment, contact=contact, kind=ChangeKind.ENTERED, at=timezone.now()
    )
    # when beat sends the task and the worker runs it
    tasks.segment_logs_prune.apply_async()
    deadline = time.monotonic() + 30
    while MembershipChange.objects.filter(pk=old.pk).exists():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    assert list(MembershipChange.objects.values_list("pk", flat=True)) == [recent.pk]
