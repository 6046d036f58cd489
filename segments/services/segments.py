"""Segment writes: definitions, recomputes (full, per contact, scheduled), static members.

Membership changes are applied by one SQL statement per segment (`_apply`): given the contacts
entering and leaving, it closes exits, opens entries, writes the change log and the webhook
deliveries. Each segment's writes hold a transaction-level advisory lock on the segment,
so a full recompute and the realtime path never race on the same rows; locks are taken in
dependency order, then by id, so two workers cannot deadlock.
"""

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from contacts.models import Contact
from core.db import lock_rows
from core.errors import Conflict
from core.normalize import normalize_email
from core.params import parse_id
from identity.models import ActivityKind, DailyActivity, ProfileUpdate
from predictions import services as prediction_services
from segments.definition import compiler
from segments.models import (
    ChangeKind,
    Membership,
    MembershipChange,
    Segment,
    SegmentKind,
    SizeSample,
    WebhookDelivery,
)
from segments.permissions import ensure_can_manage
from segments.services.webhooks import deliveries_create
from segments.tasks import segment_refresh as segment_refresh_task
from segments.tasks import webhook_deliveries_send as webhook_deliveries_send_task

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 7007  # pg_advisory_xact_lock(namespace, segment id)
MAX_ERRORS = 20  # a segment failing this often is left alone until it is edited
STUCK_AFTER = dt.timedelta(minutes=15)


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


# ---------------------------------------------------------------------------------------------
# Definitions


def segment_validate(*, definition: Any, segment: Segment | None = None) -> compiler.Group:
    """Parse a definition and check the values it names exist (segments, owners, stages, custom
    choices) and that segments form no cycle."""
    tree = compiler.parse(definition)
    compiler.check_values(tree)
    info = compiler.analyse(tree)
    if info["depends_on"]:
        _check_references(
            segment_id=segment.pk if segment else None, depends_on=info["depends_on"], tree=tree
        )
    return tree


def _check_references(*, segment_id: int | None, depends_on: list[int], tree: compiler.Group) -> None:
    graph = dict(Segment.objects.values_list("pk", "depends_on"))
    for leaf in compiler.leaves(tree):
        if isinstance(leaf, compiler.SegmentCondition) and leaf.segment_id not in graph:
            raise compiler.DefinitionError(
                f"{leaf.path}.segment_id", f"segment {leaf.segment_id} does not exist."
            )
    if segment_id is None:
        return  # a new segment: nothing can point at it yet
    graph[segment_id] = depends_on
    # Depth-first from this segment: reaching it again is a cycle.
    stack, seen = list(depends_on), set()
    while stack:
        current = stack.pop()
        if current == segment_id:
            raise compiler.DefinitionError("definition", "segments would depend on each other in a cycle.")
        if current in seen:
            continue
        seen.add(current)
        stack.extend(graph.get(current) or [])


def _apply_definition(segment: Segment, tree: compiler.Group) -> None:
    info = compiler.analyse(tree)
    segment.triggers = info["triggers"]
    segment.depends_on = info["depends_on"]
    segment.has_window = info["has_window"]


def _refresh_soon(segment: Segment) -> None:
    if not segment.is_static:
        transaction.on_commit(lambda: segment_refresh_task.delay(segment.pk))


@transaction.atomic
def segment_create(
    *,
    actor: AbstractBaseUser | None,
    name: str,
    definition: Any = None,
    kind: str = SegmentKind.DYNAMIC,
    description: str = "",
) -> Segment:
    ensure_can_manage(actor)
    name = _clean_name(name)
    if kind not in SegmentKind.values:
        raise compiler.DefinitionError("kind", 'expected "dynamic" or "static".')
    definition = definition if kind == SegmentKind.DYNAMIC else {}
    tree = segment_validate(definition=definition)
    segment = Segment(name=name, description=description, kind=kind, definition=definition or {})
    segment.created_by = actor
    _apply_definition(segment, tree)
    segment.save()
    _refresh_soon(segment)  # on save: immediately (after commit)
    return segment


