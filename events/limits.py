"""Admission control for the tracking API: a per-source rate limit and a processing-backlog
check. Both answer 429 with Retry-After before anything is stored, so a well-behaved client
keeps its events and retries later.

The rate limiter counts in Redis; when Redis is unreachable it fails OPEN (accepts and logs):
losing the limiter for a while is harmless, turning valid events into errors is not.
"""

import logging
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from events.ingest import RequestError

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


def reset() -> None:
    """Forget cached state (tests; a changed REDIS_URL is picked up without it)."""
    _redis_state.url, _redis_state.client, _redis_state.bypass_until = "", None, 0.0
    _backlog_cache[:] = [float("-inf"), 0]


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
    a big batch can still get through an otherwise idle window instead of being refused forever."""
    now = time.time()
    if time.monotonic() < _redis_state.bypass_until:
        return False
    key = f"cdp:ingest:rate:{source_id}:{int(now)}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incrby(key, min(cost, limit))
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
    return count > limit


def _backlog_estimate() -> int:
    """Live rows of the queue table from Postgres's statistics: ~0.4 ms however big the table,
    current to within about a second of each commit, dead-lettered rows included."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_live_tuples('events_ingestqueue'::regclass)")
        return int(cursor.fetchone()[0] or 0)


def _backlog_exact(*, cap: int) -> int:
    """Queue rows still to process, dead-lettered rows excluded, counting stops one past the cap
    (at a million rows the bounded scan takes ~120 ms; see docs/benchmarks.md)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events_ingestqueue WHERE dead_at IS NULL LIMIT %s) q",
            [cap + 1],
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
