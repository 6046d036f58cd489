import copy

import pytest
from django.db import connections

from core import replica as core_replica
from tests.replica.cluster import StreamingPair, find_binaries, run_as

NOT_RUN = "REPLICA TEST NOT RUN"  # tests/conftest.py counts these in its closing banner


@pytest.fixture(scope="session")
def streaming_pair(django_db_setup, django_db_blocker):
    """A primary holding a copy of the (migrated, empty) test database, and its hot standby: started
    once per session, by the first test that asks."""
    with django_db_blocker.unblock():
        default = connections["default"]
        default.ensure_connection()
        server_major = default.pg_version // 10000
        source = dict(default.settings_dict)
    bindir, why = find_binaries(server_major)
    if bindir is None:
        pytest.skip(f"{NOT_RUN}: {why}")
    user = run_as()
    if isinstance(user, str):
        pytest.skip(f"{NOT_RUN}: {user}")
    pair = StreamingPair(bindir, user=user)
    try:
        pair.start(source=source, dbname=source["NAME"])
    except Exception:
        logs = "\n".join(p.read_text()[-2000:] for p in pair.root.glob("*.log"))
        pair.close()
        raise RuntimeError(f"the streaming pair did not start; server logs:\n{logs}") from None
    yield pair
    pair.close()


def _forget(alias: str) -> None:
    """Close this thread's connection of `alias` and drop it, so the next use reads its settings."""
    connections[alias].close()
    del connections[alias]


@pytest.fixture(scope="module")
def replica_django(streaming_pair, django_db_blocker):
    """Django on the streaming pair for a module: `default` is its primary, `replica` its standby.
    Module-scoped, so the alias exists before each test's django_db setup (which must list it)."""
    pair = streaming_pair
    with django_db_blocker.unblock():
        default = connections["default"]
        default.close()
        saved = {key: default.settings_dict[key] for key in ("HOST", "PORT")}
        default.settings_dict.update(HOST="127.0.0.1", PORT=str(pair.primary.port))
        standby = copy.deepcopy(default.settings_dict)
        standby.update(PORT=str(pair.standby.port), TEST={**standby["TEST"], "MIRROR": "default"})
        standby["OPTIONS"] = {**standby.get("OPTIONS", {}), "connect_timeout": 2}
        configured = connections.settings.get(core_replica.REPLICA)  # a mirror, with DATABASE_REPLICA_URL
        if configured:
            _forget(core_replica.REPLICA)
        connections.settings[core_replica.REPLICA] = standby
    try:
        yield pair
    finally:
        with django_db_blocker.unblock():
            _forget(core_replica.REPLICA)
            if configured:
                connections.settings[core_replica.REPLICA] = configured
            else:
                del connections.settings[core_replica.REPLICA]
            default.close()
            default.settings_dict.update(saved)
            core_replica.replica_status_reset()


@pytest.fixture
def replica(replica_django, settings):
    """One test on the streaming pair (mark it django_db(transaction=True, databases=[default,
    replica]): a standby only ever sees committed rows). Its primary is flushed after the test like
    any transactional test's database."""
    pair = replica_django
    # Verdicts on the replica last the whole test unless a test checks again (refresh=True) or a
    # query marks it down: what a test sees never depends on how fast the machine is.
    settings.DATABASE_REPLICA_CHECK_SECONDS = 600
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 30
    core_replica.replica_status_reset()
    try:
        yield pair
    finally:
        core_replica.replica_status_reset()
        connections[core_replica.REPLICA].close()
        if not pair.standby.is_running():
            pair.standby.start()
        pair.resume_replay()
