"""The realtime path through a real Celery worker: an ingested event updates the contact's trait
(and a segment on it) without a recompute."""

import time

import pytest

from events.models import Source
from identity.models import Identity
from segments import services as segment_services
from tests.factories.events import send, track_payload
from tests.segments.helpers import members
from tests.traits.helpers import make_trait, values_of

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(condition, worker, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"{what}\n" + worker.output()[-3000:]
        time.sleep(0.1)


def test_an_ingested_event_updates_the_trait_and_the_segment_on_it(client, celery_worker):
    source = Source.objects.create(name="Website")
    make_trait("orders", "count", event_type="track", event_name="Order Completed")
    make_trait("revenue", "sum", property="total", event_name="Order Completed")
    segment = segment_services.segment_create(
        actor=None,
        name="Repeat buyers",
        definition={
            "op": "and",
            "conditions": [{"type": "computed_trait", "trait": "orders", "operator": "gte", "value": 2}],
        },
    )
    send(
        client, source, track_payload("Order Completed", anonymous_id="rt-1", properties={"total": 42}, at=0)
    )

    def contact():
        identity = (
            Identity.objects.filter(kind="anonymous_id", value="rt-1").select_related("contact").first()
        )
        return identity.contact if identity else None

    _wait(lambda: contact() is not None and values_of(contact())["orders"] == 1, celery_worker, "first order")
    assert values_of(contact())["revenue"] == 42
    assert members(segment) == set()
    send(client, source, track_payload("Order Completed", anonymous_id="rt-1", properties={"total": 8}, at=1))
    _wait(lambda: values_of(contact())["orders"] == 2, celery_worker, "second order")
    assert values_of(contact())["revenue"] == 50
    # the same drain refreshed the trait before re-evaluating the segment
    _wait(lambda: members(segment) == {contact().pk}, celery_worker, "segment entry")
