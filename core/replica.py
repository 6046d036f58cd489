"""Heavy read-only work on the read replica (`DATABASE_REPLICA_URL`), where the code opts in.

Reads go to the primary unless a call site opts in with `replica_reads`: reports, CSV exports and
segment previews do. Inside an opted-in block a read still goes to the primary when

- there is no replica (`DATABASE_REPLICA_URL` unset), or the replica alias names the primary's own
  database (a test mirror);
- the primary connection is inside `transaction.atomic` (checked when the block starts and again
  at every query, so an atomic block opened inside it reads the primary too);
- this unit of work has written: `unit_of_work()` (opened per request by `ReplicaMiddleware`)
  records every statement on the primary connection that is not a plain read (an execute wrapper
  installed on each primary connection), so a request that created a row and then exports never
  reads a replica that may not have the row yet. Outside any unit (a shell, a task) the first write
  turns the replica off for that thread for good: safe, and a task that wants replica reads opens
  `unit_of_work()` around each run;
- the replica is down or lags more than `DATABASE_REPLICA_MAX_LAG_SECONDS` (`replica_status`,
  checked at most every `DATABASE_REPLICA_CHECK_SECONDS` per process; a "down" verdict is cached
  just as long, so requests do not each pay a connect timeout).

A decorated function that fails on the replica (the connection broke, or a hot-standby conflict
cancelled its query) is run again on the primary, and a broken connection marks the replica down;
a decorated generator (a CSV's rows) is restarted on the primary if it fails before its first item.
The router (`ReplicaRouter`) sends every write, and every read outside an opted-in block, to the
primary. docs/scaling.md ("Read replica") describes the rules and the production setup.
"""

import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

REPLICA = "replica"
DEFAULT = DEFAULT_DB_ALIAS


# The alias the reads of the current opted-in block go to (None: not in a block).
_reads: ContextVar[str | None] = ContextVar("replica_reads", default=None)


@dataclass
class _Unit:
    wrote: bool = False


# The current unit of work (a request): whether it has written on the primary.
_unit: ContextVar[_Unit | None] = ContextVar("replica_unit", default=None)


# --- writes in this unit of work

# Statements that read (or only set session state); anything else counts as a write. A statement
# starting with WITH counts as a write: a CTE may insert.
_READ_STATEMENTS = ("SELECT", "SHOW", "EXPLAIN", "SET", "RESET", "SAVEPOINT", "RELEASE", "ROLLBACK", "VALUES")


def _is_read(sql: object) -> bool:
    # The head only: a bulk insert's SQL is megabytes. (More leading blanks than that: a write.)
    return isinstance(sql, str) and sql[:40].lstrip().upper().startswith(_READ_STATEMENTS)


def _track_writes(execute, sql, params, many, context):
    if not _is_read(sql):
        unit = _unit.get()
        if unit is None:
            _unit.set(_Unit(wrote=True))
        else:
            unit.wrote = True
    return execute(sql, params, many, context)


def _install_tracking(sender=None, connection=None, **kwargs) -> None:
    connection = connection or connections[DEFAULT]
    if connection.alias == DEFAULT and _track_writes not in connection.execute_wrappers:
        # First, not last: Django's `execute_wrapper()` context pops the last wrapper on exit.
        connection.execute_wrappers.insert(0, _track_writes)


def write_tracking_install() -> None:
    """Record writes on every primary connection from now on (cdp_crm's AppConfig.ready calls it:
    before any request, task or command runs)."""
    connection_created.connect(_install_tracking, dispatch_uid="core.replica.track_writes")
    _install_tracking()


@contextmanager
def unit_of_work() -> Iterator[None]:
    """A unit whose reads must see its own writes: after its first write, `replica_reads` blocks in
    it read the primary. ReplicaMiddleware opens one per request."""
    _install_tracking()  # this thread's connection may predate write_tracking_install()
    token = _unit.set(_Unit())
    try:
        yield
    finally:
        _unit.reset(token)


