"""Segment webhooks: Standard Webhooks signing, an SSRF guard, retries with exponential backoff.

Signing (https://www.standardwebhooks.com): headers `webhook-id` (the delivery's message id, the
same on every retry), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 over `id.timestamp.body`, keyed with the base64-decoded part of the
`whsec_…` secret).

SSRF guard: the host is resolved on every attempt and every address it resolves to must be a
public one unless the webhook's Admin-only `allow_private` flag is set; the request then goes to
the vetted address itself (a second lookup could answer differently: DNS rebinding), with the
original Host header and TLS server name. Redirects are not followed (a 3xx is a failure).
"""

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from core.errors import DomainError
from segments.models import DeliveryStatus, Segment, Webhook, WebhookDelivery
from segments.permissions import ensure_can_allow_private, ensure_can_manage
from segments.tasks import webhook_deliveries_send as webhook_deliveries_send_task

MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10
USER_AGENT = "cdp-crm-webhooks/1"


class WebhookError(DomainError):
    code = "invalid_webhook"


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _check_url(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(
            "The webhook URL must be an http(s) URL with a host.", fields={"url": ["Invalid URL."]}
        )
    if parts.username or parts.password:
        raise WebhookError(
            "Credentials in the webhook URL are not allowed.", fields={"url": ["Invalid URL."]}
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookError("Invalid port in the webhook URL.", fields={"url": ["Invalid port."]}) from None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, parts.hostname, port, target


def resolve_public(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to; refuses hosts resolving to non-public addresses."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookError(f"Cannot resolve {host}: {exc}") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise WebhookError(f"Cannot resolve {host}.")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            if not ip.is_global or ip.is_multicast:
                raise WebhookError(
                    f"{host} resolves to {ip}, a private, loopback, link-local or reserved address; "
                    "an Admin may allow private addresses for this webhook."
                )
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted address, verifying the certificate for the original host name."""

    def __init__(self, address: str, port: int, *, server_hostname: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)


@dataclass
class Attempt:
    ok: bool
    status_code: int | None
    error: str


def post(*, webhook: Webhook, message_id: str, body: bytes) -> Attempt:
    try:
        scheme, host, port, target = _check_url(webhook.url)
        address = resolve_public(host, port, allow_private=webhook.allow_private)
    except WebhookError as exc:
        return Attempt(ok=False, status_code=None, error=exc.message)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": host if port in (80, 443) else f"{host}:{port}",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secret=webhook.secret, message_id=message_id, timestamp=timestamp, body=body
        ),
    }
    if scheme == "https":
        conn = _PinnedHTTPSConnection(address, port, server_hostname=host, timeout=TIMEOUT_SECONDS)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=TIMEOUT_SECONDS)
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read(65536)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(ok=False, status_code=None, error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()
    if 200 <= status < 300:
        return Attempt(ok=True, status_code=status, error="")
    reason = "redirects are not followed" if 300 <= status < 400 else "non-2xx answer"
    return Attempt(ok=False, status_code=status, error=f"HTTP {status}: {reason}")


def backoff(attempts: int) -> dt.timedelta:
    """Wait after the n-th failed attempt: base, 2x, 4x... capped at 6 h, ±10 % jitter."""
    base = settings.SEGMENT_WEBHOOK_RETRY_BASE_SECONDS * (2 ** (attempts - 1))
    seconds = min(base, 6 * 3600)
    return dt.timedelta(seconds=seconds * (0.9 + secrets.randbelow(2001) / 10_000))


def delivery_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def deliveries_send(*, limit: int = 50) -> int:
    """Send due deliveries, one transaction each (the row stays locked only during its request,
    and SKIP LOCKED lets several workers share the queue). Returns how many were attempted."""
    sent = 0
    for _ in range(limit):
        with transaction.atomic():
            delivery = (
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .select_related("webhook")
                .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at", "pk")
                .first()
            )
            if delivery is None:
                break
            delivery_attempt(delivery=delivery)
            sent += 1
    return sent


def delivery_attempt(*, delivery: WebhookDelivery) -> WebhookDelivery:
    webhook = delivery.webhook
    if not webhook.active:
        attempt = Attempt(ok=False, status_code=None, error="webhook disabled")
        delivery.attempts = MAX_ATTEMPTS - 1
    else:
        attempt = post(webhook=webhook, message_id=delivery.message_id, body=delivery_body(delivery))
    delivery.attempts += 1
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    now = timezone.now()
    if attempt.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.FAILED
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(
        update_fields=[
            "attempts",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    return delivery


def deliveries_create(*, segment: Segment, entered: list[int], exited: list[int], now: dt.datetime) -> int:
    """Deliveries for hand-made changes (static segments); rule changes write theirs in SQL."""
    hooks = list(Webhook.objects.filter(segment=segment, active=True))
    if not hooks or not (entered or exited):
        return 0
    contacts = {c.pk: c for c in Contact.objects.filter(pk__in=entered + exited)}
    rows = []
    for kind, ids in (("entered", entered), ("exited", exited)):
        for hook in hooks:
            if (kind == "entered" and not hook.on_enter) or (kind == "exited" and not hook.on_exit):
                continue
            for cid in ids:
                c = contacts[cid]
                payload = {
                    "type": f"segment.{kind}",
                    "timestamp": now.isoformat(),
                    "data": {
                        "segment": {"id": segment.pk, "name": segment.name},
                        "contact": {
                            "id": c.pk,
                            "email": c.email,
                            "first_name": c.first_name,
                            "last_name": c.last_name,
                            "is_identified": c.is_identified,
                        },
                    },
                }
                rows.append(
                    WebhookDelivery(
                        webhook=hook,
                        message_id="msg_" + secrets.token_hex(16),
                        event_type=f"segment.{kind}",
                        payload=payload,
                        next_attempt_at=now,
                    )
                )
    WebhookDelivery.objects.bulk_create(rows)
    if rows:
        transaction.on_commit(webhook_deliveries_send_task.delay)
    return len(rows)


def sample_entry_payload(*, segment: Segment, now: dt.datetime) -> dict:
    """A `segment.entered` message shaped like the real ones, about a made-up person (a test
    must not send anyone's data), marked `"test": true` so a receiver can tell it apart."""
    return {
        "type": "segment.entered",
        "timestamp": now.isoformat(),
        "test": True,
        "data": {
            "segment": {"id": segment.pk, "name": segment.name},
            "contact": {
                "id": 0,
                "email": "sample@example.com",
                "first_name": "Sample",
                "last_name": "Person",
                "is_identified": True,
            },
        },
    }


def webhook_send_test(*, actor: AbstractBaseUser | None, webhook: Webhook) -> Attempt:
    """Send one sample entry to the webhook now, signed and SSRF-checked like a real delivery,
    and return how it went. Nothing is queued or logged and nothing is retried: it answers the
    person at the button, who is waiting for it."""
    ensure_can_manage(actor)
    payload = sample_entry_payload(segment=webhook.segment, now=timezone.now())
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return post(webhook=webhook, message_id="msg_test_" + secrets.token_hex(12), body=body)


@transaction.atomic
def webhook_create(
    *,
    actor: AbstractBaseUser | None,
    segment: Segment,
    url: str,
    on_enter: bool = True,
    on_exit: bool = True,
    allow_private: bool = False,
) -> Webhook:
    ensure_can_manage(actor)
    if allow_private:
        ensure_can_allow_private(actor)
    url = (url or "").strip()
    if len(url) > 500:
        raise WebhookError("The URL is too long.", fields={"url": ["At most 500 characters."]})
    _, host, port, _ = _check_url(url)
    if not allow_private:
        resolve_public(host, port, allow_private=False)  # refuse early; re-checked on each delivery
    return Webhook.objects.create(
        segment=segment,
        url=url,
        secret=secret_new(),
        on_enter=on_enter,
        on_exit=on_exit,
        allow_private=allow_private,
        created_by=actor,
    )


@transaction.atomic
def webhook_delete(*, actor: AbstractBaseUser | None, webhook: Webhook) -> None:
    ensure_can_manage(actor)
    webhook.delete()
