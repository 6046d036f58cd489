"""A webhook's "Send test" button, against a real HTTP server on a free local port."""

import json
import socket

import pytest
from django.urls import reverse

from segments.models import WebhookDelivery
from segments.services import webhooks
from tests.factories import make_admin, make_user
from tests.segments.test_webhooks import Receiver, verify, vip_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def admin(client):
    user = make_admin(username="boss")
    client.force_login(user)
    return user


def _hook(admin, url, **fields):
    return webhooks.webhook_create(actor=admin, segment=vip_segment(), url=url, allow_private=True, **fields)


def test_send_test_posts_a_signed_sample_entry_and_shows_the_status(client, admin, receiver):
    hook = _hook(admin, receiver.url)
    page = client.get(hook.segment.get_absolute_url()).content.decode()
    assert reverse("segments:webhook_test", args=[hook.pk]) in page and "Send test" in page
    # when the marketer presses the button (htmx)
    response = client.post(reverse("segments:webhook_test", args=[hook.pk]), HTTP_HX_REQUEST="true")
    # then the receiver got one sample entry, signed like a real delivery
    assert response.status_code == 200
    assert "HTTP 200" in response.content.decode() and "test delivered" in response.content.decode()
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert verify(hook.secret, headers, request["body"])
    assert request["path"] == "/hooks/cdp?x=1"
    payload = json.loads(request["body"])
    assert payload["type"] == "segment.entered" and payload["test"] is True
    assert payload["data"]["segment"] == {"id": hook.segment.pk, "name": "VIPs"}
    assert payload["data"]["contact"]["email"] == "sample@example.com"
    # and nothing was queued for retries or written to the delivery log
    assert not WebhookDelivery.objects.exists()


def test_send_test_shows_a_failing_answer(client, admin, receiver):
    hook = _hook(admin, receiver.url)
    receiver.statuses = [500]
    response = client.post(reverse("segments:webhook_test", args=[hook.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "HTTP 500: non-2xx answer" in response.content.decode()
    # without htmx the answer comes back as a message on the segment page
    receiver.statuses = [404]
    response = client.post(reverse("segments:webhook_test", args=[hook.pk]), follow=True)
    assert "failed: HTTP 404" in response.content.decode()


def test_send_test_shows_a_connection_error(client, admin):
    with socket.socket() as sock:  # a free port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = _hook(admin, f"http://127.0.0.1:{port}/hook")
    response = client.post(reverse("segments:webhook_test", args=[hook.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "ConnectionRefusedError" in response.content.decode()


def test_send_test_keeps_the_ssrf_guard(client, admin, receiver):
    hook = _hook(admin, receiver.url)
    hook.allow_private = False
    hook.save(update_fields=["allow_private"])
    response = client.post(reverse("segments:webhook_test", args=[hook.pk]), HTTP_HX_REQUEST="true")
    assert "private, loopback" in response.content.decode()
    assert receiver.requests == []


def test_send_test_is_for_the_roles_that_manage_webhooks(client, admin, receiver):
    hook = _hook(admin, receiver.url)
    client.force_login(make_user(role="Sales"))
    response = client.post(reverse("segments:webhook_test", args=[hook.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert receiver.requests == []