@transaction.atomic
def segment_update(
    *,
    actor: AbstractBaseUser | None,
    segment: Segment,
    name: str | None = None,
    definition: Any = None,
    description: str | None = None,
) -> Segment:
    ensure_can_manage(actor)
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if name is not None:
        segment.name = _clean_name(name)
    if description is not None:
        segment.description = description
    if definition is not None:
        if segment.is_static:
            raise compiler.DefinitionError("definition", "a static segment has no rules.")
        tree = segment_validate(definition=definition, segment=segment)
        segment.definition = definition
        _apply_definition(segment, tree)
        # An edited definition gets a fresh start from the scheduler.
        segment.error_count = 0
        segment.last_error = ""
        _refresh_soon(segment)
    segment.save()
    return segment


@transaction.atomic
def segment_delete(*, actor: AbstractBaseUser | None, segment: Segment) -> None:
    ensure_can_manage(actor)
    users = [s.name for s in Segment.objects.filter(depends_on__contains=[segment.pk]).exclude(pk=segment.pk)]
    if users:
        raise Conflict(f"Segments {', '.join(users)} use this segment; change them first.")
    segment.delete()


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or "\x00" in name:
        raise compiler.DefinitionError("name", "a name of 1 to 200 characters is required.")
    return name


# ---------------------------------------------------------------------------------------------
# Applying a membership diff

_APPLY_SQL = """
WITH exited AS (
    UPDATE segments_membership m SET exited_at = GREATEST(%s, m.entered_at)
    WHERE m.segment_id = %s AND m.exited_at IS NULL AND m.contact_id = ANY(%s)
    RETURNING m.contact_id
),
entered AS (
    INSERT INTO segments_membership (segment_id, contact_id, entered_at)
    SELECT %s, t.id, %s FROM unnest(%s::bigint[]) AS t(id)
    ON CONFLICT ON CONSTRAINT segment_membership_unique
    DO UPDATE SET entered_at = EXCLUDED.entered_at, exited_at = NULL
    WHERE segments_membership.exited_at IS NOT NULL
    RETURNING contact_id
),
changes AS (
    INSERT INTO segments_membershipchange (segment_id, contact_id, kind, at)
    SELECT %s, contact_id, 'exited', %s FROM exited
    UNION ALL
    SELECT %s, contact_id, 'entered', %s FROM entered
    RETURNING contact_id, kind
),
deliveries AS (
    INSERT INTO segments_webhookdelivery
        (webhook_id, message_id, event_type, payload, status, attempts, next_attempt_at, created_at,
         last_error)
    SELECT w.id, 'msg_' || replace(gen_random_uuid()::text, '-', ''), 'segment.' || c.kind,
        jsonb_build_object(
            'type', 'segment.' || c.kind,
            'timestamp', %s::text,
            'data', jsonb_build_object(
                'segment', jsonb_build_object('id', %s::bigint, 'name', %s::text),
                'contact', jsonb_build_object(
                    'id', ct.id, 'email', ct.email, 'first_name', ct.first_name,
                    'last_name', ct.last_name, 'is_identified', ct.is_identified
                )
            )
        ),
        'pending', 0, %s, %s, ''
    FROM changes c
    JOIN segments_webhook w ON w.segment_id = %s AND w.active
        AND ((c.kind = 'entered' AND w.on_enter) OR (c.kind = 'exited' AND w.on_exit))
    JOIN contacts_contact ct ON ct.id = c.contact_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM exited), (SELECT count(*) FROM deliveries)
"""


def contacts_deleting(*, contact_ids: list[int]) -> None:
    """CONTACT_DELETE_HOOKS: the deleted contacts' open memberships go with them (cascade), so
    the segments they were in get their member count recounted once the delete commits."""
    segment_ids = sorted(
        set(
            Membership.objects.filter(contact_id__in=contact_ids, exited_at__isnull=True).values_list(
                "segment_id", flat=True
            )
        )
    )
    if segment_ids:
        transaction.on_commit(lambda: segment_member_counts_recount(segment_ids=segment_ids), robust=True)


