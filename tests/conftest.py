import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from events.models import Source
from events.services import ingest_caches_reset
from pipeline.models import LostReason, Pipeline
from pipeline.services.defaults import DEFAULT_LOST_REASONS, DEFAULT_PIPELINE, install_defaults
from tests.factories import make_admin, make_user

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    if path := os.environ.get("CHROMIUM_PATH"):
        return path if Path(path).exists() else None
    for name in CHROMIUM_CANDIDATES:
        if found := shutil.which(name):
            return found
    return None


CHROMIUM = find_chromium()

# Under pytest-xdist each worker process (gw0, gw1, ...) gets its own test database (pytest-django
# appends the worker id to its name) and its own Redis database: the db in REDIS_URL minus the
# worker's index, so `make test` (Redis db 15, three workers on two cores) uses 15, 14 and 13, and
# at most 12 (four workers: the Makefile's cap); the helpers' and `make run`'s dbs are lower.
# Queues, rate-limit counters and the session Celery worker are then private to each process;
# Celery's broadcasts (ping, inspect) are scoped to the Redis db too. Without xdist (-n 0,
# -p no:xdist) REDIS_URL is used as given.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _redis_db_of_this_worker(url: str) -> str:
    if not XDIST_WORKER:
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    db = base - int(XDIST_WORKER.removeprefix("gw"))
    if db < 1:  # db 0 is `make run`'s
        raise pytest.UsageError(
            f"Redis db {base} minus xdist worker index {XDIST_WORKER} is below 1: give the run a higher "
            "--redis-db or fewer workers (PYTEST_WORKERS)"
        )
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def pytest_configure(config):
    _replica_as_test_mirror()
    url = _redis_db_of_this_worker(settings.REDIS_URL)
    if url == settings.REDIS_URL:
        return
    # Django's settings were loaded before this conftest (pytest-django sets Django up first):
    # move every setting derived from REDIS_URL, and the environment the subprocesses (the
    # session Celery worker, the production-server and `make run` tests) inherit.
    settings.REDIS_URL = settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = url
    os.environ["REDIS_URL"] = url
    from cdp_crm.celery import app

    if app.configured:
        app.conf.update(broker_url=url, result_backend=url)


def _replica_as_test_mirror() -> None:
    """With DATABASE_REPLICA_URL set, the replica alias is a test mirror (settings.py): Django gives
    it the test database's name but keeps the replica's server, where a test's fresh rows would
    arrive late, or never. Point it at the primary's server too, so it names the test database
    itself and core.replica reads the primary; tests/replica starts a real streaming pair."""
    if replica := settings.DATABASES.get("replica"):
        default = settings.DATABASES["default"]
        replica.update({key: default.get(key) for key in ("HOST", "PORT", "USER", "PASSWORD")})


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="BROWSER TEST NOT RUN: no Chromium found (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    _replica_tests_not_run_banner(terminalreporter)
    _imap_tests_not_run_banner(terminalreporter)
    if CHROMIUM:
        return
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if "BROWSER TEST NOT RUN" in str(r.longrepr)
    ]
    if skipped:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        terminalreporter.write_line(
            f"  {len(skipped)} BROWSER TESTS WERE NOT RUN: no Chromium on this machine.", red=True, bold=True
        )
        terminalreporter.write_line(
            "  Install Debian's chromium (or set CHROMIUM_PATH) to run them.", red=True
        )
        terminalreporter.write_line(bar, red=True, bold=True)


def _imap_tests_not_run_banner(terminalreporter) -> None:
    """tests/mail skips its IMAP sync tests with this mark when it finds no Dovecot."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "IMAP TEST NOT RUN" in str(r.longrepr)]
    if skipped:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        terminalreporter.write_line(
            f"  {len(skipped)} IMAP SYNC TESTS WERE NOT RUN: no Dovecot on this machine.", red=True, bold=True
        )
        terminalreporter.write_line(
            "  Install Debian's dovecot-imapd (or set CDP_DOVECOT) to run them; .ci/run does.", red=True
        )
        terminalreporter.write_line(bar, red=True, bold=True)


def _replica_tests_not_run_banner(terminalreporter) -> None:
    """tests/replica skips its tests with this mark when it finds no PostgreSQL server binaries."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if "REPLICA TEST NOT RUN" in str(r.longrepr)
    ]
    if skipped:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        terminalreporter.write_line(
            f"  {len(skipped)} READ REPLICA TESTS WERE NOT RUN: no PostgreSQL server binaries (initdb, "
            "pg_basebackup).",
            red=True,
            bold=True,
        )
        terminalreporter.write_line(
            "  Install postgresql (or set CDP_PG_BIN to a bin directory) to run them.", red=True
        )
        terminalreporter.write_line(bar, red=True, bold=True)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session, shared by tests/browser and tests/trust (Playwright's
    sync API allows one instance per thread)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls a test makes between
    # browser steps are still synchronous, so Django's async-safety guard must stand aside.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


