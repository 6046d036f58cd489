from tests.identity.conftest import _fresh_ingest_caches, source  # noqa: F401  the same fixtures
