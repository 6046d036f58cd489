"""Webhooks against a real local HTTP server (reached through the Admin-only private flag)."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from contacts.models import Contact
from core.errors import Forbidden
from segments import services
from segments.models import DeliveryStatus, WebhookDelivery
from segments.services import webhooks
from tests.factories import make_admin, make_contact, make_user

pytestmark = pytest.mark.django_db


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/cdp?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """Standard Webhooks verification, written from the spec (not with our sign())."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected) for sig in headers["webhook-signature"].split(" ")
    )


def vip_segment():
    return services.segment_create(
        actor=None,
        name="VIPs",
        definition={"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": "vip"}]},
    )


def test_entries_and_exits_are_delivered_signed(receiver):
    admin = make_admin()
    contact = make_contact(email="v@x.io", tags=["vip"])
    segment = vip_segment()
    hook = webhooks.webhook_create(actor=admin, segment=segment, url=receiver.url, allow_private=True)
    assert hook.secret.startswith("whsec_")
    services.segment_refresh(segment=segment)
    Contact.objects.filter(pk=contact.pk).update(tags=[])
    services.segment_refresh(segment=segment)
    assert webhooks.deliveries_send() == 2
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["segment.entered", "segment.exited"]
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert verify(hook.secret, headers, request["body"])
        assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
        assert request["path"] == "/hooks/cdp?x=1"
    payload = json.loads(receiver.requests[0]["body"])
    assert payload["data"]["contact"]["email"] == "v@x.io" and payload["data"]["segment"]["id"] == segment.pk
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}


def test_failures_retry_with_backoff_and_the_same_message_id(receiver, settings):
    settings.SEGMENT_WEBHOOK_RETRY_BASE_SECONDS = 30
    make_contact(email="v@x.io", tags=["vip"])
    segment = vip_segment()
    webhooks.webhook_create(actor=make_admin(), segment=segment, url=receiver.url, allow_private=True)
    receiver.statuses = [500, 503]
    services.segment_refresh(segment=segment)
    webhooks.deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert (
        delivery.status == DeliveryStatus.PENDING
        and delivery.attempts == 1
        and delivery.last_status_code == 500
    )
    wait = delivery.next_attempt_at - timezone.now()
    assert dt.timedelta(seconds=25) < wait < dt.timedelta(seconds=35)
    assert webhooks.deliveries_send() == 0  # not due yet
    for expected_attempts, low in ((2, 50), (3, None)):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        webhooks.deliveries_send()
        delivery.refresh_from_db()
        assert delivery.attempts == expected_attempts
        if low:
            assert delivery.next_attempt_at - timezone.now() > dt.timedelta(seconds=low)  # doubled
    assert delivery.status == DeliveryStatus.SUCCEEDED
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert ids == {delivery.message_id} and len(receiver.requests) == 3


def test_gives_up_after_the_last_attempt(receiver):
    make_contact(email="v@x.io", tags=["vip"])
    segment = vip_segment()
    webhooks.webhook_create(actor=make_admin(), segment=segment, url=receiver.url, allow_private=True)
    receiver.statuses = [500] * webhooks.MAX_ATTEMPTS
    services.segment_refresh(segment=segment)
    for _ in range(webhooks.MAX_ATTEMPTS):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        webhooks.deliveries_send()
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    assert len(receiver.requests) == webhooks.MAX_ATTEMPTS


def test_redirects_are_not_followed(receiver):
    make_contact(email="v@x.io", tags=["vip"])
    segment = vip_segment()
    webhooks.webhook_create(actor=make_admin(), segment=segment, url=receiver.url, allow_private=True)
    receiver.statuses = [302]
    services.segment_refresh(segment=segment)
    webhooks.deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and "redirect" in delivery.last_error
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.0.0.5/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
    ],
)
def test_private_addresses_are_refused_without_the_admin_flag(url):
    segment = vip_segment()
    with pytest.raises(webhooks.WebhookError, match="private"):
        webhooks.webhook_create(actor=make_admin(), segment=segment, url=url)


def test_private_check_runs_again_on_each_delivery(receiver):
    make_contact(email="v@x.io", tags=["vip"])
    segment = vip_segment()
    hook = webhooks.webhook_create(actor=make_admin(), segment=segment, url=receiver.url, allow_private=True)
    type(hook).objects.filter(pk=hook.pk).update(allow_private=False)
    services.segment_refresh(segment=segment)
    webhooks.deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert "private" in delivery.last_error and receiver.requests == []


def test_only_admins_allow_private_addresses(receiver):
    segment = vip_segment()
    with pytest.raises(Forbidden):
        webhooks.webhook_create(
            actor=make_user(role="Marketing"), segment=segment, url=receiver.url, allow_private=True
        )
    with pytest.raises(webhooks.WebhookError):
        webhooks.webhook_create(actor=None, segment=segment, url="ftp://example.com/x")


def test_static_segment_changes_are_delivered(receiver):
    segment = services.segment_create(actor=None, name="Static", kind="static")
    webhooks.webhook_create(
        actor=make_admin(), segment=segment, url=receiver.url, allow_private=True, on_exit=False
    )
    contact = make_contact(email="s@x.io")
    services.segment_members_add(actor=None, segment=segment, contact_ids=[contact.pk])
    services.segment_members_remove(actor=None, segment=segment, contact_ids=[contact.pk])
    webhooks.deliveries_send()
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["segment.entered"]
