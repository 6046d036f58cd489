"""Moving an existing, unpartitioned `events_event` into the partitioned layout online
(`manage.py events_partition_migrate`; docs/scaling.md, "Partitioned event log").

1. prepare: create the partitioned table as `events_event_partitioned` (same columns, a month
   partition for every month from the oldest event to PARTITIONS_AHEAD ahead, DEFAULT), and two
   statement triggers on the old table that repeat every INSERT and DELETE into the new one, so
   ingestion, retention and erasure carry on against `events_event` meanwhile. `high` is the
   largest id once the triggers exist: every later row is copied by the trigger.
2. copy: rows with ids up to `high`, in id order, a batch per transaction; the cursor is stored in
   the same transaction, so a killed copy resumes exactly where it stopped. The batch locks its
   rows FOR KEY SHARE: a concurrent DELETE of one of them waits for the batch (and then deletes
   the copy too) or has already happened (and the row is skipped), so an erased event is never
   copied back to life.
3. verify (one snapshot: both tables' counts and id sums agree) and swap: in one short
   transaction holding the old table's lock, drop the triggers and rename tables, constraints,
   indexes and the id sequence. The old table stays as `events_event_unpartitioned` until
   `--drop-old`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from events.services import partitions as p

RETIRED = "events_event_unpartitioned"
STATE = "events_event_partition_copy"
COPY_BATCH = 10_000

_TRIGGERS = f"""
CREATE FUNCTION events_event_copy_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {p.SHADOW} SELECT * FROM inserted ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE FUNCTION events_event_copy_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {p.SHADOW} n USING deleted d WHERE n.id = d.id AND n.received_at = d.received_at;
    RETURN NULL;
END $$;
CREATE TRIGGER events_event_copy_insert AFTER INSERT ON {p.TABLE}
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION events_event_copy_inserted();
CREATE TRIGGER events_event_copy_delete AFTER DELETE ON {p.TABLE}
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION events_event_copy_deleted();
"""
_TRIGGERS_DROP = f"""
DROP TRIGGER IF EXISTS events_event_copy_insert ON {p.TABLE};
DROP TRIGGER IF EXISTS events_event_copy_delete ON {p.TABLE};
DROP FUNCTION IF EXISTS events_event_copy_inserted();
DROP FUNCTION IF EXISTS events_event_copy_deleted();
"""


@dataclass(frozen=True, slots=True)
class CopyState:
    copied_through: int  # every id <= this is in the new table (or was deleted)
    high: int  # ids above this reached the new table through the trigger
    copied: int  # rows copied by batches so far

    @property
    def done(self) -> bool:
        return self.copied_through >= self.high


def event_log_copy_state() -> CopyState | None:
    """The copy under way, or None when none is (not started, or already swapped)."""
    with connection.cursor() as cursor:
        if p._relkind(cursor, STATE) is None:
            return None
        cursor.execute(f"SELECT copied_through, high, copied FROM {STATE}")
        return CopyState(*cursor.fetchone())


def _months(cursor, *, ahead: int) -> list:
    # The oldest event per source: a backward scan of (source_id, received_at DESC) each, not a
    # scan of the whole table.
    cursor.execute(
        f"""
        SELECT min(first) FROM events_source s
        CROSS JOIN LATERAL (SELECT min(received_at) AS first FROM {p.TABLE} e WHERE e.source_id = s.id) m
        """
    )
    oldest = cursor.fetchone()[0]
    this_month = p.month_start(timezone.now())
    start = p.month_start(oldest) if oldest and oldest < this_month else this_month
    months = []
    while start <= p.month_add(this_month, ahead):
        months.append(start)
        start = p.month_add(start, 1)
    return months


def event_log_copy_prepare(*, ahead: int = p.PARTITIONS_AHEAD) -> CopyState:
    """Step 1 (idempotent: returns the copy under way when there is one)."""
    if (state := event_log_copy_state()) is not None:
        return state
    with transaction.atomic(), connection.cursor() as cursor:
        if p._relkind(cursor, p.TABLE) != "r":
            raise RuntimeError(f"{p.TABLE} is not an unpartitioned table: nothing to migrate")
        p.event_log_partitioned_create(cursor, name=p.SHADOW, like=p.TABLE, temporary_names=True)
        for start in _months(cursor, ahead=ahead):
            p._create_partition(cursor, table=p.SHADOW, start=start)
        # CREATE TRIGGER waits for the inserts in flight (their lock conflicts with its own):
        # every row committed without the trigger is visible to the max(id) below.
        cursor.execute(_TRIGGERS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {p.TABLE}")
        high = cursor.fetchone()[0]
        cursor.execute(
            f"""
            CREATE TABLE {STATE} (
                singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                copied_through bigint NOT NULL, high bigint NOT NULL, copied bigint NOT NULL,
                started_at timestamptz NOT NULL)
            """
        )
        cursor.execute(
            f"INSERT INTO {STATE} (copied_through, high, copied, started_at) VALUES (0, %s, 0, now())", [high]
        )
    return CopyState(copied_through=0, high=high, copied=0)


@transaction.atomic
def event_log_copy_batch(*, limit: int = COPY_BATCH) -> CopyState:
    """Step 2: copy the next `limit` rows (by id) and move the stored cursor, in one transaction."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT copied_through, high, copied FROM {STATE} FOR UPDATE")
        after, high, copied = cursor.fetchone()
        if after >= high:
            return CopyState(after, high, copied)
        cursor.execute(
            f"""
            WITH batch AS (
                SELECT * FROM {p.TABLE} WHERE id > %s AND id <= %s ORDER BY id LIMIT %s FOR KEY SHARE
            ), copied AS (
                INSERT INTO {p.SHADOW} SELECT * FROM batch ON CONFLICT DO NOTHING RETURNING 1
            )
            SELECT (SELECT max(id) FROM batch), (SELECT count(*) FROM copied)
            """,
            [after, high, limit],
        )
        last, count = cursor.fetchone()
        # No row left in (after, high]: the copy is complete.
        through = high if last is None else last
        cursor.execute(f"UPDATE {STATE} SET copied_through = %s, copied = copied + %s", [through, count])
        return CopyState(through, high, copied + count)