class ReplicaMiddleware:
    """One unit of work per request. Listed first, so writes made by any later middleware count."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        with unit_of_work():
            return self.get_response(request)


# --- the replica's health and lag


@dataclass(frozen=True)
class ReplicaStatus:
    usable: bool
    reason: str  # why not usable, or "ok"
    lag_seconds: float | None  # None when unknown (replica down or not configured)
    checked_at: float  # time.monotonic()


_status: ReplicaStatus | None = None
_check_lock = threading.Lock()


def _configured() -> bool:
    if REPLICA not in connections.settings:
        return False
    replica, primary = connections.settings[REPLICA], connections.settings[DEFAULT]
    same = all(replica.get(key) == primary.get(key) for key in ("HOST", "PORT", "NAME"))
    return not same  # a test mirror (or a misconfiguration) names the primary's own database


def replica_status(*, refresh: bool = False) -> ReplicaStatus:
    """The cached verdict on the replica, checked again when older than
    DATABASE_REPLICA_CHECK_SECONDS (or `refresh`). One thread per process checks at a time; the
    others keep using the previous verdict meanwhile."""
    global _status
    current = _status
    interval = settings.DATABASE_REPLICA_CHECK_SECONDS
    if current is not None and not refresh and time.monotonic() - current.checked_at < interval:
        return current
    if not _check_lock.acquire(blocking=current is None or refresh):
        return current
    try:
        status = _check()
        if current is None or current.usable != status.usable:
            log = logger.info if status.usable else logger.warning
            log("read replica %s: %s", "in use" if status.usable else "not used", status.reason)
        _status = status
        return status
    finally:
        _check_lock.release()


def replica_mark_down(reason: str) -> None:
    """A query on the replica failed on its connection: use the primary until the next check."""
    global _status
    if _status is None or _status.usable:
        logger.warning("read replica not used: %s", reason)
    _status = _unusable(reason, time.monotonic())
    _close(REPLICA)


def _close(alias: str) -> None:
    with suppress(DatabaseError):
        connections[alias].close()


def _unusable(reason: str, now: float) -> ReplicaStatus:
    return ReplicaStatus(usable=False, reason=reason, lag_seconds=None, checked_at=now)


def _check() -> ReplicaStatus:
    """Is the replica up, in recovery, and at most DATABASE_REPLICA_MAX_LAG_SECONDS behind?

    Lag is measured in WAL, not by the clock alone: the primary's flushed WAL position is read
    first, then the replica's replay position. A replica that has replayed that far has everything
    committed before the check: lag 0, however long ago the last transaction was (the replay
    timestamp alone grows without bound on an idle primary). A replica behind it is as stale as
    its last replayed commit: lag = the primary's clock now - pg_last_xact_replay_timestamp() (both
    on the primary's clock). This overstates the lag only when a check lands in the milliseconds
    between a commit after an idle spell and its replay, which costs one interval on the primary.
    """
    now = time.monotonic()
    if not _configured():
        return _unusable("no replica configured", now)
    try:
        with connections[DEFAULT].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_flush_lsn()::text, clock_timestamp()")
            primary_lsn, primary_now = cursor.fetchone()
    except DatabaseError as exc:
        return _unusable(f"primary position unknown: {exc}", now)
    try:
        in_recovery, caught_up, replayed_at = _replica_position(primary_lsn)
    except DatabaseError as exc:
        return _unusable(f"down: {exc}".strip(), now)
    if not in_recovery:
        # A promoted standby is a primary of its own now, no longer following this one.
        return _unusable("not in recovery (promoted?)", now)
    if caught_up:
        lag = 0.0
    elif replayed_at is None:  # behind, and nothing replayed since it started
        lag = math.inf
    else:
        lag = max(0.0, (primary_now - replayed_at).total_seconds())
    limit = settings.DATABASE_REPLICA_MAX_LAG_SECONDS
    if lag > limit:
        return ReplicaStatus(
            usable=False, reason=f"lags {lag:.1f} s (limit {limit} s)", lag_seconds=lag, checked_at=now
        )
    return ReplicaStatus(usable=True, reason="ok", lag_seconds=lag, checked_at=now)


def _replica_position(primary_lsn: str) -> tuple[bool, bool, Any]:
    """In recovery?, replayed up to `primary_lsn`?, the last replayed commit's time. A connection
    kept from before a replica restart fails once: that one is retried on a new connection."""
    replica = connections[REPLICA]
    reused = replica.connection is not None
    while True:
        try:
            with replica.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn,"
                    " pg_last_xact_replay_timestamp()",
                    [primary_lsn],
                )
                return cursor.fetchone()
        except DatabaseError:
            _close(REPLICA)
            if not reused:
                raise
            reused = False


def replica_status_reset() -> None:
    """Forget the cached verdict (tests start each case clean)."""
    global _status
    _status = None


# --- choosing and routing


def reads_alias() -> str:
    """Where an opted-in read would go now: "replica" or "default" (the rules in the module doc)."""
    if not _configured():
        return DEFAULT
    if connections[DEFAULT].in_atomic_block:
        return DEFAULT
    unit = _unit.get()
    if unit is not None and unit.wrote:
        return DEFAULT
    return REPLICA if replica_status().usable else DEFAULT


def _retry_on_primary(exc: DatabaseError) -> bool:
    """Whether a failure on the replica is the replica's (so the primary may answer instead), and
    mark it down when its connection broke. A statement timeout or an SQL error is the query's:
    the primary would fail the same way."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if isinstance(exc, InterfaceError) or (isinstance(exc, OperationalError) and sqlstate is None):
        replica_mark_down(f"connection failed: {exc}".strip())
        return True
    if sqlstate and sqlstate.startswith(("08", "57P")):  # connection exception, server shut down
        replica_mark_down(f"connection failed: {exc}".strip())
        return True
    # 40001 on a standby: "canceling statement due to conflict with recovery".
    return sqlstate == "40001"


