import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

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


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="BROWSER TEST NOT RUN: no Chromium found (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
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


def _test_database_url() -> str:
    """The DATABASE_URL of the test database that pytest-django created (for worker processes)."""
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(
        (parts.scheme, parts.netloc, "/" + settings.DATABASES["default"]["NAME"], parts.query, "")
    )


WORKER_QUEUES = ("default", "ingest", "identity", "segments")
# The session's worker once a test has started it: a later test that needs it idle pauses it.
_RUNNING_WORKERS: list["Worker"] = []


class Worker:
    """A real `celery worker` process on the test database and the test Redis."""

    def __init__(self, proc: subprocess.Popen, log: Path, name: str) -> None:
        self.proc = proc
        self.log = log
        self.name = name

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _control(self, command: str, queue: str) -> None:
        from cdp_crm.celery import app

        replies = getattr(app.control, command)(queue, destination=[self.name], reply=True, timeout=10)
        assert replies, f"the worker did not answer {command}({queue!r}):\n{self.output()[-3000:]}"

    def pause(self, *, timeout: float = 60) -> None:
        """Stop taking messages, then wait until the tasks it holds are over (a drain polls for new
        rows for a while after its queue empties, so "no message queued" is not "idle")."""
        from cdp_crm.celery import app

        for queue in WORKER_QUEUES:
            self._control("cancel_consumer", queue)
        inspect = app.control.inspect(destination=[self.name], timeout=10)
        deadline = time.monotonic() + timeout
        while (inspect.active() or {}).get(self.name) != [] or (inspect.reserved() or {}).get(
            self.name
        ) != []:
            assert time.monotonic() < deadline, f"the worker stayed busy:\n{self.output()[-3000:]}"
            time.sleep(0.05)

    def resume(self) -> None:
        for queue in WORKER_QUEUES:
            self._control("add_consumer", queue)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """Start one worker for the session. Tests using it need `transactional_db` so it sees their rows."""
    import redis

    from cdp_crm.celery import app

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PYTHONUNBUFFERED": "1",
        # Transactional tests end with a flush (TRUNCATE of every table) while this worker may
        # still be draining what a test sent: the two take table locks in different orders and
        # Postgres would break the deadlock after 1 s by failing the flush. With a lock timeout
        # below deadlock_timeout the worker's statement gives way instead, and its task retries.
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
                "default,ingest,identity,segments",
            ]
            + ["--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", "test@%h"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while not (pong := app.control.ping(timeout=0.5)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the Celery worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
    (name,) = pong[0]
    worker = Worker(proc, log, name)
    _RUNNING_WORKERS.append(worker)
    yield worker
    _RUNNING_WORKERS.remove(worker)
    stop_process(proc)


class WorkerPause:
    def __init__(self, worker: Worker | None) -> None:
        self.worker = worker

    def resume(self) -> None:
        if self.worker is not None:
            self.worker.resume()
            self.worker = None


@pytest.fixture
def paused_worker(request):
    """For a test that puts ingest or segment queue rows in place and then looks at them (or lets
    a worker of its own take them): the session's Celery worker, if a test started it, is paused
    and idle before the test begins, so it cannot drain those rows first. `resume()` lets it take
    messages again (what was queued meanwhile included); teardown resumes it in any case."""
    if "celery_worker" in request.fixturenames:
        request.getfixturevalue("celery_worker")
    worker = _RUNNING_WORKERS[0] if _RUNNING_WORKERS else None
    if worker is not None:
        worker.pause()
    pause = WorkerPause(worker)
    yield pause
    pause.resume()


def stop_process(proc: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(autouse=True, scope="session")
def _flush_survives_a_deadlock_with_the_worker():
    """A transactional test ends with one TRUNCATE of every table. The session's Celery worker may
    still be running a wake-up that test queued (an /v1 post's ingest batch, the stitching it
    triggers) and hold row locks on some of those tables while it asks for another, so Postgres
    can pick the TRUNCATE as a deadlock victim and the test errors at teardown. The TRUNCATE
    rolled back as a whole: running it again once the worker's transaction is over is safe."""
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
