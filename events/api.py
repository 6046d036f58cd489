"""The Segment-compatible tracking API: POST /v1/{track,identify,page,screen,group,alias,batch}
and the browser short paths /v1/{t,i,p,s,g,a,b}. Plain Django views: this is the hot path, and
DRF's per-request machinery costs more than the work itself."""

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from events import ingest, limits, services, suppression

logger = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding, X-Write-Key",
    "Access-Control-Max-Age": "86400",
}


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    # Any origin, never credentials: write keys are public and the API reads no cookies.
    response["Access-Control-Allow-Origin"] = origin or "*"
    response["Vary"] = "Origin"
    for key, value in CORS_HEADERS.items():
        response[key] = value
    return response


def _error(status: int, message: str, code: str, origin: str, **headers) -> JsonResponse:
    response = JsonResponse({"success": False, "error": {"code": code, "message": message}}, status=status)
    for key, value in headers.items():
        response[key] = value
    return _cors(response, origin)


@csrf_exempt
@login_not_required
def track_api(request: HttpRequest, kind: str) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), origin)
    if request.method != "POST":
        response = _error(405, "use POST", "method_not_allowed", origin)
        response["Allow"] = "POST, OPTIONS"
        return response
    kind = "batch" if kind in ("b", "batch", "import") else ingest.SHORT_TYPES.get(kind, kind)
    received_at = timezone.now()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # The cap is enforced before anything is read or parsed.
    if declared > ingest.MAX_REQUEST_BYTES:
        return _error(413, f"the body exceeds {ingest.MAX_REQUEST_BYTES} bytes", "too_large", origin)
    try:
        raw = request.read(ingest.MAX_REQUEST_BYTES + 1)
        if len(raw) > ingest.MAX_REQUEST_BYTES:
            raise ingest.RequestError(413, f"the body exceeds {ingest.MAX_REQUEST_BYTES} bytes", "too_large")
        body = ingest.decode_body(raw, request.headers.get("Content-Encoding", ""))
        payload = ingest.parse_json(body)
        write_key = ingest.write_key_from(
            authorization=request.headers.get("Authorization", ""),
            payload=payload,
            header_key=request.headers.get("X-Write-Key", ""),
            query_key=request.GET.get("writeKey", ""),
        )
        if not write_key:
            raise ingest.RequestError(
                401, "no write key: send it as Basic auth username or as writeKey", "no_write_key"
            )
        source = services.source_for_write_key(write_key=write_key)
        if source is None:
            raise ingest.RequestError(401, "unknown or disabled write key", "invalid_write_key")
        if source.allowed_origins and origin and origin not in source.allowed_origins:
            raise ingest.RequestError(
                403, f"origin {origin} is not allowed for this source", "origin_not_allowed"
            )
        raw_messages = ingest.messages_from(kind, payload)
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
            result = ingest.normalise(raw_message, received_at=received_at, batch_sent_at=batch_sent_at)
            if isinstance(result, ingest.Message):
                accepted.append(result)
            else:
                rejected.append((index, result))
        services.events_store(
            source=source, messages=accepted, rejections=[r for _, r in rejected], received_at=received_at
        )
        suppression.suppressed_count_add(count=dropped)
    except ingest.RequestError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return _error(exc.status, exc.message, exc.code, origin, **headers)
    except DatabaseError:
        logger.exception("ingestion failed: database unavailable")
        # Never a 200 for an event that was not stored: the client keeps it and retries.
        return _error(
            503, "storage is unavailable; retry later", "unavailable", origin, **{"Retry-After": "5"}
        )
    body = {"success": True}
    if rejected:
        body["rejected"] = [{"index": index, "reason": r.reason} for index, r in rejected]
    return _cors(JsonResponse(body), origin)
