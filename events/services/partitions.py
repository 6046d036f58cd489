"""The partitioned event log: `events_event` is range-partitioned by `received_at`, one partition
per calendar month (UTC), plus a DEFAULT partition so an insert never fails.

- `event_partitions_ensure` (beat, hourly) creates the current month's partition and
  PARTITIONS_AHEAD more, and gives a partition of its own to any month found in the DEFAULT
  partition (rows that arrived while beat was down), moving those rows out of it. Idempotent.
- `event_partitions_expired` / `event_partition_drop` let retention drop a whole month once
  every source with rows in it is past its retention (events/services/retention.py).

Postgres wants the partition key in every unique constraint, so the database's primary key is
`(id, received_at)`; Django still knows `id` as the primary key (ids come from one sequence and
are unique). No foreign key can reference `id` alone any more: IngestQueue.event and identity's
ContactEvent.event keep their ORM cascade with `db_constraint=False` (docs/scaling.md,
"Partitioned event log").

The layout helpers (`event_log_partitioned_create`, `event_log_swap`) are shared with the online
migration of an existing table (events/services/partition_migration.py) and the fresh-install
migration (events/migrations/0010_partitioned_event_log.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLE = "events_event"
# The partitioned table's name while an existing table is being copied into it.
SHADOW = "events_event_partitioned"
DEFAULT_PARTITION = "events_event_default"
PARTITIONS_AHEAD = 3
# DDL on the parent (creating, attaching, dropping a partition) takes a lock that queues every
# insert behind it; give up quickly instead (the next run tries again) so ingestion never stalls
# for longer than this.
DDL_LOCK_TIMEOUT = "2s"
# pg_advisory_xact_lock key: one partition maintenance run at a time (ensure, drop, swap).
_LOCK_KEY = 0x65766E74_70617274  # "evntpart"

# The event log's indexes (events.models.Event.Meta.indexes) and constraints, created on the
# partitioned parent (each partition gets its own copy). {t} is the table, {p} a name prefix
# ("" for the final names; the shadow table uses temporary ones until the swap).
_INDEXES = [
    ("event_source_received", "CREATE INDEX {p}event_source_received ON {t} (source_id, received_at DESC)"),
    (
        "event_anonymous_id",
        "CREATE INDEX {p}event_anonymous_id ON {t} (anonymous_id) WHERE NOT anonymous_id::text = ''",
    ),
    ("event_user_id", "CREATE INDEX {p}event_user_id ON {t} (user_id) WHERE NOT user_id::text = ''"),
    (
        "event_previous_id",
        "CREATE INDEX {p}event_previous_id ON {t} (previous_id) WHERE NOT previous_id::text = ''",
    ),
]
PKEY = "events_event_pkey"
SOURCE_FK = "events_event_source_id_8865a32a_fk_events_source_id"
SEQUENCE = "events_event_id_seq"
LOCK_NOT_AVAILABLE = "55P03"


def month_start(when: dt.datetime) -> dt.datetime:
    when = when.astimezone(dt.UTC)
    return dt.datetime(when.year, when.month, 1, tzinfo=dt.UTC)


def month_add(start: dt.datetime, months: int) -> dt.datetime:
    index = start.year * 12 + start.month - 1 + months
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def partition_name(start: dt.datetime) -> str:
    return f"{TABLE}_y{start.year:04d}m{start.month:02d}"


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    start: dt.datetime  # inclusive
    end: dt.datetime  # exclusive


def _relkind(cursor, name: str) -> str | None:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return row[0] if row else None


def event_log_is_partitioned() -> bool:
    with connection.cursor() as cursor:
        return _relkind(cursor, TABLE) == "p"


def _partitioned_table(cursor) -> str | None:
    """The partitioned event table: events_event, or its shadow while a copy is under way."""
    if _relkind(cursor, TABLE) == "p":
        return TABLE
    if _relkind(cursor, SHADOW) == "p":
        return SHADOW
    return None


def event_partitions(*, table: str = TABLE) -> list[Partition]:
    """The monthly partitions (not DEFAULT), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1],
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(%s) AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
            """,
            [table],
        )
        rows = cursor.fetchall()
        found = []
        for name, start, end in rows:
            cursor.execute("SELECT %s::timestamptz, %s::timestamptz", [start, end])
            lo, hi = cursor.fetchone()
            found.append(Partition(name=name, start=lo, end=hi))
    return sorted(found, key=lambda p: p.start)


def _create_partition(
    cursor,
    *,
    table: str,
    start: dt.datetime,
    name: str | None = None,
    default: str = DEFAULT_PARTITION,
    key: str = "received_at",
) -> bool:
    """Create the month's partition of `table` (the event log, or a co-partitioned or
    day-partitioned table with its own `name`, `default` and partition `key`); rows of that month
    already in DEFAULT move into it (in this transaction, which holds the DEFAULT partition's
    lock meanwhile). False if it existed."""
    name, end = name or partition_name(start), month_add(start, 1)
    if _relkind(cursor, name) is not None:
        return False
    # A date column's bounds are the months' first days (UTC), a timestamp's the instants.
    lo, hi = (start.date(), end.date()) if key == DAY_KEY else (start, end)
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {key} >= %s AND {key} < %s)", [lo, hi])
    if cursor.fetchone()[0]:
        # Postgres refuses a partition whose range has rows in DEFAULT: move them out first.
        cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        # CHECK constraints too: ATTACH refuses a table without the parent's.
        cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"""
            WITH moved AS (
                DELETE FROM {default} WHERE {key} >= %s AND {key} < %s RETURNING *
            )
            INSERT INTO {name} SELECT * FROM moved
            """,
            [lo, hi],
        )
        logger.info("moved %s rows of %s out of the DEFAULT partition", cursor.rowcount, name)
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lo, hi])
    else:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)", [lo, hi])
    return True


# -- co-partitioned tables: higher apps' per-event tables with the event log's months ---------


def copartitioned_tables() -> list[str]:
    """settings.EVENTS_COPARTITIONED_TABLES: tables (of higher apps; events may not import them)
    partitioned by a `received_at` column with the event log's monthly boundaries, whose months
    are created and dropped together with the event log's (identity_contactevent)."""
    return list(getattr(settings, "EVENTS_COPARTITIONED_TABLES", []))


