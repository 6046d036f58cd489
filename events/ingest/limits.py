"""Admission control for the tracking API: a per-source rate limit and a processing-backlog
check. Both answer 429 with Retry-After before anything is stored, so a well-behaved client
keeps its events and retries later.

The rate limiter counts in Redis; when Redis is unreachable it fails OPEN (accepts and logs):
losing the limiter for a while is harmless, turning valid events into errors is not.
"""

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from events.ingest.parse import RequestError

logger = logging.getLogger(__name__)

# A short timeout: the limiter must never add more than this to a request when Redis hangs.
REDIS_TIMEOUT_SECONDS = 0.25
# After a Redis error the limiter is bypassed for this long instead of paying a timeout on every
# request (and logging on every request).
REDIS_BYPASS_SECONDS = 5.0
# Counting the queue per request would cost more than storing the event; a couple of seconds of
# staleness is fine for a guard measured in hundreds of thousands of rows.
BACKLOG_CACHE_SECONDS = 2.0


@dataclass
class _RedisState:
    url: str = ""
    client: redis.Redis | None = None
    bypass_until: float = 0.0


_redis_state = _RedisState()
# (monotonic time of the count, count)
_backlog_cache: list[float] = [float("-inf"), 0]

# Events this process has already counted in Redis for a source's current window but not used
# yet: {(source_id, window second): events}. See rate_limit_exceeded.
_leases: dict[tuple[int, int], int] = {}
_leases_lock = threading.Lock()
# A process counts up to limit/LEASE_DIVISOR events (at most LEASE_MAX) ahead of need, so most
# requests are admitted without a Redis round trip (~55 µs of CPU each, measured). The cap lets a
# source with a high limit skip the round trip for batches too (a lease of 50 was used up by
# every 100-event batch); the error stays a tenth of a percent of the limit.
LEASE_DIVISOR = 1000
LEASE_MAX = 1000


def reset() -> None:
    """Forget cached state (tests; a changed REDIS_URL is picked up without it)."""
    _redis_state.url, _redis_state.client, _redis_state.bypass_until = "", None, 0.0
    _backlog_cache[:] = [float("-inf"), 0]
    with _leases_lock:
        _leases.clear()


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    if _redis_state.client is None or _redis_state.url != url:
        _redis_state.client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        _redis_state.url = url
        _redis_state.bypass_until = 0.0
    return _redis_state.client


def rate_limit_exceeded(*, source_id: int, limit: int, cost: int) -> bool:
    """Count `cost` events against the source's fixed one-second window. One round trip:
    INCRBY and EXPIRE pipelined. A single request larger than the limit costs the whole limit, so
    a big batch can still get through an otherwise idle window instead of being refused forever.

    With a limit of 1,000/s or more, a process counts a small lease of events ahead (limit/1000,
    at most 1,000) and admits the next requests from it without asking Redis. Never more than the
    limit is admitted; a lease another process has not used yet can refuse an event early, at
    most (processes - 1) x lease per second, a tenth of a percent of the limit per process."""
    cost = min(cost, limit)
    now = time.time()
    window = int(now)
    with _leases_lock:
        left = _leases.pop((source_id, window), 0)
        if left >= cost:
            _leases[(source_id, window)] = left - cost
            return False
    if time.monotonic() < _redis_state.bypass_until:
        return False
    lease = min(limit // LEASE_DIVISOR, LEASE_MAX)
    # What this request still needs beyond the unused lease it holds, plus the next lease.
    reserve = cost - left + lease
    key = f"cdp:ingest:rate:{source_id}:{window}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incrby(key, reserve)
        pipe.expire(key, 2)
        count, _ = pipe.execute()
    except redis.RedisError:
        _redis_state.bypass_until = time.monotonic() + REDIS_BYPASS_SECONDS
        logger.warning(
            "ingest rate limiter: Redis unavailable, accepting events without a limit for %.0f s",
            REDIS_BYPASS_SECONDS,
            exc_info=True,
        )
        return False
    # Counted before this reservation: count - reserve. The request fits if its cost does.
    if count - lease > limit:
        return True
    spare = min(lease, limit - (count - lease))
    if spare > 0:
        with _leases_lock:
            if len(_leases) > 10_000:
                _leases.clear()
            _leases[(source_id, window)] = _leases.get((source_id, window), 0) + spare
    return False


def _backlog_estimate() -> int:
    """Queued events from Postgres's statistics: ~0.4 ms however big the queue, current to within
    about a second of each commit, dead-lettered rows included. Batches are counted as their
    number (statistics) times the mean size of a few of them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pg_stat_get_live_tuples('events_ingestqueue'::regclass),
                   pg_stat_get_live_tuples('events_ingestbatch'::regclass),
                   (SELECT avg(size) FROM (SELECT size FROM events_ingestbatch LIMIT 100) s)
            """
        )
        singles, batches, mean_size = cursor.fetchone()
        return int(singles or 0) + int((batches or 0) * (mean_size or 0))


def _backlog_exact(*, cap: int) -> int:
    """Queued events still to process, dead-lettered rows excluded. Each scan stops one past the
    cap (at a million rows the bounded scan takes ~120 ms; see docs/benchmarks.md): every batch
    row holds at least one event."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM (SELECT 1 FROM events_ingestqueue WHERE dead_at IS NULL LIMIT %s) q)
                 + (SELECT coalesce(sum(size), 0) FROM (SELECT size FROM events_ingestbatch LIMIT %s) b)
            """,
            [cap + 1, cap + 1],
        )
        return int(cursor.fetchone()[0])


def ingest_backlog() -> int:
    """The processing backlog as the admission check needs it, at most one query per
    BACKLOG_CACHE_SECONDS per process. Far below the cap the statistics estimate is precise
    enough; near it, an exact bounded count decides (and leaves dead-lettered rows out)."""
    now = time.monotonic()
    if now - _backlog_cache[0] < BACKLOG_CACHE_SECONDS:
        return int(_backlog_cache[1])
    cap = settings.INGEST_MAX_BACKLOG
    count = _backlog_estimate()
    if count >= cap // 2:
        count = _backlog_exact(cap=cap)
    _backlog_cache[:] = [now, count]
    return count


def ensure_admitted(*, source, cost: int) -> None:
    """Raise a 429 RequestError when the backlog is too deep or the source is over its limit."""
    if ingest_backlog() > settings.INGEST_MAX_BACKLOG:
        raise RequestError(
            429,
            "the processing backlog is too deep; retry later",
            "backlog_full",
            retry_after=settings.INGEST_BACKLOG_RETRY_AFTER,
        )
    limit = source.rate_limit_per_second or settings.INGEST_RATE_LIMIT_PER_SECOND
    if rate_limit_exceeded(source_id=source.pk, limit=limit, cost=max(cost, 1)):
        raise RequestError(
            429,
            f"this source is limited to {limit} events per second; retry later",
            "rate_limited",
            retry_after=1,
        )
