"""The tracking API as production serves it: granian running `cdp_crm.wsgi:application` (the
`/v1` gateway in front of Django), concurrent clients over real HTTP, group commit across the
server's threads, the queue and a real Celery worker. The other API tests call the same code
in-process; this one proves the served path end to end."""

import base64
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from events.models import Event, EventDedup, IngestBatch, RejectedEvent, Source
from events.selectors import queued_event_count
from identity.models import ContactEvent
from tests.conftest import _test_database_url, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(transactional_db, tmp_path):
    """granian with the production WSGI application against the test database."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "production-server-test-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    granian = Path(sys.executable).parent / "granian"
    log = tmp_path / "granian.log"
    proc = subprocess.Popen(
        [str(granian), "--interface=wsgi", "cdp_crm.wsgi:application", "--host=127.0.0.1"]
        + [f"--port={port}", "--workers=1", "--blocking-threads=8", "--no-ws", "--log-level=warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            # /healthz answers after its Celery ping times out (2 s) when this test process has no
            # worker running: a shorter timeout would read that as "not started" until the deadline
            with urllib.request.urlopen(url + "/healthz", timeout=10):
                break
        except urllib.error.HTTPError:
            break  # it answers
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"granian did not start: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
    yield url
    stop_process(proc)


def _post(url: str, body: bytes, *, headers: dict[str, str]) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, body, headers = error.code, error.read(), error.headers
    return status, json.loads(body), {name.lower(): value for name, value in headers.items()}


def _post_headers_only(url: str, *, content_length: int) -> tuple[int, dict]:
    """Send a POST's headers, announcing a body it never sends, and read the answer. (Sending the
    body too races the server's early answer: it closes the connection once it has answered, and
    a client still writing then fails with a broken pipe.)"""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\n\r\n".encode()
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def _track_payload(i: int, message_id: str | None = None) -> dict:
    return {
        "type": "track",
        "event": "Served",
        "userId": f"served-user-{i % 7}",
        "messageId": message_id or f"served-{i}-{uuid.uuid4().hex}",
        "properties": {"n": i},
    }


def test_concurrent_clients_through_the_production_server_store_each_event_once(server, celery_worker):
    # given a source, and 24 requests sent at once (RudderStack's gzip + Basic auth, browsers'
    # text/plain with the key in the body, single events on the short path), two of them the
    # retry of an earlier batch with the same messageIds
    source = Source.objects.create(name="Served", rate_limit_per_second=10**6)
    basic = "Basic " + base64.b64encode(f"{source.write_key}:".encode()).decode()
    retried = [_track_payload(10_000 + i) for i in range(30)]
    requests = []
    for r in range(20):
        batch = [_track_payload(r * 100 + i) for i in range(25)]
        if r % 2:
            body = gzip.compress(json.dumps({"batch": batch}).encode())
            headers = {"Authorization": basic, "Content-Encoding": "gzip", "Content-Type": "application/json"}
        else:
            body = json.dumps({"batch": batch, "writeKey": source.write_key}).encode()
            headers = {"Content-Type": "text/plain"}
        requests.append((server + "/v1/batch", body, headers, [m["messageId"] for m in batch]))
    for _ in range(2):
        body = json.dumps({"batch": retried, "writeKey": source.write_key}).encode()
        requests.append((server + "/v1/b", body, {}, [m["messageId"] for m in retried]))
    for i in range(2):
        message = _track_payload(20_000 + i)
        body = json.dumps({**message, "writeKey": source.write_key}).encode()
        requests.append((server + "/v1/t", body, {"Content-Type": "text/plain"}, [message["messageId"]]))

    # when they are posted concurrently
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        answers = list(pool.map(lambda req: _post(req[0], req[1], headers=req[2]), requests))

    # then every request is answered 200 {"success": true}, through the gateway (its security
    # headers and CORS) ...
    assert [(status, body) for status, body, _ in answers] == [(200, {"success": True})] * len(requests)
    headers = answers[0][2]
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src" in headers["content-security-policy"]
    assert headers["access-control-allow-origin"] == "*"
    # ... each distinct messageId is stored exactly once (the retried batch too), with its dedup key
    sent = {message_id for *_, ids in requests for message_id in ids}
    assert len(sent) == 20 * 25 + 30 + 2
    stored = list(Event.objects.filter(source=source).values_list("message_id", flat=True))
    assert sorted(stored) == sorted(sent)
    assert EventDedup.objects.filter(source=source).count() == len(sent)
    assert RejectedEvent.objects.count() == 0
    # ... and the worker stitches every one of them (each processed once)
    deadline = time.monotonic() + 60
    while queued_event_count():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    assert not IngestBatch.objects.exists()
    assert ContactEvent.objects.filter(event__source=source).count() == len(sent)


def test_the_production_server_refuses_bad_requests_with_json_and_stores_nothing(server):
    key = Source.objects.create(name="Served").write_key.encode()
    cases = [
        # unknown write key
        ({"Authorization": "Basic " + base64.b64encode(b"nope:").decode()}, b'{"batch":[]}', 401),
        # invalid JSON
        ({"Content-Type": "text/plain"}, b'{"writeKey": "' + key + b'", "batch": [', 400),
    ]
    answers = [
        (_post(server + "/v1/batch", body, headers=headers)[:2], status) for headers, body, status in cases
    ]
    # over the 500 KB cap: refused before it is read (the server answers with the body unsent)
    answers.append((_post_headers_only(server + "/v1/batch", content_length=600_000), 413))
    for (answered, answer), status in answers:
        assert answered == status, (status, answer)
        assert answer["success"] is False and answer["error"]["code"] and answer["error"]["message"]
    assert Event.objects.count() == 0 and RejectedEvent.objects.count() == 0
    assert queued_event_count() == 0