def segment_member_counts_recount(*, segment_ids: list[int]) -> None:
    """Set member_count from the open memberships, under each segment's writer lock (so no
    realtime or full recompute is half-way through changing it)."""
    for segment_id in sorted(segment_ids):
        with transaction.atomic():
            _lock(segment_id)
            count = Membership.objects.filter(segment_id=segment_id, exited_at__isnull=True).count()
            Segment.objects.filter(pk=segment_id).update(member_count=count)


def _lock(segment_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, segment_id])


def _apply(
    segment: Segment, tree: compiler.Group, *, scope: list[int] | None, now: dt.datetime
) -> tuple[int, int, int]:
    """Bring the segment's membership in line with its definition (for `scope`, or everyone).
    The caller holds the segment's advisory lock. Returns (entered, exited, deliveries)."""
    ctx = compiler.Context(today=now.astimezone(dt.UTC).date(), scope=scope)
    # The matching query runs on its own (Postgres plans no parallel workers for a statement that
    # writes), and the diff is a set difference here: inside SQL it hinged on statistics of a
    # membership table that changes under it (a stale estimate turned a no-change recompute of
    # 4,000 members into a 1.3 s nested loop).
    matched = set(compiler.matching_contacts(tree, ctx).values_list("pk", flat=True))
    current = Membership.objects.filter(segment_id=segment.pk, exited_at__isnull=True)
    if scope is not None:
        current = current.filter(contact_id__in=scope)
    members = set(current.values_list("contact_id", flat=True))
    entering, exiting = sorted(matched - members), sorted(members - matched)
    if not entering and not exiting:
        return 0, 0, 0
    sid = segment.pk
    params: list[Any] = [now, sid, exiting, sid, now, entering, sid, now, sid, now]
    params += [now.isoformat(), sid, segment.name, now, now, sid]
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, params)
        entered, exited, deliveries = cursor.fetchone()
    if deliveries:
        transaction.on_commit(webhook_deliveries_send_task.delay)
    return entered, exited, deliveries


def segment_refresh(*, segment: Segment) -> Segment:
    """Full recompute: every live contact, with a statement timeout; errors are counted."""
    if segment.is_static:
        return segment
    started = time.monotonic()
    now = timezone.now()
    Segment.objects.filter(pk=segment.pk).update(computing_since=now)
    try:
        with transaction.atomic():
            _lock(segment.pk)
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout')")
                timeout_before = cursor.fetchone()[0]
                # SET LOCAL takes no parameters; the value is an integer from settings.
                cursor.execute(f"SET LOCAL statement_timeout = {int(settings.SEGMENT_STATEMENT_TIMEOUT_MS)}")
            fresh = Segment.objects.filter(pk=segment.pk).first()
            if fresh is None:  # deleted meanwhile
                return segment
            tree = compiler.parse(fresh.definition)
            entered, exited, _ = _apply(fresh, tree, scope=None, now=now)
            if entered or exited:
                _refresh_dependents(fresh)
            count = Membership.objects.filter(segment=fresh, exited_at__isnull=True).count()
            elapsed_ms = int((time.monotonic() - started) * 1000)
            Segment.objects.filter(pk=fresh.pk).update(
                member_count=count,
                last_computed_at=now,
                last_compute_ms=elapsed_ms,
                computing_since=None,
                error_count=0,
                last_error="",
            )
            _sample_size(fresh, count=count, now=now)
            # Inside a caller's transaction the timeout would outlive this recompute.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout_before])
    except (DatabaseError, compiler.DefinitionError) as exc:
        logger.warning("segment %s recompute failed: %s", segment.pk, exc)
        Segment.objects.filter(pk=segment.pk).update(
            computing_since=None,
            error_count=F("error_count") + 1,
            last_error=str(exc)[:2000],
            # Failed segments wait their turn again rather than being retried on every tick.
            last_computed_at=now,
        )
    segment.refresh_from_db()
    return segment


def _refresh_dependents(segment: Segment) -> None:
    """Segments that read this one's membership recompute after it changed (on commit)."""
    ids = list(
        Segment.objects.filter(kind=SegmentKind.DYNAMIC, depends_on__contains=[segment.pk])
        .exclude(pk=segment.pk)
        .values_list("pk", flat=True)
    )
    for pk in ids:
        transaction.on_commit(lambda pk=pk: segment_refresh_task.delay(pk))


