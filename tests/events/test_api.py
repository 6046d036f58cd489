"""The tracking API driven the way real clients call it."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.utils import IntegrityError

from events.models import Event, EventDedup, RejectedEvent, Source
from events.selectors import queued_event_ids
from events.services import ingest_caches_reset


@pytest.fixture
def client(api_client):
    return api_client


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _track_payload(**extra):
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "messageId": uuid.uuid4().hex,
        "properties": {"total": 42},
        **extra,
    }


def test_rudderstack_python_style_basic_auth_gzip_batch(client, source):
    # given a gzipped batch with Basic auth, as RudderStack's Python SDK sends it
    batch = [
        _track_payload(),
        {"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {"email": "A@x.io"}},
    ]
    body = gzip.compress(json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()}).encode())
    # when it is posted
    response = client.post(
        "/v1/batch",
        body,
        content_type="application/json",
        headers={"Authorization": _basic(source.write_key), "Content-Encoding": "gzip"},
    )
    # then both events are stored and queued for processing
    assert response.status_code == 200 and response.json() == {"success": True}
    stored = Event.objects.order_by("type")
    assert [(e.type, e.user_id) for e in stored] == [("identify", "u1"), ("track", "u1")]
    assert stored[0].traits == {"email": "A@x.io"}
    assert queued_event_ids() == sorted(e.pk for e in stored)


def test_segment_python_style_basic_auth_plus_body_write_key(client, source):
    payload = {
        "batch": [_track_payload()],
        "writeKey": source.write_key,
        "sentAt": datetime.now(UTC).isoformat(),
    }
    response = client.post(
        "/v1/batch", json.dumps(payload), content_type="application/json",
        headers={"Authorization": _basic(source.write_key)},
    )  # fmt: skip
    assert response.status_code == 200
    assert Event.objects.get().event == "Order Completed"


@pytest.mark.parametrize("path", ["/v1/t", "/v1/b"])
def test_browser_text_plain_with_body_write_key(client, source, path):
    message = _track_payload(anonymousId="anon-1", userId=None)
    payload = (
        {"batch": [message], "writeKey": source.write_key}
        if path == "/v1/b"
        else {**message, "writeKey": source.write_key}
    )
    response = client.post(
        path, json.dumps(payload), content_type="text/plain", headers={"Origin": "https://shop.example"}
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    event = Event.objects.get()
    assert (event.anonymous_id, event.user_id) == ("anon-1", "")


def test_cors_preflight(client):
    response = client.options("/v1/t", headers={"Origin": "https://shop.example"})
    assert response.status_code == 204
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response


def test_retried_batch_is_stored_once(client, source):
    payload = json.dumps({"batch": [_track_payload(), _track_payload()], "writeKey": source.write_key})
    for _ in range(3):
        assert client.post("/v1/batch", payload, content_type="application/json").status_code == 200
    assert Event.objects.count() == 2
    assert EventDedup.objects.count() == 2


def test_same_message_id_twice_in_one_batch_is_stored_once(client, source):
    message = _track_payload()
    payload = json.dumps({"batch": [message, message], "writeKey": source.write_key})
    assert client.post("/v1/batch", payload, content_type="application/json").status_code == 200
    assert Event.objects.count() == 1


def test_a_message_without_id_gets_a_stable_derived_one(client, source):
    message = {k: v for k, v in _track_payload().items() if k != "messageId"}
    payload = json.dumps({**message, "writeKey": source.write_key})
    client.post("/v1/track", payload, content_type="application/json")
    client.post("/v1/track", payload, content_type="application/json")
    event = Event.objects.get()
    assert event.message_id.startswith("derived-")


def test_invalid_json_is_400_and_stores_nothing(client, source):
    response = client.post(
        "/v1/track",
        "{not json",
        content_type="application/json",
        headers={"Authorization": _basic(source.write_key)},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert Event.objects.count() == 0 and RejectedEvent.objects.count() == 0


def test_unknown_or_disabled_write_key_is_401(client, source):
    response = client.post(
        "/v1/track", json.dumps({**_track_payload(), "writeKey": "nope"}), content_type="application/json"
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_write_key"
    Source.objects.filter(pk=source.pk).update(enabled=False)
    ingest_caches_reset()  # forget the write key cached while the source was enabled
    response = client.post(
        "/v1/track",
        json.dumps({**_track_payload(), "writeKey": source.write_key}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_body_over_the_cap_is_413_before_parsing(client, source):
    body = b'{"writeKey": "' + source.write_key.encode() + b'", "batch": [' + b" " * 600_000 + b"]}"
    response = client.post("/v1/batch", body, content_type="application/json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_gzip_bomb_is_413(client, source):
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    assert len(bomb) < 50_000
    response = client.post(
        "/v1/batch", bomb, content_type="application/json",
        headers={"Authorization": _basic(source.write_key), "Content-Encoding": "gzip"},
    )  # fmt: skip
    assert response.status_code == 413


def test_invalid_events_in_a_valid_batch_are_rejected_with_reasons_and_the_rest_stored(client, source):
    batch = [
        _track_payload(),
        {"type": "track", "event": "No ids", "messageId": "m-noid"},
        {"type": "bogus", "userId": "u1"},
        _track_payload(properties={"blob": "x" * 40_000}),
        {"type": "track", "userId": "null", "anonymousId": "undefined", "event": "junk ids"},
    ]
    response = client.post(
        "/v1/batch",
        json.dumps({"batch": batch, "writeKey": source.write_key}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert [r["index"] for r in response.json()["rejected"]] == [1, 2, 3, 4]
    assert Event.objects.count() == 1
    reasons = sorted(RejectedEvent.objects.values_list("reason", flat=True))
    assert any("needs a userId or an anonymousId" in r for r in reasons)
    assert any("type must be one of" in r for r in reasons)
    assert any("at most 32768 are accepted" in r for r in reasons)


def test_batch_over_2500_events_is_400(client, source):
    batch = [{"type": "track", "userId": "u", "event": "e"}] * 2501
    response = client.post(
        "/v1/batch",
        json.dumps({"batch": batch, "writeKey": source.write_key}),
        content_type="application/json",
    )
    assert response.status_code in (400, 413)
    assert Event.objects.count() == 0


def test_clock_skew_is_corrected_and_far_future_clamped(client, source):
    now = datetime.now(UTC)
    # the device clock runs one hour fast: its timestamp and sentAt are both an hour ahead
    skewed = _track_payload(
        timestamp=(now + timedelta(hours=1) - timedelta(minutes=5)).isoformat(),
        sentAt=(now + timedelta(hours=1)).isoformat(),
    )
    future = _track_payload(timestamp=(now + timedelta(days=30)).isoformat())
    client.post(
        "/v1/batch",
        json.dumps({"batch": [skewed, future], "writeKey": source.write_key}),
        content_type="application/json",
    )
    by_id = {e.message_id: e for e in Event.objects.all()}
    corrected = by_id[skewed["messageId"]]
    assert abs((corrected.received_at - corrected.timestamp) - timedelta(minutes=5)) < timedelta(seconds=5)
    clamped = by_id[future["messageId"]]
    assert clamped.timestamp == clamped.received_at


def test_bots_are_flagged(client, source):
    message = _track_payload(
        context={"userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
    )
    client.post(
        "/v1/track", json.dumps({**message, "writeKey": source.write_key}), content_type="application/json"
    )
    assert Event.objects.get().is_bot is True


def test_events_are_append_only(source):
    from events.ingest.parse import normalise
    from events.services import events_store

    now = datetime.now(UTC)
    events_store(
        source=source, messages=[normalise(_track_payload(), received_at=now)], rejections=[], received_at=now
    )
    with pytest.raises(IntegrityError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE events_event SET event = 'tampered'")


def test_database_down_answers_503_and_never_200(client, source, monkeypatch):
    from django.db import OperationalError

    from events import services

    def broken(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "events_store", broken)
    response = client.post(
        "/v1/track",
        json.dumps({**_track_payload(), "writeKey": source.write_key}),
        content_type="application/json",
    )
    assert response.status_code == 503 and response["Retry-After"]


def test_nul_characters_are_dropped_and_an_escaped_backslash_before_u0000_is_kept(client, source):
    # given properties with a real NUL (jsonb refuses it) and the literal text \u0000
    message = _track_payload(properties={"nul": "a\x00b", "text": "C:\\u0000dir", "n\x00k": 1})
    # when it is sent
    response = client.post(
        "/v1/track", json.dumps({**message, "writeKey": source.write_key}), content_type="application/json"
    )
    # then the event is stored without the NUL and with the literal text intact
    assert response.status_code == 200
    assert Event.objects.get().properties == {"nul": "ab", "text": "C:\\u0000dir", "nk": 1}


def test_a_batch_mixing_valid_rejected_and_repeated_events_keeps_order_and_first_copies(client, source):
    first = _track_payload(event="First")
    batch = [first, {"type": "bogus"}, _track_payload(event="Second"), {**first, "event": "Repeat of first"}]
    response = client.post(
        "/v1/batch",
        json.dumps({"batch": batch, "writeKey": source.write_key}),
        content_type="application/json",
    )
    assert response.status_code == 200 and [r["index"] for r in response.json()["rejected"]] == [1]
    assert list(Event.objects.order_by("id").values_list("event", flat=True)) == ["First", "Second"]
    assert RejectedEvent.objects.count() == 1
    assert queued_event_ids() == list(Event.objects.order_by("id").values_list("id", flat=True))


@pytest.mark.django_db(transaction=True)  # the failed statement aborts the test's own transaction
def test_a_failing_insert_statement_surfaces_as_503_not_500(client, source, monkeypatch):
    # given the server-bound insert fails inside Postgres (psycopg's own exception type)
    from events.services import queue as services

    monkeypatch.setattr(services, "_INSERT_EVENTS", "SELECT 1 / 0 WHERE %(rows)s IS NOT NULL")
    # when an event arrives
    response = client.post(
        "/v1/track",
        json.dumps({**_track_payload(), "writeKey": source.write_key}),
        content_type="application/json",
    )
    # then it is mapped to Django's DatabaseError and answered 503, nothing stored
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
    assert Event.objects.count() == 0


def test_the_gateway_answers_with_the_same_status_body_and_headers_as_the_django_view(source):
    # given the same requests sent through Django's stack and through the production WSGI app
    from django.test import Client

    from tests.events.conftest import GatewayClient

    message = _track_payload(messageId=None)
    cases = [
        ("post", "/v1/t", json.dumps({**message, "writeKey": source.write_key})),
        ("post", "/v1/track", "{broken"),
        ("post", "/v1/batch", json.dumps({"batch": [{"type": "bogus"}], "writeKey": source.write_key})),
        ("options", "/v1/b", ""),
        ("get", "/v1/track", None),
    ]
    for method, path, body in cases:
        answers = []
        for client in (Client(), GatewayClient()):
            kwargs = {"headers": {"Origin": "https://shop.example"}}
            if body is not None:
                kwargs.update(data=body, content_type="text/plain")
            response = getattr(client, method)(path, **kwargs)
            headers = {k: v for k, v in response.items() if k not in ("Content-Length", "Content-Type")}
            answers.append((response.status_code, response.content and json.loads(response.content), headers))
        # then both answer alike (the second copy of the event is deduplicated, not refused)
        assert answers[0] == answers[1], (method, path)
    assert Event.objects.count() == 1


def test_the_gateway_leaves_other_paths_and_unknown_hosts_to_django(source):
    from tests.events.conftest import GatewayClient

    client = GatewayClient()
    # a page behind the login: Django's LoginRequiredMiddleware redirects
    assert client.get("/events/").status_code == 302
    # a Host not in ALLOWED_HOSTS: Django's 400, nothing stored
    response = client.post(
        "/v1/track",
        json.dumps({**_track_payload(), "writeKey": source.write_key}),
        content_type="application/json",
        headers={"Host": "evil.example"},
    )
    assert response.status_code == 400
    assert Event.objects.count() == 0


def test_a_lone_surrogate_rejects_the_event_not_the_request(client, source):
    good = json.dumps(_track_payload())
    bad = json.dumps(_track_payload(properties={"bad": "x"})).replace('"x"', '"\\ud800"')
    body = f'{{"batch": [{good}, {bad}], "writeKey": "{source.write_key}"}}'
    response = client.post("/v1/batch", body, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {"index": 1, "reason": "the event contains invalid Unicode (a lone surrogate)"}
    ]
    assert Event.objects.count() == 1 and RejectedEvent.objects.count() == 1


def test_a_string_with_a_lone_surrogate_in_place_of_an_event_is_kept_as_a_rejection(client, source):
    good = json.dumps(_track_payload())
    body = f'{{"batch": ["a\\ud800b", {good}], "writeKey": "{source.write_key}"}}'
    response = client.post("/v1/batch", body, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["rejected"] == [{"index": 0, "reason": "an event must be a JSON object"}]
    assert RejectedEvent.objects.get().payload == "a?b"
    assert Event.objects.count() == 1


SINGLE_PATHS = {
    "track": {"event": "Order Completed"},
    "identify": {"traits": {"plan": "pro"}},
    "page": {"name": "Home"},
    "screen": {"name": "Home"},
    "group": {"groupId": "g1"},
    "alias": {"previousId": "anon-1"},
}
SHORT_PATHS = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}


def _single(kind: str, **extra) -> dict:
    kind = SHORT_PATHS.get(kind, kind)
    return {"userId": "u1", "messageId": uuid.uuid4().hex, **SINGLE_PATHS[kind], **extra}


@pytest.mark.parametrize("kind", [*SINGLE_PATHS, *SHORT_PATHS])
def test_a_single_oversize_event_is_400_with_its_reason_and_kept_as_a_rejection(client, source, kind):
    # given one event of 40 KB (Segment answers 400 past 32 KB)
    message = _single(kind, properties={"blob": "x" * 40_000})
    # when it is posted on a single-event path
    response = client.post(
        f"/v1/{kind}", json.dumps({**message, "writeKey": source.write_key}), content_type="text/plain"
    )
    # then it is refused with the reason, a client error (never retried), and the rejection kept
    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False and answer["error"]["code"] == "invalid_event"
    assert "at most 32768 are accepted" in answer["error"]["message"]
    assert answer["rejected"] == [{"index": 0, "reason": answer["error"]["message"]}]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert list(RejectedEvent.objects.values_list("reason", flat=True)) == [answer["error"]["message"]]
    assert Event.objects.count() == 0 and queued_event_ids() == []
    # and the same event at an ordinary size is still taken with a 200
    response = client.post(
        f"/v1/{kind}",
        json.dumps({**_single(kind), "writeKey": source.write_key}),
        content_type="text/plain",
    )
    assert response.status_code == 200 and response.json() == {"success": True}
    assert Event.objects.count() == 1


@pytest.mark.parametrize("kind", ["track", "t", "page", "identify"])
def test_a_single_event_without_user_or_anonymous_id_is_400(client, source, kind):
    message = {k: v for k, v in _single(kind).items() if k != "userId"}
    response = client.post(
        f"/v1/{kind}", json.dumps({**message, "writeKey": source.write_key}), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_event",
        "message": "the event needs a userId or an anonymousId",
    }
    assert RejectedEvent.objects.get().reason == "the event needs a userId or an anonymousId"
    assert Event.objects.count() == 0


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/v1/import"])
def test_a_batch_whose_every_event_is_rejected_is_400_with_the_reasons_kept(client, source, path):
    batch = [_track_payload(properties={"blob": "x" * 40_000}), {"type": "track", "event": "No ids"}, "junk"]
    response = client.post(
        path, json.dumps({"batch": batch, "writeKey": source.write_key}), content_type="text/plain"
    )
    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False and answer["error"]["code"] == "all_events_rejected"
    assert [r["index"] for r in answer["rejected"]] == [0, 1, 2]
    assert "at most 32768 are accepted" in answer["rejected"][0]["reason"]
    assert sorted(RejectedEvent.objects.values_list("reason", flat=True)) == sorted(
        r["reason"] for r in answer["rejected"]
    )
    assert Event.objects.count() == 0 and queued_event_ids() == []
    # while a batch that stored one of its events answers 200 and lists the others
    response = client.post(
        path,
        json.dumps({"batch": [*batch, _track_payload()], "writeKey": source.write_key}),
        content_type="text/plain",
    )
    assert response.status_code == 200 and response.json()["success"] is True
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1, 2]
    assert Event.objects.count() == 1 and RejectedEvent.objects.count() == 6
    # and an empty batch rejects nothing: 200
    response = client.post(
        path, json.dumps({"batch": [], "writeKey": source.write_key}), content_type="text/plain"
    )
    assert response.status_code == 200 and response.json() == {"success": True}