@contextmanager
def _using(alias: str) -> Iterator[None]:
    token = _reads.set(alias)
    try:
        yield
    finally:
        _reads.reset(token)


@contextmanager
def _block() -> Iterator[str]:
    alias = _reads.get() or reads_alias()  # a nested block keeps the outer block's choice
    try:
        with _using(alias):
            yield alias
    except DatabaseError as exc:
        if alias == REPLICA:
            _retry_on_primary(exc)  # marks the replica down when its connection broke
        raise


def _decorate[F: Callable[..., Any]](func: F) -> F:
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def generator(*args, **kwargs):
            # Chosen when called (in the view, inside the request's unit of work), kept for every
            # item: a streamed response is iterated after the view, and its middleware, returned.
            return _stream(func, args, kwargs, _reads.get() or reads_alias())

        return generator  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _reads.get() is not None:  # nested: the outer block chose, and retries
            return func(*args, **kwargs)
        alias = reads_alias()
        if alias == REPLICA:
            try:
                with _using(REPLICA):
                    return func(*args, **kwargs)
            except DatabaseError as exc:
                if not _retry_on_primary(exc):
                    raise
                logger.info("read replica failed (%s); %s runs on the primary", exc, func.__qualname__)
        with _using(DEFAULT):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _stream(func: Callable, args: tuple, kwargs: dict, alias: str) -> Iterator:
    items = func(*args, **kwargs)
    started = False
    try:
        while True:
            token = _reads.set(alias)
            try:
                item = next(items)
            except StopIteration:
                return
            except DatabaseError as exc:
                if alias != REPLICA or not _retry_on_primary(exc) or started:
                    raise
                alias, items = DEFAULT, func(*args, **kwargs)  # nothing sent yet: start over
                continue
            finally:
                _reads.reset(token)
            started = True
            yield item
    finally:
        items.close()  # a download cut short closes its server-side cursor now, not at GC


def replica_reads[F: Callable[..., Any]](func: F | None = None):
    """Opt in: the reads of `func` (a function or a generator function), or of a `with
    replica_reads():` block, may go to the replica. Only for code that writes nothing and need not
    see writes made just before it in the same unit of work (those send it to the primary anyway).
    The decorator form runs a function again on the primary when the replica fails under it; the
    `with` form cannot re-run its body, so it only marks the replica down and re-raises."""
    if func is not None:
        return _decorate(func)
    return _block()


class ReplicaRouter:
    """Writes, and reads outside an opted-in block, go to the primary; an opted-in block's reads go
    where the block chose, unless the primary connection has entered transaction.atomic since."""

    def db_for_read(self, model, **hints) -> str:
        alias = _reads.get()
        if alias is None or alias == DEFAULT or connections[DEFAULT].in_atomic_block:
            # Also for rows loaded from the replica (the instance hint): a template that follows a
            # sample row's foreign key after the block reads the primary, never a replica that
            # may be down by then.
            return DEFAULT
        return alias

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        if {obj1._state.db, obj2._state.db} <= {DEFAULT, REPLICA, None}:
            return True  # one database, two connections
        return None

    def allow_migrate(self, db, app_label, **hints) -> bool | None:
        return False if db == REPLICA else None
