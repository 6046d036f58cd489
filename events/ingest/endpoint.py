"""The Segment-compatible tracking API: POST /v1/{track,identify,page,screen,group,alias,batch}
and the browser short paths /v1/{t,i,p,s,g,a,b}.

`ingest_request` is the whole endpoint as a plain function of the request's parts; it is served
two ways that answer identically: `events.parse.gateway` calls it straight from WSGI (the hot path,
without Django's request/response objects, middleware and URL resolver) and `track_api` is the
Django view around it (Django's test client, and any request the gateway hands to Django)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from events import services
from events.ingest import limits, parse, suppression

logger = logging.getLogger(__name__)

# The tracking paths, shared by the URLconf and the WSGI gateway.
PATH_PATTERN = r"^v1/(?P<kind>identify|track|page|screen|group|alias|batch|import|[tipsgab])/?$"

CORS_HEADERS = (
    ("Access-Control-Allow-Methods", "POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, Authorization, Content-Encoding, X-Write-Key"),
    ("Access-Control-Max-Age", "86400"),
)
JSON = ("Content-Type", "application/json")
SUCCESS = b'{"success":true}'


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]]


def _cors(origin: str, *headers: tuple[str, str]) -> list[tuple[str, str]]:
    # Any origin, never credentials: write keys are public and the API reads no cookies.
    return [*headers, ("Access-Control-Allow-Origin", origin or "*"), ("Vary", "Origin"), *CORS_HEADERS]


def _error(status: int, message: str, code: str, origin: str, *headers: tuple[str, str]) -> Reply:
    body = orjson.dumps({"success": False, "error": {"code": code, "message": message}})
    return Reply(status, body, _cors(origin, JSON, *headers))


def ingest_request(
    *,
    method: str,
    kind: str,
    origin: str,
    content_length: str,
    read: Callable[[int], bytes],
    content_encoding: str,
    authorization: str,
    header_key: str,
    query_string: str,
) -> Reply:
    if method == "OPTIONS":
        return Reply(204, b"", _cors(origin))
    if method != "POST":
        return _error(405, "use POST", "method_not_allowed", origin, ("Allow", "POST, OPTIONS"))
    kind = "batch" if kind in ("b", "batch", "import") else parse.SHORT_TYPES.get(kind, kind)
    received_at = timezone.now()
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    # The cap is enforced before anything is read or parsed.
    if declared > parse.MAX_REQUEST_BYTES:
        return _error(413, f"the body exceeds {parse.MAX_REQUEST_BYTES} bytes", "too_large", origin)
    try:
        raw = read(parse.MAX_REQUEST_BYTES + 1) if declared > 0 else b""
        if len(raw) > parse.MAX_REQUEST_BYTES:
            raise parse.RequestError(413, f"the body exceeds {parse.MAX_REQUEST_BYTES} bytes", "too_large")
        body = parse.decode_body(raw, content_encoding)
        payload = parse.parse_json(body)
        write_key = parse.write_key_from(
            authorization=authorization,
            payload=payload,
            header_key=header_key,
            query_key=_query_write_key(query_string),
        )
        if not write_key:
            raise parse.RequestError(
                401, "no write key: send it as Basic auth username or as writeKey", "no_write_key"
            )
        source = services.source_for_write_key(write_key=write_key)
        if source is None:
            raise parse.RequestError(401, "unknown or disabled write key", "invalid_write_key")
        if source.allowed_origins and origin and origin not in source.allowed_origins:
            raise parse.RequestError(
                403, f"origin {origin} is not allowed for this source", "origin_not_allowed"
            )
        raw_messages = parse.messages_from(kind, payload)
        # Before anything is stored (rejections included): a 429 leaves nothing behind.
        limits.ensure_admitted(source=source, cost=len(raw_messages))
        accepted, rejected = [], []
        batch_sent_at = payload.get("sentAt") if kind == "batch" else None
        dropped = 0
        for index, raw_message in enumerate(raw_messages):
            # An erased person's identifiers: dropped silently, answered 200 (as Segment does).
            if suppression.is_suppressed(message=raw_message):
                dropped += 1
                continue
            result = parse.normalise(raw_message, received_at=received_at, batch_sent_at=batch_sent_at)
            if isinstance(result, parse.Message):
                accepted.append(result)
            else:
                rejected.append((index, result))
        services.events_store(
            source=source, messages=accepted, rejections=[r for _, r in rejected], received_at=received_at
        )
        services.suppressed_count_add(count=dropped)
    except parse.RequestError as exc:
        headers = [("Retry-After", str(exc.retry_after))] if exc.retry_after else []
        return _error(exc.status, exc.message, exc.code, origin, *headers)
    except DatabaseError:
        logger.exception("ingestion failed: database unavailable")
        # Never a 200 for an event that was not stored: the client keeps it and retries.
        return _error(503, "storage is unavailable; retry later", "unavailable", origin, ("Retry-After", "5"))
    if not rejected:
        return Reply(200, SUCCESS, _cors(origin, JSON))
    listed = [{"index": index, "reason": r.reason} for index, r in rejected]
    # Segment answers 400 for an event it refuses, and clients retry only 5xx, 408 and 429 (cdp.js,
    # analytics.js, the server SDKs), so a 400 drops the refused event instead of resending it. A
    # batch that stored some of its events still answers 200: a 4xx would make a client drop, or
    # count as failed, the events that were taken.
    if kind != "batch":
        error = {"code": "invalid_event", "message": listed[0]["reason"]}
    elif len(rejected) == len(raw_messages):
        error = {"code": "all_events_rejected", "message": "every event of the batch was rejected"}
    else:
        return Reply(200, orjson.dumps({"success": True, "rejected": listed}), _cors(origin, JSON))
    body = orjson.dumps({"success": False, "error": error, "rejected": listed})
    return Reply(400, body, _cors(origin, JSON))


def _query_write_key(query_string: str) -> str:
    """?writeKey= (the last one, as Django's QueryDict.get), parsed only when there is a query."""
    if "writeKey" not in query_string:
        return ""
    values = [value for key, value in parse_qsl(query_string, keep_blank_values=True) if key == "writeKey"]
    return values[-1] if values else ""


@csrf_exempt
@login_not_required
def track_api(request: HttpRequest, kind: str) -> HttpResponse:
    meta = request.META
    reply = ingest_request(
        method=request.method or "",
        kind=kind,
        origin=meta.get("HTTP_ORIGIN", ""),
        content_length=meta.get("CONTENT_LENGTH", ""),
        read=request.read,
        content_encoding=meta.get("HTTP_CONTENT_ENCODING", ""),
        authorization=meta.get("HTTP_AUTHORIZATION", ""),
        header_key=meta.get("HTTP_X_WRITE_KEY", ""),
        query_string=meta.get("QUERY_STRING", ""),
    )
    response = HttpResponse(reply.body, status=reply.status)
    for key, value in reply.headers:
        response[key] = value
    return response
