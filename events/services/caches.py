"""What this process caches on the ingestion path, forgotten in one call: the write-key lookups
(sources), the rate limiter's Redis client and leases and the backlog estimate (limits), the
suppression list (suppression) and the ingest worker's wake-up throttle (queue). Each is
correct without this (it expires or refreshes on its own); the tests start every case clean
through it instead of reaching into the modules."""

from events.ingest import limits
from events.services import queue, sources, suppression


def ingest_caches_reset() -> None:
    limits.reset()
    sources._SOURCE_CACHE.clear()
    suppression.forget_cache()
    queue._wake_up.reset()