SAMPLE_EVERY = dt.timedelta(hours=1)


def _sample_size(segment: Segment, *, count: int, now: dt.datetime) -> None:
    """A point for the size chart when the size changed, else at most one an hour (a segment
    recomputed every 15 minutes would otherwise add 96 identical points a day)."""
    last = SizeSample.objects.filter(segment=segment).order_by("-at").first()
    if last is None or last.size != count or now - last.at >= SAMPLE_EVERY:
        SizeSample.objects.create(segment=segment, at=now, size=count)


def segments_refresh_due(*, limit: int = 5, budget_seconds: float = 120.0) -> list[int]:
    """The scheduler's tick: recover stuck recomputes, claim the stalest due segments, refresh
    them dependencies first, stopping after `budget_seconds` (the rest go back to the queue for
    the next tick, well inside the task's time limit). Returns the ids refreshed."""
    started = time.monotonic()
    now = timezone.now()
    Segment.objects.filter(computing_since__lt=now - STUCK_AFTER).update(
        computing_since=None, error_count=F("error_count") + 1, last_error="recompute did not finish"
    )
    stale_before = now - dt.timedelta(seconds=settings.SEGMENT_REFRESH_INTERVAL_SECONDS)
    midnight = dt.datetime.combine(_today(), dt.time.min, tzinfo=dt.UTC)
    due = list(
        Segment.objects.filter(
            kind=SegmentKind.DYNAMIC, computing_since__isnull=True, error_count__lt=MAX_ERRORS
        )
        .filter(
            Q(last_computed_at__isnull=True)
            | Q(last_computed_at__lt=stale_before)
            | Q(has_window=True, last_computed_at__lt=midnight)
        )
        .order_by("last_computed_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    # Claim them (an overlapping tick skips what this one took).
    with transaction.atomic():
        claimed = list(
            lock_rows(
                Segment.objects.filter(pk__in=due, computing_since__isnull=True), skip_locked=True
            ).values_list("pk", flat=True)
        )
        Segment.objects.filter(pk__in=claimed).update(computing_since=now)
    picked = _dependency_order(
        list(Segment.objects.filter(pk__in=claimed).order_by("last_computed_at", "pk"))
    )
    done = []
    for segment in picked:
        if time.monotonic() - started > budget_seconds:
            break
        segment_refresh(segment=segment)
        done.append(segment.pk)
    Segment.objects.filter(pk__in=set(claimed) - set(done), computing_since=now).update(computing_since=None)
    return done


def _dependency_order(segments: list[Segment]) -> list[Segment]:
    """Segments another one reads come first (stable: otherwise the order given)."""
    by_id = {s.pk: s for s in segments}
    ordered: list[Segment] = []
    visiting: set[int] = set()

    def visit(segment: Segment) -> None:
        if segment in ordered or segment.pk in visiting:
            return
        visiting.add(segment.pk)
        for dep in segment.depends_on or []:
            if dep in by_id:
                visit(by_id[dep])
        ordered.append(segment)

    for segment in segments:
        visit(segment)
    return ordered


# ---------------------------------------------------------------------------------------------
# Realtime: the contacts the stitching worker changed


def segments_evaluate_contacts(*, contact_ids: list[int], changed_keys: set[str] | None = None) -> int:
    """Re-evaluate, for these contacts only, the dynamic segments whose conditions can change
    for them (`changed_keys`: the triggers their new activity touches; None: all). Runs inside the
    caller's transaction. Returns the number of membership changes."""
    if not contact_ids:
        return 0
    segments = list(Segment.objects.filter(kind=SegmentKind.DYNAMIC).order_by("pk"))
    relevant: set[int] = set()
    for segment in segments:
        if changed_keys is None or set(segment.triggers) & changed_keys:
            relevant.add(segment.pk)
    # Segments reading a relevant segment's membership may change with it.
    grew = True
    while grew:
        grew = False
        for segment in segments:
            if segment.pk not in relevant and any(d in relevant for d in segment.depends_on or []):
                relevant.add(segment.pk)
                grew = True
    now = timezone.now()
    changes = 0
    for segment in _dependency_order([s for s in segments if s.pk in relevant]):
        try:
            tree = compiler.parse(segment.definition)
        except compiler.DefinitionError:
            continue  # the scheduler counts the error
        try:
            # A savepoint per segment: one failing definition must not hold back the others,
            # nor leave the ProfileUpdate rows unprocessed forever (a poison batch).
            with transaction.atomic():
                _lock(segment.pk)
                entered, exited, _ = _apply(segment, tree, scope=contact_ids, now=now)
        except DatabaseError as exc:
            logger.warning("segment %s realtime evaluation failed: %s", segment.pk, exc)
            Segment.objects.filter(pk=segment.pk).update(
                error_count=F("error_count") + 1, last_error=str(exc)[:2000]
            )
            continue
        if entered or exited:
            Segment.objects.filter(pk=segment.pk).update(member_count=F("member_count") + entered - exited)
        changes += entered + exited
    return changes


def _changed_keys(updates: list[ProfileUpdate]) -> set[str]:
    """The triggers the contacts' activity can touch: every event name and page/screen kind they
    were ever active with (a late event can land on any past day, and ProfileUpdate does not say
    which keys changed, so recent days alone would miss it), plus profile fields (an identify or
    a merge may have changed traits). Segments about events a contact never did cannot change for
    them, so they are skipped. Cheap: an index-only scan of the contacts' rollup rows."""
    rows = (
        DailyActivity.objects.filter(contact_id__in=[u.contact_id for u in updates])
        .values_list("kind", "key")
        .distinct()
    )
    # "profile" and "deal": the contact's fields, tags or deals may have changed (an identify,
    # a merge, a CRM edit through contacts.services.changes).
    keys = {"profile", "deal"}
    for kind, key in rows:
        keys.add(f"event:{key}" if kind == ActivityKind.EVENT else kind)
    return keys


def profile_updates_process(*, limit: int = 500) -> int:
    """Claim up to `limit` ProfileUpdate rows, re-evaluate their contacts, delete the rows, in one
    transaction (a crash leaves them for the next run). Returns the rows processed."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(settings.SEGMENT_STATEMENT_TIMEOUT_MS)}")
        updates = list(lock_rows(ProfileUpdate.objects.all(), skip_locked=True)[:limit])
        if not updates:
            return 0
        ids = [u.contact_id for u in updates]
        keys = _changed_keys(updates)
        # Tombstones merged into these contacts leave their segments now (a membership the
        # merge could not move, because the winner already had it, stays on the tombstone).
        merged = list(Contact.objects.filter(merged_into_id__in=ids).values_list("pk", flat=True))
        # Derived data segments read (computed traits, scores) catches up first, in order, in this
        # transaction: a segment on a trait sees the value the same events gave it.
        for path in settings.PROFILE_UPDATE_DERIVED_HOOKS:
            import_string(path)(contact_ids=ids + merged)
        segments_evaluate_contacts(contact_ids=ids + merged, changed_keys=keys)
        # Predictive scores follow the same changes (queued after this commit, when any is published).
        prediction_services.predictions_realtime_queue(contact_ids=ids + merged)
        ProfileUpdate.objects.filter(pk__in=ids).delete()
    return len(updates)


# ---------------------------------------------------------------------------------------------
# Static segments


@transaction.atomic
def segment_members_add(
    *, actor: AbstractBaseUser | None, segment: Segment, contact_ids: Iterable[int]
) -> int:
    """Add live contacts to a static segment; returns how many joined."""
    ensure_can_manage(actor)
    _ensure_static(segment)
    ids = list(
        Contact.objects.filter(pk__in=list(contact_ids), merged_into__isnull=True).values_list(
            "pk", flat=True
        )
    )
    return _static_change(segment, add=ids, remove=[])


@transaction.atomic
def segment_members_remove(
    *, actor: AbstractBaseUser | None, segment: Segment, contact_ids: Iterable[int]
) -> int:
    ensure_can_manage(actor)
    _ensure_static(segment)
    return _static_change(segment, add=[], remove=list(contact_ids))


def _ensure_static(segment: Segment) -> None:
    if not segment.is_static:
        raise Conflict("Only a static segment's members are added or removed by hand.")


def _static_change(segment: Segment, *, add: list[int], remove: list[int]) -> int:
    _lock(segment.pk)
    now = timezone.now()
    current = set(
        Membership.objects.filter(
            segment=segment, exited_at__isnull=True, contact_id__in=add + remove
        ).values_list("contact_id", flat=True)
    )
    joining = sorted(set(add) - current)
    leaving = sorted(set(remove) & current)
    if leaving:
        Membership.objects.filter(segment=segment, contact_id__in=leaving).update(exited_at=now)
    if joining:
        existing = set(
            Membership.objects.filter(segment=segment, contact_id__in=joining).values_list(
                "contact_id", flat=True
            )
        )
        Membership.objects.filter(segment=segment, contact_id__in=existing).update(
            entered_at=now, exited_at=None
        )
        Membership.objects.bulk_create(
            [Membership(segment=segment, contact_id=c, entered_at=now) for c in joining if c not in existing]
        )
    MembershipChange.objects.bulk_create(
        [MembershipChange(segment=segment, contact_id=c, kind=ChangeKind.ENTERED, at=now) for c in joining]
        + [MembershipChange(segment=segment, contact_id=c, kind=ChangeKind.EXITED, at=now) for c in leaving]
    )
    count = Membership.objects.filter(segment=segment, exited_at__isnull=True).count()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, last_computed_at=now)
    _sample_size(segment, count=count, now=now)
    segment.member_count = count
    _webhooks_for_changes(segment, joining, leaving, now)
    return len(joining) + len(leaving)


def _webhooks_for_changes(segment: Segment, joining: list[int], leaving: list[int], now: dt.datetime) -> None:
    deliveries_create(segment=segment, entered=joining, exited=leaving, now=now)


MAX_CSV_ROWS = 100_000


def segment_members_import_csv(
    *, actor: AbstractBaseUser | None, segment: Segment, data: bytes
) -> dict[str, int]:
    """Add contacts listed in a CSV (a column named email or id; else the first column, read as
    ids when numeric and emails otherwise). Returns added / not_found counts."""
    ensure_can_manage(actor)
    _ensure_static(segment)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    rows = list(csv.reader(io.StringIO(text)))[: MAX_CSV_ROWS + 1]
    if not rows:
        return {"added": 0, "not_found": 0}
    header = [h.strip().lower() for h in rows[0]]
    column, body = 0, rows
    for name in ("id", "email"):
        if name in header:
            column, body = header.index(name), rows[1:]
            break
    values = [r[column].strip() for r in body if len(r) > column and r[column].strip()]
    parsed = {v: parse_id(v) for v in values}
    ids = {i for i in parsed.values() if i is not None}
    emails = {normalize_email(v) for v in values if "@" in v}
    emails.discard("")
    # Neither an id nor an email ("²", a name): reported with the unmatched, not dropped unseen.
    unusable = sum(1 for v, i in parsed.items() if i is None and "@" not in v)
    found = set(
        Contact.objects.filter(merged_into__isnull=True)
        .filter(Q(pk__in=ids) | Q(email__in=emails))
        .values_list("pk", flat=True)
    )
    added = segment_members_add(actor=actor, segment=segment, contact_ids=found)
    return {"added": added, "not_found": max(len(ids) + len(emails) - len(found), 0) + unusable}


@transaction.atomic
def webhook_deliveries_delete_for_contacts(*, contact_ids: list[int], emails: list[str]) -> int:
    """Delivery log rows whose payload names one of these contacts (by id, or by email for a
    contact since re-created): the payload carries the person's name and email."""
    match = Q(payload__data__contact__id__in=contact_ids)
    if emails:
        match |= Q(payload__data__contact__email__in=emails)
    deleted, _ = WebhookDelivery.objects.filter(match).delete()
    return deleted
