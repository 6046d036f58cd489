"""Erasure's deletes by id carry each event's received_at, so every statement is planned on the
months its batch falls in (an id alone is probed in every monthly partition)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import services
from events.models import Event, IngestQueue
from events.services import erasure, partitions
from identity import services as identity_services
from identity.models import ContactEvent
from tests.factories import make_contact
from tests.factories.identity import stored_page

THIS_MONTH = partitions.month_start(timezone.now())


def month(offset: int, day: int = 10) -> dt.datetime:
    return partitions.month_add(THIS_MONTH, offset) + dt.timedelta(days=day, hours=3)


@pytest.mark.django_db
def test_a_persons_events_go_in_received_order_with_bounds_and_their_rows_with_them(monkeypatch):
    services.event_partitions_ensure(now=partitions.month_add(THIS_MONTH, -3), ahead=3)
    person, other = make_contact(email="p@bounds.test"), make_contact(email="o@bounds.test")
    theirs = [stored_page(person, "/x", at=at) for at in (month(-1), month(-3), month(-2), month(-3, day=20))]
    others = [stored_page(other, "/y", at=at) for at in (month(-3), month(-1))]
    IngestQueue.objects.create(event_id=theirs[0].pk, enqueued_at=timezone.now(), attempts=1)
    # the projection gives each event's received_at, oldest received first
    found = identity_services.person_events(contact_ids=[person.pk], limit=10)
    assert found == sorted(((e.pk, e.received_at) for e in theirs), key=lambda pair: (pair[1], pair[0]))
    # when they are deleted in batches of two, with their received_at
    monkeypatch.setattr(erasure, "DELETE_BATCH", 2)
    with CaptureQueriesContext(connection) as queries:
        counts = erasure.events_delete(event_ids=[e for e, _ in found], received_at=[r for _, r in found])
    # then the events, their projections and queue rows are gone, the other person's stay
    # (the queue row went first, through ingest_batches_forget, as on the path without bounds)
    assert counts == {"events.Event": 4, "identity.ContactEvent": 4}
    assert not IngestQueue.objects.exists()
    assert not Event.objects.filter(pk__in=[e.pk for e in theirs]).exists()
    assert not ContactEvent.objects.filter(contact=person).exists()
    assert set(Event.objects.values_list("pk", flat=True)) == {e.pk for e in others}
    assert ContactEvent.objects.filter(contact=other).count() == 2
    # and every statement on the event log or the projection carried the batch's bounds
    touching = [q["sql"] for q in queries.captured_queries if "DELETE" in q["sql"] or "SELECT" in q["sql"]]
    on_log = [sql for sql in touching if '"events_event"' in sql or '"identity_contactevent"' in sql]
    assert on_log and all('"received_at" >=' in sql and '"received_at" <=' in sql for sql in on_log)
