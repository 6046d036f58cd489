import pytest

from events import limits
from events import services as event_services
from events.models import Source


@pytest.fixture(autouse=True)
def _fresh_ingest_caches():
    # The write-key, backlog and Redis-client caches are per process; each test starts clean.
    limits.reset()
    event_services._SOURCE_CACHE.clear()
    event_services._wake_up.reset()
    yield
    limits.reset()
    event_services._SOURCE_CACHE.clear()


@pytest.fixture
def source(db):
    return Source.objects.create(name="Website")