# The partition key of day-partitioned tables: a date column.
DAY_KEY = "day"


def day_partitioned_tables() -> list[str]:
    """settings.EVENTS_DAY_PARTITIONED_TABLES: tables of higher apps partitioned by a date column
    `day` with the event log's months as dates (identity_dailyactivity, the rollups). Their
    months are created with the event log's, never dropped with them: a month of the event log
    (by received_at) is not a month of days (by the event's timestamp), so the app that owns
    the table empties its month itself (identity's EVENTS_MONTH_DROP_HOOKS entry)."""
    return list(getattr(settings, "EVENTS_DAY_PARTITIONED_TABLES", []))


def day_partition_name(table: str, start: dt.datetime) -> str | None:
    """The name of `table`'s partition for the month of days starting at `start`, or None when
    there is none (not partitioned, or that month's days are in its DEFAULT partition)."""
    name = copartition_name(table, start)
    with connection.cursor() as cursor:
        return name if _relkind(cursor, name) == "r" else None


def copartition_name(table: str, start: dt.datetime) -> str:
    return f"{table}_y{start.year:04d}m{start.month:02d}"


def copartition_default(table: str) -> str:
    return f"{table}_default"


def _copartitions_create(cursor, *, start: dt.datetime) -> list[str]:
    created = []
    tables = [(t, "received_at") for t in copartitioned_tables()] + [
        (t, DAY_KEY) for t in day_partitioned_tables()
    ]
    for table, key in tables:
        if _relkind(cursor, table) != "p":
            continue
        if _create_partition(
            cursor,
            table=table,
            start=start,
            name=copartition_name(table, start),
            default=copartition_default(table),
            key=key,
        ):
            created.append(copartition_name(table, start))
    return created


