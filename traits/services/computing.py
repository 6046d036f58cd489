"""Computing trait values from the projection: one statement for every contact-level trait.

The realtime path (`traits_refresh_contacts`, from segments' ProfileUpdate drain through
settings.PROFILE_UPDATE_DERIVED_HOOKS, before the segments re-evaluate), the window expiry sweep
and the full recompute (`traits_recompute`) all run `_write_statement`: it groups the contacts'
ContactEvent rows (joined with events_event for the properties, only when a trait reads them)
once, computes every trait with a FILTERed aggregate, and upserts the changed values and deletes
the vanished ones in the same statement. Scoped to contacts, it is the recompute restricted to
them, so incremental == recompute by construction, and there is no watermark to race:

- Every change to a contact's events (the stitching worker's inserts, merges that repoint the
  loser's rows, splits, retention and erasure deletes, month drops, rebuilds) writes a
  ProfileUpdate row in the same transaction (identity.services.projection.profile_updates_mark).
  The drain claims those rows FOR UPDATE SKIP LOCKED; a stitch that commits events after the
  drain read them upserts a new ProfileUpdate row (it waits for the claimed row's lock, then finds
  it deleted and inserts), so every commit is followed by a refresh that sees it. Out-of-order
  commits, duplicates (the projection has one row per event) and late events need nothing more.
- Two refreshes of one contact (the drain and the expiry sweep) serialise on an advisory lock per
  contact taken in id order before the statement, whose snapshot then includes the other's
  commit. The full recompute locks the value tables against writers for its duration
  (SHARE ROW EXCLUSIVE), so its snapshot cannot be older than a value it overwrites.

The cost of a refresh is the touched contacts' events within the widest window (ever: all of
them), not the new events only; measured in docs/benchmarks.md ("Computed traits").

Windows are day-granular like segments': "last N days" is today (UTC) and the N-1 days before.
A windowed value stores `expires_at`, when its earliest counted event leaves the window; the
beat sweep (`traits_windows_expire`) refreshes the contacts whose values expired.
"""

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from traits.models import (
    ACCOUNT_KINDS,
    LIST_KINDS,
    NUMBER_KINDS,
    TEXT_KINDS,
    ZERO_KINDS,
    TraitDefinition,
)

# The advisory lock namespace of a contact's trait values (segments uses 7007 for segments).
LOCK_CONTACT = 7017
LOCK_COMPANY = 7018
# A unique list keeps at most this many values (sorted), and values are cut to this length.
MAX_LIST = 100
MAX_TEXT = 500
# JSON numbers beyond this are not aggregated (float8 would overflow; no real property is that big).
MAX_ABS = 1e300


