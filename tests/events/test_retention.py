"""Event retention per source: old events go in batches with their queue rows and identity's
projections, the rollups of the days they counted in are rebuilt, other sources are untouched."""

import datetime as dt
import itertools
import json
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from events import services, tasks
from events.models import Event, IngestBatch, Source
from events.selectors import queued_event_ids
from identity.models import ContactEvent, DailyActivity, ProfileUpdate
from identity.services.projection import daily_activity_recompute
from tests.factories import make_user
from tests.identity.helpers import drain, live

_seq = itertools.count(1)
NOW = timezone.now()


def stored(
    source: Source, *, days_ago: float, path: str = "/pricing", anonymous_id: str = "a1", **fields
) -> Event:
    """An event as the API stores it, received `days_ago` (the API always stamps now)."""
    when = NOW - dt.timedelta(days=days_ago)
    event = Event.objects.create(
        source=source,
        message_id=f"m{next(_seq)}",
        type=fields.pop("type", "page"),
        anonymous_id=anonymous_id,
        properties={"path": path},
        timestamp=when,
        received_at=when,
        **fields,
    )
    IngestBatch.objects.create(event_ids=[event.pk], size=1, enqueued_at=when)
    return event


def rollups(contact_ids) -> set[tuple]:
    return set(
        DailyActivity.objects.filter(contact_id__in=contact_ids).values_list(
            "contact_id", "day", "kind", "key", "count"
        )
    )


def keep_for(source: Source, days: int | None) -> Source:
    return services.source_privacy_update(
        actor=None, source=source, require_consent=False, honor_gpc=False, retention_days=days
    )


@pytest.mark.django_db
def test_old_events_go_recent_stay_rollups_match_a_recompute_other_sources_untouched():
    # given a web source keeping 30 days and a server source keeping everything, one person on
    # both, with page views on the same old day from each source
    web = keep_for(Source.objects.create(name="Web"), 30)
    server = Source.objects.create(name="Server")
    old_web = [
        stored(web, days_ago=40),
        stored(web, days_ago=40),
        stored(web, days_ago=40, type="track", event="Signed Up"),
    ]
    old_server = stored(server, days_ago=40)
    recent = stored(web, days_ago=29)
    drain()
    (person,) = live()
    old_day = old_server.timestamp.astimezone(dt.UTC).date()
    assert (person.pk, old_day, "page", "/pricing", 3) in rollups([person.pk])
    # and an old event whose processing is still queued, in one batch with a recent one
    stuck = stored(web, days_ago=35, anonymous_id="a2")
    recent_queued = stored(web, days_ago=1, anonymous_id="a3")
    IngestBatch.objects.filter(event_ids__overlap=[stuck.pk, recent_queued.pk]).delete()
    IngestBatch.objects.create(event_ids=[stuck.pk, recent_queued.pk], size=2, enqueued_at=NOW)
    # when retention runs
    deleted = services.events_retention_enforce(now=NOW)
    # then the web source's old events, their queue row and their projections are gone
    assert deleted == 4
    gone = [e.pk for e in old_web] + [stuck.pk]
    assert not Event.objects.filter(pk__in=gone).exists()
    assert not ContactEvent.objects.filter(event_id__in=gone).exists()
    # (the batch it shared with a recent event keeps only that one)
    assert queued_event_ids() == [recent_queued.pk]
    assert list(IngestBatch.objects.values_list("event_ids", "size")) == [([recent_queued.pk], 1)]
    # the recent ones and the other source's old one stay
    assert set(Event.objects.values_list("pk", flat=True)) == {old_server.pk, recent.pk, recent_queued.pk}
    # and the old day now counts only the server's view, as a recompute from scratch would
    after = rollups([person.pk])
    assert (person.pk, old_day, "page", "/pricing", 1) in after
    assert not any(r[3] == "Signed Up" for r in after)
    daily_activity_recompute(contact_ids=[person.pk])
    assert rollups([person.pk]) == after
    # and a second run finds nothing more
    assert services.events_retention_enforce(now=NOW) == 0


@pytest.mark.django_db
def test_batches_and_the_time_budget():
    web = keep_for(Source.objects.create(name="Web"), 7)
    for i in range(7):
        stored(web, days_ago=10, anonymous_id=f"v{i}")
    drain()
    # a run without budget starts nothing
    assert services.events_retention_enforce(now=NOW, budget_seconds=0) == 0
    assert Event.objects.count() == 7
    # batches of 3 delete them all (3 + 3 + 1)
    assert services.events_retention_enforce(now=NOW, batch_size=3) == 7
    assert Event.objects.count() == 0 and ContactEvent.objects.count() == 0
    assert DailyActivity.objects.count() == 0


@pytest.mark.django_db
def test_sources_form_and_api_set_retention_and_consent(client):
    source = Source.objects.create(name="Web")
    client.force_login(make_user(role="Marketing", username="mia"))
    # the form: bad retention is a form error, nothing saved
    url = reverse("events:source_edit", args=[source.pk])
    response = client.post(url, {"name": "Web", "kind": "web", "enabled": "on", "retention_days": "0"})
    assert response.status_code == 400 and "retention_days" in response.context["form"].errors
    response = client.post(
        url,
        {
            "name": "Web",
            "kind": "web",
            "enabled": "on",
            "retention_days": "90",
            "require_consent": "on",
            "honor_gpc": "on",
        },
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.retention_days, source.require_consent, source.honor_gpc) == (90, True, True)
    page = client.get(reverse("events:source_detail", args=[source.pk]))
    assert 'consent:"required",respectGPC:true}' in page.context["snippet"]
    # the API: a 400 naming the field, then a partial update
    api = f"/api/v1/sources/{source.pk}/privacy/"
    response = client.patch(api, json.dumps({"retention_days": -3}), content_type="application/json")
    assert response.status_code == 400 and "retention_days" in response.json()["fields"]
    response = client.patch(
        api, json.dumps({"retention_days": None, "honor_gpc": False}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": source.pk,
        "require_consent": True,
        "honor_gpc": False,
        "retention_days": None,
    }
    listed = client.get("/api/v1/sources/").json()["results"][0]
    assert listed["require_consent"] is True and 'consent:"required"}' in listed["snippet"]
    # Sales may not change it
    client.force_login(make_user(username="sam"))
    assert (
        client.patch(api, json.dumps({"retention_days": 1}), content_type="application/json").status_code
        == 403
    )
    source.refresh_from_db()
    assert source.retention_days is None


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_beat_task(celery_worker):
    web = keep_for(Source.objects.create(name="Web"), 1)
    old = [stored(web, days_ago=3, anonymous_id=f"v{i}") for i in range(3)]
    fresh = stored(web, days_ago=0)
    drain()
    # when beat sends the task (by name, as beat does) and the worker runs it
    tasks.events_retention_enforce.apply_async()
    deadline = time.monotonic() + 30
    while Event.objects.filter(pk__in=[e.pk for e in old]).exists():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    # then the old events and their projections are gone, the fresh one kept
    assert list(Event.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert list(ContactEvent.objects.values_list("event_id", flat=True)) == [fresh.pk]
    # the people it touched were handed to segments, which the worker drains: let it finish
    # before the test database is flushed under it
    while ProfileUpdate.objects.exists():
        assert time.monotonic() < deadline + 30, celery_worker.output()[-3000:]
        time.sleep(0.1)
