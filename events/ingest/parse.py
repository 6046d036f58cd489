"""Parsing and validation of Segment-spec messages: plain Python on the hot path, no ORM.

Transport problems (body too big, not JSON, bad gzip) raise RequestError and nothing is stored.
A problem with one message inside a valid request rejects only that message, with a reason.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

MAX_REQUEST_BYTES = 500 * 1024
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_ITEMS = 2500
MAX_DEPTH = 16
MAX_KEYS_PER_OBJECT = 300
MAX_ID_LENGTH = 200
MAX_MESSAGE_ID_LENGTH = 100
# PostHog's rule: a corrected timestamp more than 23 h ahead of the server is not believed.
FUTURE_TOLERANCE = timedelta(hours=23)

# Ids that clients send when they have none: treated as absent, never as a person.
JUNK_IDS = frozenset({"", "null", "none", "undefined", "nan", "0", "-1", "anonymous", "[object object]"})

TYPES = {"track", "identify", "page", "screen", "group", "alias"}
SHORT_TYPES = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}

BOT_RE = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|headlesschrome|lighthouse|pingdom|uptime|facebookexternalhit|"
    r"embedly|preview|python-requests|curl/|wget/|httpclient|phantomjs|selenium",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def is_bot_user_agent(user_agent: str) -> bool:
    # Real traffic repeats a few hundred user agents; the regex costs ~11 µs per long one.
    return BOT_RE.search(user_agent) is not None


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after


@dataclass(slots=True)
class Message:
    message_id: str
    type: str
    event: str
    anonymous_id: str
    user_id: str
    group_id: str
    previous_id: str
    properties: dict
    traits: dict
    context: dict
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    is_bot: bool


@dataclass(slots=True)
class Rejection:
    reason: str
    payload: object


def decode_body(raw: bytes, content_encoding: str) -> bytes:
    """Undo gzip/deflate with the size cap applied to the *decompressed* size (gzip bombs)."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise RequestError(415, f"unsupported Content-Encoding {content_encoding!r}", "unsupported_encoding")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    try:
        inflater = zlib.decompressobj(wbits)
        body = inflater.decompress(raw, MAX_REQUEST_BYTES + 1)
    except zlib.error:
        raise RequestError(400, f"the body is not valid {encoding} data", "invalid_encoding") from None
    if len(body) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
        raise RequestError(413, f"the decompressed body exceeds {MAX_REQUEST_BYTES} bytes", "too_large")
    return body


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> dict:
    if not body.strip():
        raise RequestError(400, "the body is empty; expected a JSON object", "invalid_json")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits, which are valid JSON (and jsonb keeps them):
        # the standard parser decides, and words the error when the body really is invalid.
        try:
            payload = json.loads(body, parse_constant=_refuse_constant)
        except UnicodeDecodeError:
            raise RequestError(400, "the body is not UTF-8 encoded JSON", "invalid_json") from None
        except (ValueError, RecursionError) as exc:
            raise RequestError(400, f"the body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(payload, dict):
        raise RequestError(400, "the body must be a JSON object", "invalid_json")
    return payload


def _compact_json(value: object) -> bytes:
    """`value` as compact UTF-8 JSON (orjson: ~10x the standard library's speed)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, or nesting orjson refuses
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def write_key_from(*, authorization: str, payload: dict, header_key: str = "", query_key: str = "") -> str:
    """Basic auth username first (Segment's and RudderStack's server SDKs), then the body's
    writeKey (browsers, and Segment's Bearer mode), then X-Write-Key, then ?writeKey=."""
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise RequestError(
                401, "the Basic authorization header is malformed", "invalid_write_key"
            ) from None
        username = decoded.split(":", 1)[0]
        if username:
            return username
    body_key = payload.get("writeKey")
    if isinstance(body_key, str) and body_key:
        return body_key
    return header_key or query_key


def messages_from(path_type: str, payload: dict) -> list:
    """The list of raw messages in a request; batch-level context and integrations are merged in."""
    if path_type != "batch":
        return [{**payload, "type": path_type}]
    items = payload.get("batch")
    if not isinstance(items, list):
        raise RequestError(400, "a batch request needs a 'batch' array", "invalid_batch")
    if len(items) > MAX_BATCH_ITEMS:
        raise RequestError(
            400, f"a batch holds at most {MAX_BATCH_ITEMS} events; got {len(items)}", "too_many_events"
        )
    shared_context = payload.get("context") if isinstance(payload.get("context"), dict) else None
    merged = []
    for item in items:
        if isinstance(item, dict) and shared_context:
            item = {**item, "context": {**shared_context, **(item.get("context") or {})}}
        merged.append(item)
    return merged


# The longest junk id ("[object object]"): a longer id is never junk, so it is not lowered.
_JUNK_MAX_LENGTH = max(map(len, JUNK_IDS))


def _clean_id(value: object) -> str:
    if type(value) is str:  # the usual case, first and without the isinstance chain
        value = value.strip()
        return "" if len(value) <= _JUNK_MAX_LENGTH and value.lower() in JUNK_IDS else value
    if value is None:
        return ""
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return "" if value.lower() in JUNK_IDS else value


def _parse_time(value: object, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if type(value) is str:
        try:
            # fromisoformat takes the trailing "Z" itself (3.11+): the usual form costs no
            # strip() and replace(); anything it refuses gets the lenient path below.
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"{field} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} is not an ISO-8601 date-time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# Tuples, not `dict | list`: a union is built anew at every isinstance call on the hot path.
_CONTAINERS = (dict, list)
_NUMBERS = (int, float)
_SCALARS = (str, int, float)


def _check_shape(value: dict | list, field: str, depth: int = 0) -> None:
    """Nesting depth and keys per object of a dict or list at `depth`. Recurses into containers
    only: most values are scalars, and a call per scalar was most of this check's cost."""
    if isinstance(value, dict):
        if len(value) > MAX_KEYS_PER_OBJECT:
            raise ValueError(f"{field} has more than {MAX_KEYS_PER_OBJECT} keys")
        children = value.values()
    else:
        children = value
    if depth >= MAX_DEPTH and children:  # any value in here sits deeper than allowed
        raise ValueError(f"{field} is nested deeper than {MAX_DEPTH} levels")
    for item in children:
        if isinstance(item, _CONTAINERS):
            _check_shape(item, field, depth + 1)


def _object(message: dict, key: str, *, shape_checked: bool) -> dict:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    if not shape_checked:
        _check_shape(value, key)
    return value


def _shape_within_limits(encoded: bytes) -> bool:
    """Whether no object or array of the event can break MAX_DEPTH or MAX_KEYS_PER_OBJECT, read
    off its compact JSON (already made for its size): every container is a "{" or "[" and every
    key is followed by a ":" (those in strings only add to the counts), so an event with at most
    MAX_DEPTH + 1 brackets (its own included) nests no deeper than allowed, and one with at most
    MAX_KEYS_PER_OBJECT colons has no object with more keys. Almost every event passes and skips
    the walk of its objects (_check_shape: a quarter of `normalise`, measured); one that does not
    is walked as before, so what is accepted and the reasons given do not change."""
    return (
        encoded.count(b"{") + encoded.count(b"[") <= MAX_DEPTH + 1
        and encoded.count(b":") <= MAX_KEYS_PER_OBJECT
    )


def derive_message_id(raw: dict) -> str:
    """A stable id for a client that sent none, so that its retries are still deduplicated."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "derived-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def normalise(raw: object, *, received_at: datetime, batch_sent_at: object = None) -> Message | Rejection:
    if not isinstance(raw, dict):
        payload = raw if isinstance(raw, _SCALARS) else None
        if isinstance(payload, str):
            # Kept as sent, except lone surrogates ("\ud800"), which UTF-8 and jsonb cannot hold.
            payload = payload[:MAX_EVENT_BYTES].encode("utf-8", "replace").decode()
        return Rejection("an event must be a JSON object", payload)
    try:
        encoded = _compact_json(raw)
    except UnicodeEncodeError:
        # "\ud800" escapes decode to lone surrogates, which neither UTF-8 nor jsonb can hold.
        return Rejection("the event contains invalid Unicode (a lone surrogate)", None)
    except (ValueError, RecursionError):
        return Rejection("the event cannot be serialised (nested too deep)", None)
    size = len(encoded)
    if size > MAX_EVENT_BYTES:
        return Rejection(f"the event is {size} bytes; at most {MAX_EVENT_BYTES} are accepted", None)
    try:
        return _normalise(
            raw,
            received_at=received_at,
            batch_sent_at=batch_sent_at,
            shape_checked=_shape_within_limits(encoded),
        )
    except ValueError as exc:
        return Rejection(str(exc), raw)
    except RecursionError:
        return Rejection(f"the event is nested deeper than {MAX_DEPTH} levels", None)


def _normalise(
    raw: dict, *, received_at: datetime, batch_sent_at: object, shape_checked: bool = False
) -> Message:
    type_ = raw.get("type")
    type_ = SHORT_TYPES.get(type_, type_) if isinstance(type_, str) else type_
    if type_ not in TYPES:
        raise ValueError(f"type must be one of {', '.join(sorted(TYPES))}; got {str(type_)[:40]!r}")
    user_id = _clean_id(raw.get("userId"))
    anonymous_id = _clean_id(raw.get("anonymousId"))
    previous_id = _clean_id(raw.get("previousId"))
    group_id = _clean_id(raw.get("groupId"))
    if type_ == "alias":
        if not user_id or not previous_id:
            raise ValueError("alias needs both userId and previousId")
    elif not user_id and not anonymous_id:
        raise ValueError("the event needs a userId or an anonymousId")
    if type_ == "group" and not group_id:
        raise ValueError("group needs a groupId")
    if len(user_id) > MAX_ID_LENGTH or len(anonymous_id) > MAX_ID_LENGTH or len(previous_id) > MAX_ID_LENGTH:
        for name, value in (("userId", user_id), ("anonymousId", anonymous_id), ("previousId", previous_id)):
            if len(value) > MAX_ID_LENGTH:
                raise ValueError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    event = ""
    if type_ == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise ValueError("track needs an event name")
        event = event.strip()[:200]
    elif type_ in ("page", "screen") and isinstance(raw.get("name"), str):
        event = raw["name"].strip()[:200]

    properties = _object(raw, "properties", shape_checked=shape_checked)
    traits = _object(raw, "traits", shape_checked=shape_checked)
    context = _object(raw, "context", shape_checked=shape_checked)
    if type_ == "identify" and not traits and isinstance(context.get("traits"), dict):
        traits = context["traits"]

    message_id = raw.get("messageId")
    if message_id in (None, ""):
        message_id = derive_message_id(raw)
    elif not isinstance(message_id, (str, int)) or isinstance(message_id, bool):
        raise ValueError("messageId must be a string")
    message_id = str(message_id)
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise ValueError(f"messageId is longer than {MAX_MESSAGE_ID_LENGTH} characters")

    original = _parse_time(raw.get("timestamp") or raw.get("originalTimestamp"), "timestamp")
    sent_at = _parse_time(raw.get("sentAt") or batch_sent_at, "sentAt")
    if original is None:
        timestamp = received_at
    elif sent_at is not None:
        timestamp = received_at - (sent_at - original)  # corrects the device clock's skew
    else:
        timestamp = original
    if timestamp > received_at + FUTURE_TOLERANCE:
        timestamp = received_at

    user_agent = context.get("userAgent")
    return Message(
        message_id=message_id,
        type=type_,
        event=event,
        anonymous_id=anonymous_id,
        user_id=user_id,
        group_id=group_id,
        previous_id=previous_id,
        properties=properties,
        traits=traits,
        context=context,
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        is_bot=isinstance(user_agent, str) and is_bot_user_agent(user_agent),
    )
