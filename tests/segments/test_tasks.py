"""Realtime and scheduled recomputes in a real Celery worker."""

import json
import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from cdp_crm.celery import app
from events.models import Source
from identity.models import Identity, ProfileUpdate
from segments import services, tasks
from segments.models import Membership, Segment
from tests.factories import make_contact, profile_update, stored_page, stored_track
from tests.segments.helpers import members

BOUGHT = {"op": "and", "conditions": [{"type": "event", "name": "Order Completed"}]}


def wait_for(predicate, worker, *, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, worker.output()[-3000:]
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_saving_a_segment_computes_it_in_the_worker(celery_worker):
    contact = make_contact(email="s@x.io")
    stored_track(contact, "Order Completed")
    segment = services.segment_create(actor=None, name="Buyers", definition=BOUGHT)
    wait_for(lambda: Segment.objects.get(pk=segment.pk).last_computed_at is not None, celery_worker)
    assert members(segment) == {contact.pk}


@pytest.mark.django_db(transaction=True)
def test_realtime_membership_follows_a_profile_update_within_seconds(celery_worker):
    # given a computed segment and a contact who is not in it
    contact = make_contact(email="r@x.io")
    segment = services.segment_create(actor=None, name="Buyers", definition=BOUGHT)
    wait_for(lambda: Segment.objects.get(pk=segment.pk).last_computed_at is not None, celery_worker)
    # when the stitching worker records their purchase and calls the configured hook
    stored_track(contact, "Order Completed")
    profile_update(contact)
    started = time.monotonic()
    import_string(django_settings.PROFILE_UPDATE_HOOK)()
    # then the worker puts them in the segment, quickly
    wait_for(
        lambda: Membership.objects.filter(segment=segment, contact=contact, exited_at=None).exists(),
        celery_worker,
    )
    assert time.monotonic() - started < 5
    wait_for(lambda: not ProfileUpdate.objects.exists(), celery_worker)


def test_the_hook_throttles_wake_ups(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.profile_updates_drain, "delay", lambda: sent.append("now"))
    monkeypatch.setattr(
        tasks.profile_updates_drain, "apply_async", lambda countdown: sent.append(round(countdown, 1))
    )
    tasks._wake_up.reset()
    for _ in range(50):  # a burst: one message now, one at the end of the interval
        tasks.profile_updates_wake()
    assert sent == ["now", 0.2] or sent == ["now", 0.3]
    deadline = time.monotonic() + 1.5 * tasks.WAKE_INTERVAL
    while time.monotonic() < deadline:  # one more message covers the next interval, no more
        tasks.profile_updates_wake()
        time.sleep(0.01)
    assert len(sent) == 3


def test_beat_schedules_the_segment_tasks():
    schedule = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "segments.tasks.profile_updates_drain",
        "segments.tasks.segments_refresh_due",
        "segments.tasks.webhook_deliveries_send",
    } <= schedule
    for name in schedule:
        assert name in app.tasks or name.split(".")[0] in {
            "cdp_crm",
            "events",
            "contacts",
            "pipeline",
            "identity",
        }


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_processes_updates_whose_wake_up_was_lost(celery_worker):
    contact = make_contact(email="w@x.io")
    segment = services.segment_create(
        actor=None,
        name="Pricing",
        definition={
            "op": "and",
            "conditions": [
                {"type": "page", "where": [{"property": "path", "operator": "eq", "value": "/pricing"}]}
            ],
        },
    )
    wait_for(lambda: Segment.objects.get(pk=segment.pk).last_computed_at is not None, celery_worker)
    stored_page(contact, "/pricing")
    profile_update(contact)  # no hook call: the wake-up was lost
    tasks.profile_updates_drain.delay()  # what beat sends every 15 s
    wait_for(lambda: members(segment) == {contact.pk}, celery_worker)


@pytest.mark.django_db(transaction=True)
def test_end_to_end_an_event_through_the_api_moves_a_contact_into_a_segment(client, celery_worker):
    """/v1/track -> ingest worker -> stitching -> ProfileUpdate -> hook -> segment membership."""
    source = Source.objects.create(name="Website")
    segment = services.segment_create(actor=None, name="Buyers", definition=BOUGHT)
    wait_for(lambda: Segment.objects.get(pk=segment.pk).last_computed_at is not None, celery_worker)
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    message = {
        "type": "track",
        "userId": user_id,
        "event": "Order Completed",
        "messageId": uuid.uuid4().hex,
        "timestamp": timezone.now().isoformat(),
        "writeKey": source.write_key,
    }
    response = client.post("/v1/track", json.dumps(message), content_type="application/json")
    assert response.status_code == 200

    def member() -> bool:
        identity = Identity.objects.filter(kind="user_id", value=user_id).first()
        return (
            bool(identity)
            and Membership.objects.filter(
                segment=segment, contact_id=identity.contact_id, exited_at=None
            ).exists()
        )

    wait_for(member, celery_worker, seconds=30)
    assert time.monotonic() - started < 10