def copartitioned_convert(cursor, *, table: str, key: str, partition_key: str = "received_at") -> None:
    """Turn the unpartitioned `table` (which has a filled `partition_key` column: `received_at`,
    or DAY_KEY for a day-partitioned table) into one range-partitioned by it with the event log's
    months and a DEFAULT partition, keeping every row, index and foreign key; its primary key
    becomes (`key`, `partition_key`). One
    transaction holding ACCESS EXCLUSIVE on the table while its rows are copied: fine for the
    tables this runs on at install time; a large table would need the online pattern of
    events/services/partition_migration.py (docs/scaling.md, "Partitioned event log")."""
    if _relkind(cursor, table) in (None, "p"):
        return
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    # Deferred foreign-key checks pending on its rows would make Postgres refuse the DROP below.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        [table],
    )
    indexes = cursor.fetchall()
    # Foreign keys and unique constraints (recreated as constraints, not bare indexes: later
    # migrations name them); CHECK constraints come with LIKE ... INCLUDING CONSTRAINTS.
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY contype DESC, conname",
        [table],
    )
    foreign_keys = cursor.fetchall()
    # An identity column (Django's BigAutoField) cannot be on a partitioned table before
    # Postgres 17: it becomes a plain column with a sequence of its own, carried on.
    cursor.execute(
        "SELECT attidentity <> '' FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
        [table, key],
    )
    identity = cursor.fetchone()[0]
    if identity:
        cursor.execute(f"SELECT coalesce(max({key}), 0) + 1 FROM {table}")
        next_id = cursor.fetchone()[0]
    new = f"{table}_partitioned"
    cursor.execute(
        f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        f" PARTITION BY RANGE ({partition_key})"
    )
    events_table = _partitioned_table(cursor) or TABLE
    for part in event_partitions(table=events_table):
        name = copartition_name(table, part.start)
        bounds = [part.start.date(), part.end.date()] if partition_key == DAY_KEY else [part.start, part.end]
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {new} FOR VALUES FROM (%s) TO (%s)", bounds)
    cursor.execute(f"CREATE TABLE {copartition_default(table)} PARTITION OF {new} DEFAULT")
    cursor.execute(f"INSERT INTO {new} SELECT * FROM {table}")
    cursor.execute(f"DROP TABLE {table}")
    cursor.execute(f"ALTER TABLE {new} RENAME TO {table}")
    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key}, {partition_key})")
    if identity:
        sequence = f"{table}_{key}_seq"
        cursor.execute(
            f"CREATE SEQUENCE {sequence} AS bigint OWNED BY {table}.{key} START WITH {int(next_id)}"
        )
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {key} SET DEFAULT nextval('{sequence}')")
    for _, sql in indexes:
        cursor.execute(sql)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _lock(cursor) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [DDL_LOCK_TIMEOUT])


def event_partitions_ensure(*, now: dt.datetime | None = None, ahead: int = PARTITIONS_AHEAD) -> list[str]:
    """Create the partitions of this month and `ahead` months more, and of every month that has
    rows in the DEFAULT partition; returns the names created. Idempotent; a no-op while the
    event log is not partitioned. One partition per transaction (short locks)."""
    this_month = month_start(now or timezone.now())
    created = []
    with connection.cursor() as cursor:
        table = _partitioned_table(cursor)
        if table is None:
            return []
        _default_partition_ensure(cursor, table=table)
        stranded = []
        for default, key in [(DEFAULT_PARTITION, "received_at AT TIME ZONE 'UTC'")] + [
            (copartition_default(t), "received_at AT TIME ZONE 'UTC'")
            for t in copartitioned_tables()
            if _relkind(cursor, t) == "p"
        ]:
            cursor.execute(f"SELECT DISTINCT date_trunc('month', {key}) FROM {default}")
            stranded += [row[0].replace(tzinfo=dt.UTC) for row in cursor.fetchall()]
    months = sorted({month_add(this_month, i) for i in range(ahead + 1)} | set(stranded))
    for start in months:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            if _create_partition(cursor, table=table, start=start):
                created.append(partition_name(start))
            # The co-partitioned tables' month, in the same transaction.
            created += _copartitions_create(cursor, start=start)
    if created:
        logger.info("created event partitions %s", ", ".join(created))
    return created