class _Params:
    """Named query parameters: every user value reaches SQL as one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._names: dict[tuple, str] = {}

    def __call__(self, value: Any, cast: str = "") -> str:
        # One placeholder per distinct value: an expression written twice (a property's text in
        # DISTINCT and in ORDER BY) must be the same SQL for Postgres to match the two.
        marker = (type(value), tuple(value) if isinstance(value, list) else value)
        if (name := self._names.get(marker)) is None:
            name = self._names[marker] = f"p{len(self.values)}"
            self.values[name] = value
        return f"%({name})s{cast}"


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _number_sql(p: _Params, key: str) -> str:
    k = p(key)
    return (
        f"(CASE WHEN jsonb_typeof(e.properties -> {k}) = 'number' "
        f"AND abs((e.properties ->> {k})::numeric) < {MAX_ABS:.0e} "
        f"THEN (e.properties ->> {k})::numeric::float8 END)"
    )


def _text_sql(p: _Params, key: str) -> str:
    return f"left(e.properties ->> {p(key)}, {MAX_TEXT})"


def _condition_sql(p: _Params, condition: dict) -> str:
    """One property condition (validated by traits.services.definitions: operator and value fit)."""
    key, op, value = condition["property"], condition["operator"], condition["value"]
    if op in ("gt", "gte", "lt", "lte") or (op in ("eq", "neq") and isinstance(value, int | float)):
        compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "="}[op]
        held = f"COALESCE({_number_sql(p, key)} {compare} {p(float(value))}::float8, false)"
        return f"NOT {held}" if op == "neq" else held
    text = f"(e.properties ->> {p(key)})"
    if op == "eq":
        return f"COALESCE({text} = {p(_json_text(value))}, false)"
    if op == "neq":
        return f"({text} IS DISTINCT FROM {p(_json_text(value))})"
    pattern = p(f"%{_like_escape(str(value))}%")
    held = f"COALESCE({text} ILIKE {pattern}, false)"
    return f"NOT {held}" if op == "not_contains" else held


def _json_text(value: Any) -> str:
    """What ->> gives for a stored JSON value equal to `value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def needs_properties(trait: TraitDefinition) -> bool:
    return bool(trait.property_key) or bool(trait.conditions)


def _window_start(trait: TraitDefinition, today: dt.date) -> dt.datetime | None:
    if not trait.window_days:
        return None
    day = today - dt.timedelta(days=trait.window_days - 1)
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _trait_filter(p: _Params, trait: TraitDefinition, today: dt.date) -> str:
    parts = []
    if trait.event_type:
        parts.append(f"ce.type = {p(trait.event_type)}")
    if trait.event_name:
        parts.append(f"ce.name = {p(trait.event_name)}")
    for condition in trait.conditions or []:
        parts.append(_condition_sql(p, condition))
    if (start := _window_start(trait, today)) is not None:
        parts.append(f"ce.timestamp >= {p(start)}")
    return " AND ".join(parts) or "true"


def _aggregates(p: _Params, i: int, trait: TraitDefinition, today: dt.date) -> tuple[list[str], str]:
    """The grouped columns of trait i (n{i}, t{i}, l{i}, x{i}) and its VALUES row."""
    where = _trait_filter(p, trait, today)
    kind = trait.kind
    value_not_null = "true"
    n = t = li = "NULL"
    if kind == "count":
        n = f"count(*) FILTER (WHERE {where})"
    elif kind in ("sum", "avg", "min", "max"):
        num = _number_sql(p, trait.property_key)
        value_not_null = f"{num} IS NOT NULL"
        n = f"{kind}({num}) FILTER (WHERE {where})"
    else:
        txt = _text_sql(p, trait.property_key)
        value_not_null = f"{txt} IS NOT NULL"
        cond = f"{where} AND {value_not_null}"
        if kind == "first":
            t = f"(array_agg({txt} ORDER BY ce.timestamp, ce.event_id) FILTER (WHERE {cond}))[1]"
        elif kind == "last":
            t = f"(array_agg({txt} ORDER BY ce.timestamp DESC, ce.event_id DESC) FILTER (WHERE {cond}))[1]"
        elif kind == "most_frequent":
            # mode() breaks ties by the sort order: the smallest of the most frequent values.
            t = f"mode() WITHIN GROUP (ORDER BY {txt}) FILTER (WHERE {cond})"
        elif kind == "unique_list":
            li = f"(array_agg(DISTINCT {txt} ORDER BY {txt}) FILTER (WHERE {cond}))[1:{MAX_LIST}]"
        elif kind == "unique_count":
            n = f"count(DISTINCT {txt}) FILTER (WHERE {cond})"
    columns = [f"{n}::float8 AS n{i}", f"{t}::text AS t{i}", f"{li}::text[] AS l{i}"]
    if trait.window_days:
        earliest = f"min(ce.timestamp) FILTER (WHERE {where} AND {value_not_null})"
        days = int(trait.window_days)
        columns.append(
            f"(date_trunc('day', {earliest} AT TIME ZONE 'UTC') + interval '{days} days') "
            f"AT TIME ZONE 'UTC' AS x{i}"
        )
    else:
        columns.append(f"NULL::timestamptz AS x{i}")
    if kind in ZERO_KINDS:
        keep = f"g.n{i} > 0"
    elif kind in NUMBER_KINDS:
        keep = f"g.n{i} IS NOT NULL"
    elif kind in TEXT_KINDS:
        keep = f"g.t{i} IS NOT NULL"
    else:
        assert kind in LIST_KINDS, kind
        keep = f"g.l{i} IS NOT NULL"
    items = f"to_jsonb(g.l{i})"
    text = f"COALESCE(g.t{i}, array_to_string(g.l{i}, ', '))"
    row = f"({p(trait.pk, '::bigint')}, g.n{i}, {text}, {items}, g.x{i}, {keep})"
    return columns, row


def _values_sql(p: _Params, traits: list[TraitDefinition], scope: list[int] | None, today: dt.date) -> str:
    """(trait_id, contact_id, company_id, number, text, items, expires_at) of every value to keep."""
    columns: list[str] = []
    rows: list[str] = []
    for i, trait in enumerate(traits):
        cols, row = _aggregates(p, i, trait, today)
        columns += cols
        rows.append(row)
    join_events = any(needs_properties(t) for t in traits)
    if not join_events:
        events = ""
    elif scope is None:
        # Everyone: a hash join on the id alone. With (id, received_at) Postgres multiplies the
        # two selectivities, expects one row and loops per event over 2M events.
        events = "JOIN events_event e ON e.id = ce.event_id"
    else:
        # A few contacts' events: one primary-key lookup each, in the event's month (runtime
        # partition pruning). OFFSET 0 keeps the subquery a per-row lookup; as a plain join the
        # same misestimate made Postgres hash the contacts' rows and scan all 2M events (8 s for
        # a drain batch of 500 contacts instead of a fraction of one).
        events = (
            "CROSS JOIN LATERAL (SELECT e.properties FROM events_event e "
            "WHERE e.id = ce.event_id AND e.received_at = ce.received_at OFFSET 0) e"
        )
    # No WHERE for "rows some trait counts": each aggregate has its FILTER, and an OR of every
    # trait's conditions made Postgres estimate one row for the full recompute (then a nested
    # loop per event, and minutes instead of seconds at 2M events).
    where = ["NOT ce.is_bot"]
    if scope is not None:
        where.append(f"ce.contact_id = ANY({p(scope, '::bigint[]')})")
    return f"""
        SELECT v.trait_id, g.contact_id, g.company_id, v.number, v.text, v.items, v.expires_at
        FROM (
            SELECT ce.contact_id, c.company_id, {", ".join(columns)}
            FROM identity_contactevent ce
            JOIN contacts_contact c ON c.id = ce.contact_id AND c.merged_into_id IS NULL
            {events}
            WHERE {" AND ".join(where)}
            GROUP BY ce.contact_id, c.company_id
        ) g
        CROSS JOIN LATERAL (VALUES {", ".join(rows)})
            AS v(trait_id, number, text, items, expires_at, keep)
        WHERE v.keep
    """


def _write_statement(
    traits: list[TraitDefinition], *, scope: list[int] | None, now: dt.datetime
) -> tuple[str, dict[str, Any]]:
    p = _Params()
    today = now.astimezone(dt.UTC).date()
    values = _values_sql(p, traits, scope, today)
    trait_ids = p([t.pk for t in traits], "::bigint[]")
    scoped = f"AND tv.contact_id = ANY({p(scope, '::bigint[]')})" if scope is not None else ""
    stamp = p(now)
    sql = f"""
        WITH new AS MATERIALIZED ({values}),
        gone AS (
            DELETE FROM traits_traitvalue tv
            WHERE tv.trait_id = ANY({trait_ids}) {scoped}
              AND NOT EXISTS (
                  SELECT 1 FROM new WHERE new.trait_id = tv.trait_id AND new.contact_id = tv.contact_id
              )
            RETURNING tv.contact_id, tv.company_id
        ),
        kept AS (
            INSERT INTO traits_traitvalue
                (trait_id, contact_id, company_id, number, text, items, expires_at, computed_at)
            SELECT trait_id, contact_id, company_id, number, text, items, expires_at, {stamp} FROM new
            ON CONFLICT (contact_id, trait_id) DO UPDATE SET
                company_id = EXCLUDED.company_id, number = EXCLUDED.number, text = EXCLUDED.text,
                items = EXCLUDED.items, expires_at = EXCLUDED.expires_at,
                computed_at = EXCLUDED.computed_at
            WHERE (traits_traitvalue.company_id, traits_traitvalue.number, traits_traitvalue.text,
                   traits_traitvalue.items, traits_traitvalue.expires_at)
                IS DISTINCT FROM
                  (EXCLUDED.company_id, EXCLUDED.number, EXCLUDED.text, EXCLUDED.items,
                   EXCLUDED.expires_at)
            RETURNING contact_id, company_id
        )
        SELECT contact_id, company_id FROM gone UNION SELECT contact_id, company_id FROM kept
    """
    return sql, p.values


def contact_traits_defined() -> list[TraitDefinition]:
    return list(TraitDefinition.objects.exclude(kind__in=ACCOUNT_KINDS).order_by("pk"))


def _lock(namespace: int, ids: Iterable[int]) -> None:
    ordered = sorted(set(ids))
    if not ordered:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, (x %% 2147483647)::int)) "
            "FROM (SELECT x FROM unnest(%s::bigint[]) AS x ORDER BY x) AS s",
            [namespace, ordered],
        )


def _compute(
    traits: list[TraitDefinition], *, scope: list[int] | None, now: dt.datetime
) -> tuple[set[int], set[int]]:
    """Write the values; return (contacts whose values changed, companies they touch)."""
    if not traits:
        return set(), set()
    sql, params = _write_statement(traits, scope=scope, now=now)
    with connection.cursor() as cursor:
        if scope is None:
            # The full recompute groups every event by contact: sort and hash in memory.
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {r[0] for r in rows}, {r[1] for r in rows if r[1] is not None}


_ROLLUP = {"account_sum": "sum(tv.number)", "account_max": "max(tv.number)", "account_count": "count(*)"}


def _rollups(accounts: list[TraitDefinition], *, companies: list[int] | None, now: dt.datetime) -> None:
    """Company values of the account-level traits, for these companies (None: all)."""
    if not accounts or companies == []:
        return
    with connection.cursor() as cursor:
        for trait in accounts:
            p = _Params()
            where = "c.company_id IS NOT NULL"
            scoped = ""
            if companies is not None:
                ids = p(companies, "::bigint[]")
                where = f"c.company_id = ANY({ids})"
                scoped = f"AND ct.company_id = ANY({ids})"
            trait_id, source, stamp = p(trait.pk, "::bigint"), p(trait.source_id, "::bigint"), p(now)
            cursor.execute(
                f"""
                WITH new AS MATERIALIZED (
                    SELECT c.company_id, {_ROLLUP[trait.kind]}::float8 AS number
                    FROM traits_traitvalue tv
                    JOIN contacts_contact c ON c.id = tv.contact_id AND c.merged_into_id IS NULL
                    WHERE tv.trait_id = {source} AND {where}
                    GROUP BY c.company_id
                    HAVING {_ROLLUP[trait.kind]} IS NOT NULL
                ),
                gone AS (
                    DELETE FROM traits_companytraitvalue ct
                    WHERE ct.trait_id = {trait_id} {scoped}
                      AND NOT EXISTS (SELECT 1 FROM new WHERE new.company_id = ct.company_id)
                )
                INSERT INTO traits_companytraitvalue (trait_id, company_id, number, computed_at)
                SELECT {trait_id}, company_id, number, {stamp} FROM new
                ON CONFLICT (trait_id, company_id) DO UPDATE
                    SET number = EXCLUDED.number, computed_at = EXCLUDED.computed_at
                    WHERE traits_companytraitvalue.number IS DISTINCT FROM EXCLUDED.number
                """,
                p.values,
            )


def traits_refresh_contacts(*, contact_ids: list[int]) -> set[int]:
    """Bring these contacts' trait values (and their companies' rollups) up to date with their
    events; tombstones and deleted contacts lose theirs. Runs in the caller's transaction (the
    ProfileUpdate drain's). Returns the contacts whose values changed."""
    ids = sorted(set(contact_ids))
    traits = contact_traits_defined()
    if not ids or not traits:
        return set()
    now = timezone.now()
    with transaction.atomic():
        _lock(LOCK_CONTACT, ids)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT company_id FROM traits_traitvalue "
                "WHERE contact_id = ANY(%s::bigint[]) AND company_id IS NOT NULL",
                [ids],
            )
            companies = {row[0] for row in cursor.fetchall()}
        changed, touched = _compute(traits, scope=ids, now=now)
        accounts = list(TraitDefinition.objects.filter(kind__in=ACCOUNT_KINDS).order_by("pk"))
        if changed and accounts:
            affected = sorted(companies | touched)
            _lock(LOCK_COMPANY, affected)
            _rollups(accounts, companies=affected, now=now)
    return changed


def traits_recompute(*, trait_ids: list[int] | None = None) -> set[int]:
    """Recompute traits for everyone from the events (all traits, or these and the account traits
    rolled up from them). Returns the contacts whose values changed."""
    now = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Writers (the drain, the expiry sweep) wait: this snapshot must not be older than a
            # value it overwrites.
            cursor.execute(
                "LOCK TABLE traits_traitvalue, traits_companytraitvalue IN SHARE ROW EXCLUSIVE MODE"
            )
        traits = contact_traits_defined()
        accounts = list(TraitDefinition.objects.filter(kind__in=ACCOUNT_KINDS).order_by("pk"))
        if trait_ids is not None:
            wanted = set(trait_ids)
            traits = [t for t in traits if t.pk in wanted]
            accounts = [a for a in accounts if a.pk in wanted or a.source_id in wanted]
        changed, _ = _compute(traits, scope=None, now=now)
        _rollups(accounts, companies=None, now=now)
        if len(changed) > 10_000:
            # A rewrite this size leaves the planner's statistics behind (a bulk first compute
            # into an empty table made the drain's scoped delete scan every trait's rows).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE traits_traitvalue")
        TraitDefinition.objects.filter(pk__in=[t.pk for t in traits + accounts]).update(computed_at=now)
    return changed


def traits_windows_expire(*, limit: int = 5000) -> set[int]:
    """Refresh the contacts whose windowed values have expired (an event left the window)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT contact_id FROM ("
            "  SELECT contact_id FROM traits_traitvalue WHERE expires_at <= %s ORDER BY expires_at LIMIT %s"
            ") s",
            [now, limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return traits_refresh_contacts(contact_ids=ids) if ids else set()


def traits_contacts_deleting(*, contact_ids: list[int]) -> None:
    """The CONTACT_DELETE_HOOKS entry: the deleted contacts' values go with them (FK cascade);
    their companies' roll-ups are recomputed after commit."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT company_id FROM traits_traitvalue "
            "WHERE contact_id = ANY(%s::bigint[]) AND company_id IS NOT NULL",
            [sorted(contact_ids)],
        )
        companies = sorted(row[0] for row in cursor.fetchall())
    if companies and TraitDefinition.objects.filter(kind__in=ACCOUNT_KINDS).exists():
        transaction.on_commit(lambda: company_rollups_refresh(company_ids=companies))


def company_rollups_refresh(*, company_ids: list[int]) -> None:
    """Recompute the account-level traits of these companies."""
    accounts = list(TraitDefinition.objects.filter(kind__in=ACCOUNT_KINDS).order_by("pk"))
    if not accounts or not company_ids:
        return
    with transaction.atomic():
        _lock(LOCK_COMPANY, company_ids)
        _rollups(accounts, companies=sorted(set(company_ids)), now=timezone.now())
