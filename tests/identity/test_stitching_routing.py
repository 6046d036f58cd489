"""The ingest queue's routing (settings.INGEST_ROUTING, identity.services.stitching.ingest_route_sql):
the events of a person the graph knows are queued in their contact's slice, whichever device or
identifier they come from, so two drains taking different slices stitch different people."""

import pytest

from events.models import Event, IngestBatch
from events.services import queue
from identity.models import ContactEvent
from tests.factories import identify_payload, page_payload, send
from tests.identity.helpers import drain, live

pytestmark = pytest.mark.django_db


def _slices() -> dict[int, list[int]]:
    return dict(IngestBatch.objects.values_list("slice", "event_ids"))


def test_a_known_persons_events_from_both_devices_are_queued_in_their_contacts_slice(
    client, source, paused_worker
):
    # given a person whose two devices identified as one user (their contacts merged)
    send(
        client,
        source,
        identify_payload({"email": "ada@example.com"}, anonymous_id="phone", user_id="u-ada", at=0),
        identify_payload({"email": "ada@example.com"}, anonymous_id="laptop", user_id="u-ada", at=1),
    )
    drain()
    (ada,) = live()
    # when each device sends a page view (no user id), and an unknown visitor one, in one request
    send(
        client,
        source,
        page_payload("/pricing", anonymous_id="phone", at=2),
        page_payload("/docs", anonymous_id="laptop", at=3),
        page_payload("/", anonymous_id="someone-new", at=4),
    )
    # then both of the person's events are in one batch, in the slice of their contact
    slices = _slices()
    known = slices[ada.pk % queue.QUEUE_SLICES]
    devices = dict(Event.objects.filter(pk__in=known).values_list("anonymous_id", "pk"))
    assert {"phone", "laptop"} <= set(devices)
    # and everything queued is stitched once, the person's views on their contact
    drain()
    assert not IngestBatch.objects.exists()
    views = ContactEvent.objects.filter(contact=ada, type="page").values_list("path", flat=True)
    assert sorted(views) == ["/docs", "/pricing"]
