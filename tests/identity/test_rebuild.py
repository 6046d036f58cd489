"""rebuild_identity replays the event log and must stitch exactly as the incremental worker did."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from contacts.models import Contact
from events import services as event_services
from events.ingest.parse import normalise
from events.models import Event, Source
from identity.models import RebuildState
from identity.services import rebuild
from identity.services.stitching import events_process
from pipeline.models import Deal
from tests.factories import identify_payload, make_contact, make_pipeline, page_payload, send
from tests.identity.helpers import drain, event_paths, graph, live

pytestmark = pytest.mark.django_db


def test_rebuild_reproduces_the_graph_and_keeps_crm_data(client, source, admin_user):
    # given a CRM contact with a deal, and traffic that merges, refuses and creates visitors
    crm = make_contact(email="kim@example.com", owner=admin_user)
    stage = make_pipeline().stages.first()
    deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Kim's", contact=crm)
    send(
        client,
        source,
        page_payload("/", anonymous_id="k-browser", at=0),
        identify_payload({"email": "KIM@example.com"}, anonymous_id="k-browser", user_id="kim", at=1),
        page_payload("/", anonymous_id="kiosk", at=2),
        identify_payload({}, anonymous_id="kiosk", user_id="a", at=3),
        identify_payload({}, anonymous_id="kiosk", user_id="b", at=4),
        page_payload("/solo", anonymous_id="solo", at=5),
    )
    drain()
    incremental = graph()
    assert incremental["merges"] == 1
    # when the graph is rebuilt from the events
    out = StringIO()
    call_command("rebuild_identity", stdout=out)
    # then it is the same graph, the CRM contact and its deal survive, and the replay is finished
    assert graph() == incremental
    assert Contact.objects.filter(pk=crm.pk, merged_into__isnull=True).exists()
    assert event_paths(crm) == ["/"]
    assert Deal.objects.get(pk=deal.pk).contact_id == crm.pk
    assert "replayed 6 events" in out.getvalue()
    assert RebuildState.objects.get().finished_at is not None


def test_an_interrupted_rebuild_resumes_from_its_checkpoint(client, source):
    send(client, source, *[page_payload(f"/p{i}", anonymous_id=f"a{i % 3}", at=i) for i in range(7)])
    send(
        client,
        source,
        identify_payload({}, anonymous_id="a0", user_id="u", at=8),
        identify_payload({}, anonymous_id="a1", user_id="u", at=9),
    )
    drain()
    incremental = graph()
    # given a rebuild that stops after its first batch (a crash)
    rebuild.identity_reset()

    class Crash(Exception):
        pass

    def crash(done, last):
        raise Crash

    with pytest.raises(Crash):
        rebuild.identity_replay(batch_size=4, progress=crash)
    assert RebuildState.objects.get().last_event_id == Event.objects.order_by("pk")[3].pk
    # when it runs again
    out = StringIO()
    call_command("rebuild_identity", "--batch-size", "4", stdout=out)
    # then it resumes, and ends where incremental processing did
    assert "resuming" in out.getvalue()
    assert graph() == incremental


# --- property: any event sequence, in any batching, rebuilds to the same graph

ANONYMOUS_IDS = ["a1", "a2", "a3", "a4"]
USER_IDS = ["u1", "u2", "u3"]
EMAILS = ["p@example.com", "q@example.com", "P@EXAMPLE.COM"]

messages = st.one_of(
    st.builds(
        lambda anon, user, path: {
            "type": "page",
            "anonymousId": anon,
            "userId": user,
            "properties": {"path": path},
        },
        st.sampled_from(ANONYMOUS_IDS),
        st.one_of(st.none(), st.sampled_from(USER_IDS)),
        st.sampled_from(["/", "/pricing"]),
    ),
    st.builds(
        lambda anon, user, email: {
            "type": "identify",
            "anonymousId": anon,
            "userId": user,
            "traits": {"email": email} if email else {},
        },
        st.one_of(st.none(), st.sampled_from(ANONYMOUS_IDS)),
        st.sampled_from(USER_IDS),
        st.one_of(st.none(), st.sampled_from(EMAILS)),
    ),
    st.builds(
        lambda anon, user: {"type": "alias", "previousId": anon, "userId": user},
        st.sampled_from(ANONYMOUS_IDS + USER_IDS),
        st.sampled_from(USER_IDS),
    ),
    st.builds(
        lambda anon: {"type": "track", "anonymousId": anon, "event": "Clicked"},
        st.sampled_from(ANONYMOUS_IDS),
    ),
)


def _store(raw_messages: list[dict]) -> list[int]:
    source = Source.objects.create(name="prop")
    now = datetime(2026, 11, 3, tzinfo=UTC)
    stored = []
    for n, raw in enumerate(raw_messages):
        raw = {k: v for k, v in raw.items() if v is not None}
        raw.update(messageId=uuid.uuid4().hex, timestamp=(now + timedelta(seconds=n)).isoformat())
        message = normalise(raw, received_at=now)
        event_services.events_store(source=source, messages=[message], rejections=[], received_at=now)
    stored = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    return stored


class _Rollback(Exception):
    pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw_messages=st.lists(messages, min_size=1, max_size=14),
    cuts=st.lists(st.integers(min_value=1, max_value=13), max_size=4),
    crm_email=st.booleans(),
)
def test_rebuild_equals_incremental_processing_for_any_event_sequence(raw_messages, cuts, crm_email):
    try:
        with transaction.atomic():
            if crm_email:
                make_contact(email="p@example.com")
            ids = _store(raw_messages)
            # incremental: in arbitrary batches, as the worker might claim them
            bounds = sorted({0, len(ids), *[c for c in cuts if c < len(ids)]})
            for start, end in itertools.pairwise(bounds):
                events_process(event_ids=ids[start:end])
            incremental = graph()
            # rebuild: everything again from scratch
            rebuild.identity_reset()
            rebuild.identity_replay(batch_size=5)
            assert graph() == incremental
            # no live person holds two user ids, and one identity is one person
            for contact in live():
                assert len([1 for k, _ in _identities(contact) if k == "user_id"]) <= 1
            # steer the search towards sequences that merge people (the interesting ones)
            target(float(incremental["merges"]))
            raise _Rollback
    except _Rollback:
        pass


def _identities(contact):
    from tests.identity.helpers import identities

    return identities(contact)