def event_log_copy_verify() -> tuple[tuple[int, int], tuple[int, int]]:
    """Both tables' (row count, sum of ids) in one snapshot: equal when the copy is complete
    (the triggers keep them equal from then on)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        found = []
        for table in (p.TABLE, p.SHADOW):
            cursor.execute(f"SELECT count(*), coalesce(sum(id), 0) FROM {table}")
            found.append(tuple(int(v) for v in cursor.fetchone()))
        return found[0], found[1]


def event_log_copy_swap(*, lock_timeout: str = "5s") -> None:
    """Step 3: make the partitioned table `events_event`, in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
        cursor.execute(f"LOCK TABLE {p.TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT copied_through, high FROM {STATE}")
        through, high = cursor.fetchone()
        if through < high:
            raise RuntimeError(
                f"the copy is not finished (ids up to {through} of {high}): run the copy first"
            )
        cursor.execute(_TRIGGERS_DROP)
        p.event_log_swap(cursor, old=p.TABLE, new=p.SHADOW, retired=RETIRED)
        cursor.execute(f"DROP TABLE {STATE}")


def event_log_retired_drop() -> bool:
    """Drop the unpartitioned table a swap left behind; False when there is none."""
    with transaction.atomic(), connection.cursor() as cursor:
        if p._relkind(cursor, RETIRED) is None:
            return False
        cursor.execute(f"DROP TABLE {RETIRED}")
        return True


def event_log_partition_empty() -> bool:
    """The fresh-install path (events/migrations/0010): an EMPTY unpartitioned events_event is
    replaced by the partitioned layout at once. False (nothing done) when it has rows: those
    installs run `manage.py events_partition_migrate`, online."""
    with transaction.atomic(), connection.cursor() as cursor:
        if p._relkind(cursor, p.TABLE) != "r":
            return False
        cursor.execute(f"LOCK TABLE {p.TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {p.TABLE})")
        if cursor.fetchone()[0]:
            return False
        p.event_log_partitioned_create(cursor, name=p.SHADOW, like=p.TABLE, temporary_names=True)
        p.event_log_swap(cursor, old=p.TABLE, new=p.SHADOW, retired=RETIRED)
        cursor.execute(f"DROP TABLE {RETIRED}")
    p.event_partitions_ensure()
    return True


# The unpartitioned layout as migrations 0002-0009 left it: the migration's reverse (on an empty
# table) and the tests of the online migration start from it.
UNPARTITIONED = f"""
CREATE TABLE {p.TABLE} (
    id bigint GENERATED BY DEFAULT AS IDENTITY CONSTRAINT {p.PKEY} PRIMARY KEY,
    message_id varchar(100) NOT NULL,
    type varchar(10) NOT NULL,
    event varchar(200) NOT NULL,
    anonymous_id varchar(200) NOT NULL,
    user_id varchar(200) NOT NULL,
    group_id varchar(200) NOT NULL,
    previous_id varchar(200) NOT NULL,
    properties jsonb NOT NULL,
    traits jsonb NOT NULL,
    context jsonb NOT NULL,
    "timestamp" timestamptz NOT NULL,
    original_timestamp timestamptz NULL,
    sent_at timestamptz NULL,
    received_at timestamptz NOT NULL,
    is_bot boolean NOT NULL,
    source_id bigint NOT NULL
        CONSTRAINT {p.SOURCE_FK} REFERENCES events_source (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX event_source_received ON {p.TABLE} (source_id, received_at DESC);
CREATE INDEX event_anonymous_id ON {p.TABLE} (anonymous_id) WHERE NOT anonymous_id::text = '';
CREATE INDEX event_user_id ON {p.TABLE} (user_id) WHERE NOT user_id::text = '';
CREATE TRIGGER events_event_append_only BEFORE UPDATE ON {p.TABLE}
    FOR EACH ROW EXECUTE FUNCTION events_event_refuse_update();
"""


def event_log_unpartition_empty() -> None:
    """Replace an EMPTY partitioned events_event by the unpartitioned layout (the reverse of the
    fresh-install path). Refuses a table with rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        if p._relkind(cursor, p.TABLE) != "p":
            return
        cursor.execute(f"LOCK TABLE {p.TABLE} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {p.TABLE})")
        if cursor.fetchone()[0]:
            raise RuntimeError(f"{p.TABLE} has rows: refusing to replace it")
        cursor.execute(f"DROP TABLE {p.TABLE}")
        cursor.execute(UNPARTITIONED)