def _default_partition_ensure(cursor, *, table: str) -> None:
    if _relkind(cursor, DEFAULT_PARTITION) is None:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {DEFAULT_PARTITION} PARTITION OF {table} DEFAULT")
    for copartitioned in copartitioned_tables() + day_partitioned_tables():
        if (
            _relkind(cursor, copartitioned) == "p"
            and _relkind(cursor, copartition_default(copartitioned)) is None
        ):
            cursor.execute(
                f"CREATE TABLE {copartition_default(copartitioned)} PARTITION OF {copartitioned} DEFAULT"
            )


def event_partitions_expired(*, now: dt.datetime, retention: dict[int, int | None]) -> list[Partition]:
    """Monthly partitions that retention may drop whole: ended at least a day ago (no event can
    still be stamped into them), and every source with rows in them keeps events for less than
    the time since the partition ended. `retention` is {source id: retention_days or None} for
    every source."""
    expired = []
    with connection.cursor() as cursor:
        for part in event_partitions():
            if part.end > now - dt.timedelta(days=1):
                break
            keeping = sorted(
                source_id
                for source_id, days in retention.items()
                if days is None or part.end > now - dt.timedelta(days=days)
            )
            # One index probe per keeping source (the partition's (source_id, received_at) index).
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {part.name} WHERE source_id = ANY(%s::bigint[]))", [keeping]
            )
            if not cursor.fetchone()[0]:
                expired.append(part)
    return expired


def event_partition_ids(*, partition: Partition, after: int, limit: int) -> list[int]:
    """Ids of a partition's events in id order, after `after` (for the hooks before a drop)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {partition.name} WHERE id > %s ORDER BY id LIMIT %s", [after, limit])
        return [row[0] for row in cursor.fetchall()]


def event_partition_id_range(*, partition: Partition) -> tuple[int | None, int | None, int]:
    """(min id, max id, row count) of a partition."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id), count(*) FROM {partition.name}")
        return cursor.fetchone()


def copartitions_present(*, partition: Partition) -> bool:
    """Whether every co-partitioned table has this month's partition (dropped with it)."""
    with connection.cursor() as cursor:
        return all(
            _relkind(cursor, copartition_name(table, partition.start)) is not None
            for table in copartitioned_tables()
        )


@transaction.atomic
def event_partition_drop(*, partition: Partition) -> bool:
    """Detach and drop a partition. False when the lock on the event log was not granted within
    DDL_LOCK_TIMEOUT (the caller tries again on its next run). Counting its rows first would
    read the whole month: the caller counts what its hooks heard of."""
    with connection.cursor() as cursor:
        _lock(cursor)
        if _relkind(cursor, partition.name) is None:
            return True
        # Deferred foreign-key checks still pending on its rows (events inserted earlier in the
        # caller's transaction) would make Postgres refuse the DROP: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        copartitions = [
            (table, copartition_name(table, partition.start))
            for table in copartitioned_tables()
            if _relkind(cursor, copartition_name(table, partition.start)) is not None
        ]
        try:
            with transaction.atomic():
                # The co-partitioned tables' month first (their rows derive from these events).
                for table, name in copartitions:
                    cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            # Ingestion or a long read holds the table: never queue every insert behind us.
            logger.warning("retention: could not lock %s to drop %s; next run", TABLE, partition.name)
            return False
        for _, name in copartitions:
            cursor.execute(f"DROP TABLE {name}")
        cursor.execute(f"DROP TABLE {partition.name}")
    logger.info("retention dropped partition %s", partition.name)
    return True


