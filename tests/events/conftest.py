import pytest

from events import limits, services


@pytest.fixture(autouse=True)
def _fresh_ingest_caches():
    # The write-key, backlog and Redis-client caches are per process; each test starts clean.
    limits.reset()
    services._SOURCE_CACHE.clear()
    services._last_wake_up[0] = float("-inf")
    yield
    limits.reset()
    services._SOURCE_CACHE.clear()