# What the migrations installed in the test database (pipeline/migrations/0003), before
# django_db_setup took it out again: tests/pipeline/test_defaults.py checks it.
MIGRATED_DEFAULTS: dict = {}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The migrations give a new database the default "Sales pipeline" and lost reasons. Tests
    build the pipelines and reasons they are about, and a transactional test's flush empties every
    table anyway, so the defaults would be there for some tests and not others depending on the
    order they ran in: every test starts without them instead, and `fresh_install` puts them back."""
    with django_db_blocker.unblock():
        MIGRATED_DEFAULTS.update(
            pipelines=[
                (p.name, [(s.name, s.probability) for s in p.stages.all()])
                for p in Pipeline.objects.prefetch_related("stages")
            ],
            lost_reasons=list(LostReason.objects.values_list("name", flat=True)),
        )
        Pipeline.objects.filter(name=DEFAULT_PIPELINE).delete()
        LostReason.objects.filter(name__in=DEFAULT_LOST_REASONS).delete()


@pytest.fixture
def fresh_install(db):
    """The database as a new installation has it: the defaults the data migration creates."""
    from django.apps import apps

    return install_defaults(apps)


@pytest.fixture
def admin_user(db):
    return make_admin(username="admin-user", first_name="Ada")


@pytest.fixture
def sales_user(db):
    return make_user(role="Sales", username="sales-user")


@pytest.fixture
def marketing_user(db):
    return make_user(role="Marketing", username="marketing-user")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


@pytest.fixture
def marketing_client(client, marketing_user):
    client.force_login(marketing_user)
    return client


@pytest.fixture
def source(db):
    """A tracking source to send events to (/v1/* with its write key)."""
    return Source.objects.create(name="Website")


@pytest.fixture(autouse=True)
def _fresh_ingest_caches():
    # The write-key, rate-limit, backlog, suppression and wake-up caches are per process; each
    # test starts clean (and leaves nothing cached for the next).
    ingest_caches_reset()
    yield
    ingest_caches_reset()


def _test_database_url() -> str:
    """The DATABASE_URL of the test database that pytest-django created (for worker processes)."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(
        (parts.scheme, parts.netloc, "/" + settings.DATABASES["default"]["NAME"], parts.query, "")
    )


CELERY_QUEUES = [queue.name for queue in settings.CELERY_TASK_QUEUES]


class Worker:
    """A real `celery worker` process on the test database and the test Redis."""

    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_idle(self, *, timeout: float = 60) -> None:
        """Return once nothing is queued for the worker and nothing it took is unfinished.

        Every task acknowledges late (CELERY_TASK_ACKS_LATE), so a message the worker holds, running
        or waiting for its countdown, stays in the transport's `unacked` hash until it is done. Idle
        is seen three times in a row: the worker pops a message a moment before it records it as
        unacked."""
        import redis

        store = redis.Redis.from_url(settings.REDIS_URL)
        # kombu's Redis transport keeps a queue's prioritised messages in keys beside its own
        keys = [
            name + suffix for name in CELERY_QUEUES for suffix in ("", "\x06\x163", "\x06\x166", "\x06\x169")
        ]
        deadline = time.monotonic() + timeout
        seen_idle = 0
        while seen_idle < 3:
            pipe = store.pipeline(transaction=True)
            for key in keys:
                pipe.llen(key)
            pipe.hlen("unacked")
            seen_idle = seen_idle + 1 if not any(pipe.execute()) else 0
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not become idle:\n{self.output()[-3000:]}")
            time.sleep(0.02)


_session_worker: list[Worker] = []


def wait_until_the_session_worker_is_idle() -> None:
    """For tests that must not race a worker an earlier test started (no-op if none was)."""
    for worker in _session_worker:
        worker.wait_until_idle()


@pytest.fixture(scope="session")
def _celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    ready = log.with_name("ready")
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PYTHONUNBUFFERED": "1",
        # cdp_crm/celery.py touches it once the worker consumes: no polling with pings
        "CDP_WORKER_READY_FILE": str(ready),
        # Transactional tests end with a flush while this worker may still be draining what a
        # test sent (a test that did not ask for the worker, say): the two take locks in
        # different orders and Postgres would break the deadlock after 1 s by failing the flush.
        # With a lock timeout below deadlock_timeout the worker's statement gives way instead,
        # and its task retries.
        "PGOPTIONS": "-c lock_timeout=500",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "cdp_crm",
                "worker",
                "-Q",
                ",".join(CELERY_QUEUES),
            ]
            + ["--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle"]
            + ["-n", f"test-{XDIST_WORKER or 'main'}@%h"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(proc, log)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the Celery worker did not start:\n{worker.output()[-3000:]}")
        time.sleep(0.02)
    _session_worker.append(worker)
    yield worker
    _session_worker.clear()
    # Cold shutdown: the database is dropped next, so the idle tail of a drain has nothing to
    # finish (a warm shutdown waited for it).
    stop_process(proc, sig=signal.SIGQUIT)


@pytest.fixture
def celery_worker(_celery_worker_process):
    """The session's worker (started by the first test that asks for it). Tests using it need
    `transactional_db` so it sees their rows. The test's flush waits until the worker has finished
    what the test gave it: rows it wrote after the flush would be the next test's."""
    yield _celery_worker_process
    _celery_worker_process.wait_until_idle()


class WorkerPause:
    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        self.patch = patch

    def resume(self) -> None:
        """Let stored events wake the worker again (what was stored meanwhile waits for a drain)."""
        self.patch.undo()


@pytest.fixture
def paused_worker():
    """For a test that puts ingest queue rows in place and then looks at them (or lets a worker of
    its own take them): storing events wakes no worker, and the session's worker, if a test started
    it, is idle before the test begins, so nothing drains those rows first. `resume()` lets stored
    events wake it again; teardown does in any case. (Not Celery's cancel_consumer: its control
    replies time out under load, and an idle worker that nothing wakes is as still.)"""
    from events.services import queue

    patch = pytest.MonkeyPatch()
    patch.setattr(queue, "_wake_worker", lambda: None)
    wait_until_the_session_worker_is_idle()
    pause = WorkerPause(patch)
    yield pause
    pause.resume()


def stop_process(proc: subprocess.Popen, *, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
    """SIGTERM (or `sig`), then SIGKILL if it has not exited within `timeout` seconds."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# The rows data migrations install that every database test may count on: the role groups and
# the blocked-values list (the blocked list decides whether "test@test.com" joins two people).
# A fixture that commits rows and flushes them afterwards (tests/trust/test_permission_matrix.py's
# world) puts these back, or the database tests that run after it in the same process would find
# them gone. Transactional tests need not: they run after every database test (SLOWEST_FIRST's sort).
MIGRATED_ROWS = (
    ("accounts.migrations.0002_role_groups", "create_groups"),
    ("identity.migrations.0002_default_blocked_values", "add_defaults"),
    ("identity.migrations.0003_hot_rules", "add_default_rule"),
)


def migrated_rows_restore() -> None:
    import importlib

    from django.apps import apps

    for module, function in MIGRATED_ROWS:
        getattr(importlib.import_module(module), function)(apps, None)


# A transactional test's flush DELETEs from the tables holding rows, unless one holds more than
# this many: then it is Django's TRUNCATE of every table (cheaper there, and leaves no bloat).
FLUSH_DELETE_MAX_ROWS = 10_000
# Rows post_migrate would create again, identical but for their ids, after any flush: kept while
# they are as the last post_migrate left them (a test may add or change one, then they go too).
FLUSH_KEEPS = ("django_content_type", "auth_permission")
_FLUSH_KEEPS_FINGERPRINT = """
SELECT (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM django_content_type c),
       (SELECT md5(string_agg(p::text, ',' ORDER BY p.id)) FROM auth_permission p)
"""


def _flush_cheaply(connection, kept: dict) -> None:
    """Empty the tables as Django's flush does, at a fraction of its cost. `kept` remembers, per
    database, the fingerprint of the FLUSH_KEEPS rows as the last post_migrate left them."""
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import OperationalError, transaction

    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    quoted = [connection.ops.quote_name(table) for table in tables]
    counts = " UNION ALL ".join(
        f"SELECT {i}, (SELECT count(*) FROM (SELECT FROM {table} LIMIT {FLUSH_DELETE_MAX_ROWS + 1}) t)"
        for i, table in enumerate(quoted)
    )
    for attempt in range(5):
        try:
            with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
                # As TRUNCATE's own lock did: no other session (a worker finishing what the test
                # sent, a live-server thread) writes until the flush commits; else a row it adds
                # meanwhile, pointing at one deleted here, fails the flush's deferred foreign key
                # check, or survives into the next test. Reads go on.
                cursor.execute(f"LOCK TABLE {', '.join(quoted)} IN EXCLUSIVE MODE")
                cursor.execute(counts)
                rows = dict(cursor.fetchall())
                if any(n > FLUSH_DELETE_MAX_ROWS for n in rows.values()):
                    cursor.execute(f"TRUNCATE {', '.join(quoted)}")
                    keep = False
                else:
                    cursor.execute(_FLUSH_KEEPS_FINGERPRINT)
                    keep = cursor.fetchone() == kept.get(connection.alias)
                    for i, table in enumerate(tables):
                        if rows[i] and not (keep and table in FLUSH_KEEPS):
                            cursor.execute(f"DELETE FROM {quoted[i]}")
            break
        except OperationalError as exc:
            # a worker holding row locks while it asks for a table locked here: Postgres may pick
            # the flush as the deadlock victim, and it rolled back as a whole
            if getattr(exc.__cause__, "sqlstate", None) != "40P01" or attempt == 4:  # deadlock_detected
                raise
    if not keep:
        emit_post_migrate_signal(0, False, connection.alias)
        with connection.cursor() as cursor:
            cursor.execute(_FLUSH_KEEPS_FINGERPRINT)
            kept[connection.alias] = cursor.fetchone()


@pytest.fixture(autouse=True, scope="session")
def _flush_deletes_instead_of_truncating():
    """A transactional test (a live-server test too) ends with a flush. Django's is one TRUNCATE of
    all ~60 tables, which costs Postgres 0.4-1 s whatever they hold (each table gets new files),
    then the post_migrate signal, which creates the ~60 content types and ~250 permissions again
    (0.1-0.2 s). DELETEs from the few tables a test wrote to cost milliseconds, and the content
    types and permissions need not go when no test changed them. What the next test sees is the
    same: every other table empty, sequences not reset (TransactionTestCase flushes without
    RESTART IDENTITY). The foreign keys are DEFERRABLE INITIALLY DEFERRED (Django makes them so):
    checked at the flush's commit, when the rows they point from are gone too."""
    from django.db import connections
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown
    kept: dict = {}

    def _fixture_teardown(self):
        if self.reset_sequences or self.serialized_rollback or self.available_apps is not None:
            return original(self)
        for alias in self._databases_names(include_mirrors=False):
            _flush_cheaply(connections[alias], kept)

    TransactionTestCase._fixture_teardown = _fixture_teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(autouse=True, scope="session")
def _flush_survives_a_deadlock_with_the_worker():
    """A transactional test ends with a flush (DELETEs, or one TRUNCATE of every table: see above).
    A Celery worker may still be running a wake-up that test queued (an /v1 post's ingest batch,
    the stitching it triggers) and hold row locks on some of those tables while it asks for
    another, so Postgres can pick the flush as a deadlock victim and the test errors at teardown.
    The flush rolled back as a whole: running it again once the worker's transaction is over is
    safe."""
    from django.db import OperationalError
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(5):
            try:
                return original(self, sql_list)
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != "40P01" or attempt == 4:  # deadlock_detected
                    raise

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher takes ~0.3 s per hash by design; tests hash passwords for every user
    # they create. The login flow itself is unchanged.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# ---- the slowest tests start first -----------------------------------------------------------
# `make test` hands tests to its xdist processes in collection order, one at a time as each frees
# up (`--dist load --maxschedchunk 1`, see the Makefile). A test of a minute handed out last runs
# alone while the other process is done: the suite then takes that minute longer. Started first,
# the long tests run side by side with the short ones and the last to finish are short. Listed as
# file::function (every parametrized case of it), slowest first, as measured with
# `make test PYTEST_ARGS=--durations=60`; a test not listed keeps its place. An entry whose
# function is gone fails the run, so the list cannot go stale unnoticed.
SLOWEST_FIRST = (
    "tests/segments/test_properties.py::test_hostile_definitions_are_refused_or_run_never_failing_in_sql",
    "tests/segments/test_api.py::test_hostile_input_never_gives_a_5xx",
    "tests/cdp_crm/test_dev.py::test_make_run_ends_with_a_login_banner_whose_password_works",
    "tests/segments/test_properties.py::test_incremental_and_full_recompute_agree",
    "tests/trust/test_xss_browser.py::test_no_stored_payload_runs_or_becomes_markup_on_any_page",
    "tests/workspace/test_seed_demo.py::test_demo_setup_follows_the_database_not_a_marker_file",
    "tests/identity/test_rebuild.py::test_rebuild_equals_incremental_processing_for_any_event_sequence",
    "tests/segments/test_views.py::test_hostile_builder_posts_never_give_a_5xx",
    "tests/workspace/test_seed_demo.py::test_seed_demo_fills_the_cdp_through_the_tracking_pipeline",
    "tests/cdp_crm/test_settings.py::test_production_static_build_succeeds",
    "tests/workspace/test_seed_demo.py::test_seed_demo_is_realistic_deterministic_and_idempotent",
    "tests/cdp_crm/test_settings.py::test_production_settings_pass_check_deploy",
    "tests/workspace/test_seed_demo.py::test_every_seeded_date_is_possible",
    "tests/cdp_crm/test_settings.py::test_plain_http_production_settings_are_flagged",
    "tests/trust/test_ingest_fuzz.py::test_gzip_bombs_are_413_without_inflating_them",
    "tests/privacy/test_erasure.py::test_erasing_a_person_with_10k_events_leaves_no_trace_anywhere",
    "tests/workspace/test_seed_demo.py::test_demo_traffic_is_deterministic",
    "tests/workspace/test_seed_demo.py::test_seed_demo_reuses_the_default_pipeline_and_lost_reasons",
    "tests/cdp_crm/test_dev.py::test_embedded_postgres_and_valkey_start_answer_and_stop",
    # many cases of a few seconds each
    "tests/trust/test_api_schemathesis.py::test_api_answers_every_generated_request_within_its_schema",
    "tests/trust/test_hostile_text.py::test_no_page_answers_5xx_to_hostile_query_parameters",
    "tests/trust/test_hostile_text.py::test_no_write_answers_5xx_to_hostile_field_values",
    "tests/cdp_crm/test_role_crawl.py::test_no_link_a_role_is_shown_answers_403",
)


# trylast: after pytest-django's reordering and -k/-m deselection
@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_slowest_first(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    modules = {}
    for item in items:
        name = item.nodeid.split("[", 1)[0]
        modules.setdefault(name.split("::", 1)[0], item.module)
    for name in SLOWEST_FIRST:
        path, function = name.split("::")
        if path in modules and not hasattr(modules[path], function):
            raise pytest.UsageError(f"tests/conftest.py SLOWEST_FIRST names {name}, which no longer exists")
    # pytest-django ran the database tests first, the transactional ones next (their flush takes
    # out what the data migrations installed: role groups, the blocked-values list), the rest
    # last; that order stays, and within each part the listed tests go first, in list order.
    # The sort is stable: every other test keeps its place.
    items.sort(key=lambda item: (_django_order(item), rank.get(item.nodeid.split("[", 1)[0], len(rank))))


def _django_order(item) -> int:
    """The part of pytest-django's order an item is in: 0 database, 1 transactional, 2 neither (as
    its own reordering reckons it; the suite has no unittest-style TestCase classes)."""
    from pytest_django.plugin import validate_django_db

    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", [])
    transactional = "transactional_db" in fixtures or "live_server" in fixtures
    if marker:
        transaction, reset_sequences, *_ = validate_django_db(marker)
        transactional = transactional or transaction or reset_sequences
    if transactional:
        return 1
    return 0 if marker or "db" in fixtures else 2
