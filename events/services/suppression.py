"""The suppression list: identifiers of erased people, whose later events are dropped at ingestion.

Privacy adds an erased person's identifiers (`suppression_add`) and shows how many messages the
list dropped (`suppressed_count`); identity hashes values with `value_hash` to compare with the
digests it stores. The per-message check on the ingest path is `events.ingest.suppression`, which
reads the cached list from here.

Only SHA-256 digests of the normalised values are stored (`Suppression.value_hash`). Ingestion
asks for the list on every message, so it is cached per process: a query at most every
SUPPRESSION_CACHE_SECONDS, which with an empty table (the usual case) is one `EXISTS` and then a
tuple check per message. Another process therefore keeps accepting a newly suppressed identifier
for at most SUPPRESSION_CACHE_SECONDS; the erasure task sweeps events by identifier again after
its last step, which catches what that window lets through.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Iterable

import redis
from django.conf import settings
from django.db import transaction

from events.models import Suppression

logger = logging.getLogger(__name__)

SUPPRESSION_CACHE_SECONDS = 5.0
# Redis counter of messages dropped because of the list (shown on the erasure log page).
DROPPED_COUNTER_KEY = "cdp:suppression:dropped"


def normalise(value: object) -> str:
    """The form both sides hash: trimmed and lower-cased (emails arrive in any case; user ids are
    compared case-insensitively here, which can only suppress more, never less)."""
    return str(value).strip().lower() if value is not None else ""


def value_hash(value: object) -> str:
    return hashlib.sha256(normalise(value).encode()).hexdigest()


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = float("-inf")
        self.hashes: frozenset[str] = frozenset()


_cache = _Cache()


def suppressed_hashes() -> frozenset[str]:
    """The list's digests, as this process last read them (at most SUPPRESSION_CACHE_SECONDS ago)."""
    now = time.monotonic()
    if now - _cache.loaded_at < SUPPRESSION_CACHE_SECONDS:
        return _cache.hashes
    with _cache.lock:
        if now - _cache.loaded_at >= SUPPRESSION_CACHE_SECONDS:
            # An empty list (the common case) costs one EXISTS per interval, not a full read.
            if Suppression.objects.exists():
                _cache.hashes = frozenset(Suppression.objects.values_list("value_hash", flat=True))
            else:
                _cache.hashes = frozenset()
            _cache.loaded_at = now
    return _cache.hashes


def forget_cache() -> None:
    _cache.loaded_at = float("-inf")


@transaction.atomic
def suppression_add(*, values: Iterable[object]) -> int:
    """Add identifiers (hashed) to the list; adding one twice is a no-op. Returns how many were new."""
    hashes = sorted({value_hash(v) for v in values if normalise(v)})
    if not hashes:
        return 0
    before = Suppression.objects.filter(value_hash__in=hashes).count()
    Suppression.objects.bulk_create(
        [Suppression(value_hash=h) for h in hashes], ignore_conflicts=True, batch_size=1000
    )
    forget_cache()
    transaction.on_commit(forget_cache)
    return len(hashes) - before


_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _clients[url]


def suppressed_count_add(*, count: int) -> None:
    """Count dropped messages. Best effort: a Redis outage must not fail ingestion."""
    if count <= 0:
        return
    logger.info("dropped %d message(s) from suppressed identifiers", count)
    try:
        _redis().incrby(DROPPED_COUNTER_KEY, count)
    except redis.RedisError:
        logger.warning("could not count suppressed messages", exc_info=True)


def suppressed_count() -> int | None:
    """Messages dropped so far (all processes), or None when Redis does not answer."""
    try:
        value = _redis().get(DROPPED_COUNTER_KEY)
    except redis.RedisError:
        return None
    return int(value or 0)