# -- the layout: shared by the fresh-install migration and the online migration ---------------


def event_log_partitioned_create(cursor, *, name: str, like: str, temporary_names: bool) -> None:
    """Create the partitioned event table `name` with `like`'s columns (same order, so rows copy
    with SELECT *), its primary key (id, received_at), source foreign key, indexes, the
    append-only trigger and a DEFAULT partition. With temporary_names the constraints and
    indexes get a prefix (the unpartitioned table still holds the real names until the swap)."""
    p = "partitioned_" if temporary_names else ""
    cursor.execute(f"CREATE TABLE {name} (LIKE {like}) PARTITION BY RANGE (received_at)")
    cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {p}{PKEY} PRIMARY KEY (id, received_at)")
    cursor.execute(
        f"ALTER TABLE {name} ADD CONSTRAINT {p}{SOURCE_FK} FOREIGN KEY (source_id) "
        "REFERENCES events_source (id) DEFERRABLE INITIALLY DEFERRED"
    )
    for _, sql in _INDEXES:
        cursor.execute(sql.format(p=p, t=name))
    # events/migrations/0003_event_append_only.py's function; a row trigger on the parent is
    # cloned onto every partition, present and future.
    cursor.execute(
        f"CREATE TRIGGER events_event_append_only BEFORE UPDATE ON {name} "
        "FOR EACH ROW EXECUTE FUNCTION events_event_refuse_update()"
    )
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {name} DEFAULT")


def event_log_swap(cursor, *, old: str, new: str, retired: str) -> None:
    """Inside the caller's transaction, holding ACCESS EXCLUSIVE on `old`: rename `old` (the
    unpartitioned table) to `retired` and `new` to events_event, with its constraints', indexes'
    and sequence's real names; the id sequence carries on from the old one."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [old])
    old_sequence = cursor.fetchone()[0]
    # Foreign keys that still reference the old table (by oid: they would follow the rename).
    cursor.execute(
        """
        SELECT conrelid::regclass::text, conname FROM pg_constraint
        WHERE contype = 'f' AND confrelid = %s::regclass
        """,
        [old],
    )
    for table, constraint in cursor.fetchall():
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
    cursor.execute(f"ALTER TABLE {old} RENAME TO {retired}")
    _rename_constraint(cursor, table=retired, old=PKEY, new=f"{retired}_pkey")
    _rename_constraint(cursor, table=retired, old=SOURCE_FK, new=f"{retired}_source_fk")
    for index, _ in _INDEXES:
        cursor.execute(f"ALTER INDEX IF EXISTS {index} RENAME TO {index}_old")
    if old_sequence:
        cursor.execute(f"ALTER SEQUENCE {old_sequence} RENAME TO {retired}_id_seq")
    cursor.execute(f"ALTER TABLE {new} RENAME TO {TABLE}")
    for constraint in (PKEY, SOURCE_FK):
        _rename_constraint(cursor, table=TABLE, old=f"partitioned_{constraint}", new=constraint)
    for index, _ in _INDEXES:
        cursor.execute(f"ALTER INDEX IF EXISTS partitioned_{index} RENAME TO {index}")
    cursor.execute(f"CREATE SEQUENCE {SEQUENCE} AS bigint OWNED BY {TABLE}.id")
    if old_sequence:
        cursor.execute(f"SELECT last_value, is_called FROM {retired}_id_seq")
        last, called = cursor.fetchone()
        cursor.execute("SELECT setval(%s, %s, %s)", [SEQUENCE, last, called])
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')")


def _rename_constraint(cursor, *, table: str, old: str, new: str) -> None:
    cursor.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s", [table, old])
    if cursor.fetchone():
        cursor.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{old}" TO "{new}"')
