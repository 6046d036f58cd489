import pytest

from events.ingest import limits
from events.models import Source
from events.services import queue as event_queue
from events.services import sources as event_sources


@pytest.fixture(autouse=True)
def _fresh_ingest_caches():
    # The write-key, backlog and Redis-client caches are per process; each test starts clean.
    limits.reset()
    event_sources._SOURCE_CACHE.clear()
    event_queue._wake_up.reset()
    yield
    limits.reset()
    event_sources._SOURCE_CACHE.clear()


@pytest.fixture
def source(db):
    return Source.objects.create(name="Website")
