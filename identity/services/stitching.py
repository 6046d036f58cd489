"""The stitching worker: each claimed event lands on the right contact.

`events_process` is the ingest processor (settings.INGEST_PROCESSOR): events.services claims a
batch of queue rows and calls it inside the transaction that deletes them. For each event, in
event id order, it normalises the identifiers the event carries, resolves them to a contact
through the identity graph, links the new ones, merges contacts the event proves to be one
person (within the guard rails), and projects the event onto its contact (ContactEvent, daily
rollups, first/last seen, first-touch attribution, traits).

The work is set-based where it can be: one statement reads every identity the batch names, its
contacts are locked once, and the rows it writes go out in bulk at the end, one INSERT per table
(new visitors' contacts too: their ids are reserved from the sequence as the batch meets them,
and the rows inserted together before anything reads contacts back). Merges are the exception:
they run as they happen, because later events of the batch must see them.

Concurrency. Workers on overlapping identifiers must neither deadlock nor create two contacts
for one identity:

1. every identifier of the batch is locked first, with transaction-level advisory locks taken in
   one statement in sorted order (no two workers can each hold one the other waits for);
2. the contacts those identifiers resolve to are then locked (FOR NO KEY UPDATE) in primary key
   order, the graph is
   read again, and if a concurrent merge moved something in between, the contact locks are
   released (savepoint rollback) and taken again;
3. the unique (kind, value) constraint is the last line: a violation fails the batch, which the
   ingest queue retries event by event.
"""

import functools
import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import (
    Company,
    Contact,
    ContactMerge,
    LifecycleStage,
    MergeReason,
)
from contacts.services.consent import consent_newer
from core.db import lock_rows
from core.errors import Conflict
from core.normalize import normalize_domain
from events.models import Event
from events.services import identifiers
from identity.models import (
    BlockedValue,
    CompanyGroup,
    Identity,
    IdentityKind,
    IdentityWarning,
    SplitRule,
    WarningKind,
)
from identity.services import hot, merging
from identity.services.projection import (
    activity_key,
    consent_state,
    daily_activity_add,
    event_path,
    first_touch,
    profile_updates_mark,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (IdentityKind, normalised value)

# Which identifier decides when an event's identifiers point at different people: the event
# lands on the contact found through the highest-priority one (Segment's order).
PRIORITY = [
    IdentityKind.USER_ID,
    IdentityKind.EMAIL,
    IdentityKind.PHONE,
    IdentityKind.EXTERNAL,
    IdentityKind.ANONYMOUS_ID,
]
_RANK = {kind: n for n, kind in enumerate(PRIORITY)}
VALUE_MAX = identifiers.VALUE_MAX
# A contact's lock set rarely moves under us; when it keeps moving something is wrong.
LOCK_ATTEMPTS = 20
# CRM-typed columns an identify() fills when the CRM has no value: (column, trait keys, length).
TRAIT_COLUMNS = [
    ("first_name", ("first_name", "firstName"), 100),
    ("last_name", ("last_name", "lastName"), 100),
    ("title", ("title",), 150),
]


def caps() -> dict[str, int]:
    """How many identifiers of each kind one contact may hold (settings.IDENTITY_CAPS)."""
    return {**DEFAULT_CAPS, **getattr(settings, "IDENTITY_CAPS", {})}


DEFAULT_CAPS = {
    IdentityKind.USER_ID: 1,
    IdentityKind.EMAIL: 5,
    IdentityKind.PHONE: 5,
    IdentityKind.EXTERNAL: 20,
    IdentityKind.ANONYMOUS_ID: 200,
}


# --- identifiers


def normalise(kind: str, raw: Any) -> str | None:
    """The stored form of an identifier, or None when `raw` is not one (absent, not a scalar,
    an invalid email or phone number). Blocked values are a separate, later check."""
    if raw is None or isinstance(raw, dict | list | bool):
        return None
    value = str(raw).strip()
    if not value:
        return None
    if kind == IdentityKind.EMAIL:
        value = value.lower()
        try:
            validate_email(value)
        except ValidationError:
            return None
    elif kind == IdentityKind.PHONE:
        return identifiers.phone_e164(value)
    return value[:VALUE_MAX]


def event_identifiers(event: "Event | EventRow") -> list[Key]:
    """Every identifier an event carries, normalised, highest priority first. identify() links
    its traits' email and phone; alias() its previousId (as the anonymous id it usually is,
    unless the graph knows it as a user id: see Batch.alias_key)."""
    keys: list[Key] = []

    def add(kind: str, raw: Any) -> None:
        value = normalise(kind, raw)
        if value is not None and (kind, value) not in keys:
            keys.append((kind, value))

    add(IdentityKind.USER_ID, event.user_id)
    if event.type == "identify":
        traits = event.traits if isinstance(event.traits, dict) else {}
        add(IdentityKind.EMAIL, traits.get("email"))
        add(IdentityKind.PHONE, traits.get("phone"))
    context = event.context if isinstance(event.context, dict) else {}
    for value in identifiers.external_ids(context):
        add(IdentityKind.EXTERNAL, value)
    add(IdentityKind.ANONYMOUS_ID, event.anonymous_id)
    if event.type == "alias":
        add(IdentityKind.ANONYMOUS_ID, event.previous_id)
    return sorted(keys, key=lambda k: _RANK[k[0]])


def _blocked_part(key: Key) -> str:
    kind, value = key
    return value.split(":", 1)[1] if kind == IdentityKind.EXTERNAL and ":" in value else value


def lock_hash(key: Key) -> int:
    digest = hashlib.blake2b(f"{key[0]}\x00{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identifiers_lock(keys: set[Key]) -> None:
    """Transaction-level advisory locks on `keys`, taken in sorted order in one statement."""
    hashes = sorted({lock_hash(k) for k in keys})
    if not hashes:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(h)) FROM "
            "(SELECT h FROM unnest(%s::bigint[]) AS h ORDER BY h) AS sorted_hashes",
            [_int_array(hashes)],
        )


def ingest_route_sql(*, slices: int) -> str:
    """The ingest queue's routing (settings.INGEST_ROUTING): the SQL expression of a stored
    event's slice, over `s` (its anonymous_id and user_id), evaluated in the statement that stores
    it. Events of a known person go to their contact's slice (user id first, as stitching ranks
    it; a merge repoints the identities, so both devices of a person share one); an unknown
    visitor's by a hash of the anonymous id, so its first events share a slice too. Routing only
    spreads the work: the locks below keep stitching correct wherever an event goes."""
    n = int(slices)
    return f"""mod(coalesce(
        (SELECT i.contact_id FROM identity_identity i
         WHERE s.user_id <> '' AND i.kind = '{IdentityKind.USER_ID.value}' AND i.value = s.user_id),
        (SELECT i.contact_id FROM identity_identity i
         WHERE s.anonymous_id <> '' AND i.kind = '{IdentityKind.ANONYMOUS_ID.value}'
           AND i.value = s.anonymous_id),
        hashtext(coalesce(nullif(s.anonymous_id, ''), s.user_id)) & 2147483647
    ), {n})"""


# --- what the worker reads: events and contacts as plain rows, not model instances


class EventRow:
    """A claimed event as the worker reads it: the columns it uses, under Event's attribute
    names (event_identifiers and the projection helpers read either), without building a model
    instance per event."""

    __slots__ = (
        "anonymous_id",
        "context",
        "event",
        "group_id",
        "is_bot",
        "pk",
        "previous_id",
        "properties",
        "received_at",
        "timestamp",
        "traits",
        "type",
        "user_id",
    )

    def __init__(self, row: tuple) -> None:
        (
            self.pk,
            self.type,
            self.event,
            self.anonymous_id,
            self.user_id,
            self.group_id,
            self.previous_id,
            properties,
            traits,
            context,
            self.timestamp,
            self.received_at,
            self.is_bot,
        ) = row
        self.properties = _json(properties)
        self.traits = _json(traits)
        self.context = _json(context)

    @property
    def id(self) -> int:
        return self.pk


# 19 digits in a row: perhaps an integer past 64 bits (or a long string of digits, harmless).
_LONG_DIGITS = re.compile(r"\d{19}")


def _json(value: Any) -> Any:
    # jsonb arrives as text on Django's connections (its JSONField decodes it itself). orjson
    # (about 3x json's speed here) unless the text may hold an integer past 64 bits, which orjson
    # reads as a float: traits are copied to contacts, so json keeps it exact.
    if not isinstance(value, str):
        return value
    return json.loads(value) if _LONG_DIGITS.search(value) else orjson.loads(value)


_EVENT_COLUMNS = (
    "e.id, e.type, e.event, e.anonymous_id, e.user_id, e.group_id, e.previous_id, e.properties, "
    "e.traits, e.context, e.timestamp, e.received_at, e.is_bot"
)
# events_event is partitioned by received_at (a month each): a lookup by id alone probes every
# partition's primary key. A claim's events are recent (the queue is a few seconds deep), so they
# are read with this bound first, and only ids it did not find are looked up without one.
RECENT = timedelta(days=2)


def _events_read(event_ids: list[int]) -> list[EventRow]:
    """The claim's events not stitched yet, in id order."""
    statement = f"""
        SELECT {_EVENT_COLUMNS} FROM events_event e
        WHERE e.id = ANY(%s::bigint[]) {{bound}}
          AND NOT EXISTS (SELECT 1 FROM identity_contactevent ce WHERE ce.event_id = e.id)
    """  # columns and bound are this module's text; the ids are a parameter
    wanted = _int_array(event_ids)
    with connection.cursor() as cursor:
        cursor.execute(statement.format(bound="AND e.received_at >= %s"), [wanted, timezone.now() - RECENT])
        rows = cursor.fetchall()
        if len(rows) < len(event_ids):
            # Older events (a retried or long-queued one), stitched ones, or deleted ones: the
            # rest without the bound (already-stitched events come back from neither).
            cursor.execute(
                f"""
                SELECT {_EVENT_COLUMNS} FROM events_event e
                WHERE e.id = ANY(%s::bigint[]) AND NOT (e.id = ANY(%s::bigint[]))
                  AND NOT EXISTS (SELECT 1 FROM identity_contactevent ce WHERE ce.event_id = e.id)
                """,
                [wanted, _int_array(row[0] for row in rows)],
            )
            rows += cursor.fetchall()
    rows.sort()
    return [EventRow(row) for row in rows]


def _int_array(values) -> str:
    """An int array parameter as Postgres's text form: psycopg's client-side binding dumps a
    list element by element in Python, which cProfile showed among the worker's top costs."""
    return "{" + ",".join(str(int(value)) for value in values) + "}"


class Person:
    """A contact as the worker reads and changes it: the columns stitching uses and writes back
    (contacts_tracked_save / contacts_tracked_create), under Contact's attribute names. A merge
    hands back a Contact, which the batch keeps as it is (it has the same attributes)."""

    # Read under the lock, in this order (updated_at is written, not read).
    COLUMNS = (
        "pk",
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "company_id",
        "owner_id",
        "lifecycle_stage",
        "tags",
        "custom_fields",
        "traits",
        "first_seen",
        "last_seen",
        "attribution",
        "consent",
        "is_identified",
        "merged_into_id",
        "created_at",
    )
    __slots__ = (*COLUMNS, "updated_at")

    @property
    def id(self) -> int:
        return self.pk

    first_touch_at = Contact.first_touch_at

    @classmethod
    def visitor(cls, pk: int, now: datetime) -> "Person":
        """A new visitor's contact, as Contact's defaults would make it (anonymous, a visitor,
        owned by nobody)."""
        person = cls()
        person.pk, person.created_at, person.updated_at = pk, now, now
        person.first_name = person.last_name = person.phone = person.title = ""
        person.email = person.company_id = person.owner_id = person.merged_into_id = None
        person.first_seen = person.last_seen = None
        person.lifecycle_stage = LifecycleStage.VISITOR
        person.tags = []
        person.custom_fields, person.traits, person.attribution, person.consent = {}, {}, {}, {}
        person.is_identified = False
        return person

    @classmethod
    def from_row(cls, row: tuple) -> "Person":
        person = cls()
        for name, value in zip(cls.COLUMNS, row, strict=True):
            setattr(person, name, value)
        person.updated_at = None
        return person


# --- the batch


@dataclass(slots=True)
class _Pending:
    event: EventRow
    contact_id: int
    key: Key | None


@dataclass
class Batch:
    """One batch's view of the graph: identities and contacts it loaded and locked, and the
    rows it will write. Merges inside the batch are followed through `parent`."""

    events: list[EventRow]
    keys: dict[int, list[Key]]
    blocked: set[tuple[str, str]] = field(default_factory=set)
    ident: dict[Key, list] = field(default_factory=dict)  # key -> [identity id or None, contact id]
    crm_email: dict[str, int] = field(default_factory=dict)
    contacts: dict[int, Person | Contact] = field(default_factory=dict)
    counts: dict[int, Counter] = field(default_factory=dict)
    user_id: dict[int, str] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)
    new_identities: list[list] = field(default_factory=list)  # [kind, value, contact id, first event]
    new_contacts: dict[int, int] = field(default_factory=dict)  # contact id -> first event id
    unsaved: dict[int, Person] = field(default_factory=dict)  # new contacts not inserted yet
    reserved: list[int] = field(default_factory=list)  # contact ids reserved, largest first
    expected_new: int = 0  # how many new contacts the batch looks like it makes
    rows: list[_Pending] = field(default_factory=list)
    warnings: list[IdentityWarning] = field(default_factory=list)
    dirty: set[int] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)
    groups: dict[str, int] = field(default_factory=dict)
    marked: set[int] = field(default_factory=set)  # contacts whose ProfileUpdate is written

    def root(self, contact_id: int) -> int:
        while contact_id in self.parent:
            contact_id = self.parent[contact_id]
        return contact_id

    def owner_of(self, key: Key) -> int | None:
        """The live contact an identifier belongs to (a CRM contact's own email counts, and so
        does a contact reference, `contact_ref`)."""
        if key in self.ident:
            return self.root(self.ident[key][1])
        if _crm_owned(key) and key[1] in self.crm_email:
            return self.root(self.crm_email[key[1]])
        return None


# Events the app writes about a known contact (an email sent from the CRM, its opens and clicks:
# mail.services.events) carry the anonymous id "cdp-contact:<contact id>": the stitcher resolves
# it to that contact (its survivor, if merged) like a CRM contact's own email, so the events take
# the one ingestion path (log, projection, rollups, segments) and `rebuild_identity` replays them
# onto the same person. The prefix cannot be a real visitor's: the JS library's ids are UUIDs.
CONTACT_REF_PREFIX = "cdp-contact:"


def contact_ref(*, contact_id: int) -> str:
    """The anonymous id that names a contact (see CONTACT_REF_PREFIX)."""
    return f"{CONTACT_REF_PREFIX}{contact_id}"


def _crm_owned(key: Key) -> bool:
    return key[0] == IdentityKind.EMAIL or (
        key[0] == IdentityKind.ANONYMOUS_ID and key[1].startswith(CONTACT_REF_PREFIX)
    )


def _contact_refs_resolve(values: list[str]) -> dict[str, int]:
    """Contact references -> the live contact each names, following merges to the survivor.
    A reference to a deleted contact resolves to nothing (a new anonymous contact holds it)."""
    wanted = {}
    for value in values:
        ref = value[len(CONTACT_REF_PREFIX) :]
        if ref.isdigit() and len(ref) < 19:
            wanted[value] = int(ref)
    found: dict[str, int] = {}
    pending = dict(wanted)
    for _ in range(8):  # merge chains are short: tombstones are repointed to the final survivor
        if not pending:
            break
        rows = dict(Contact.objects.filter(pk__in=set(pending.values())).values_list("pk", "merged_into_id"))
        next_pending = {}
        for value, pk in pending.items():
            if pk not in rows:
                continue
            if rows[pk] is None:
                found[value] = pk
            else:
                next_pending[value] = rows[pk]
        pending = next_pending
    return found


def _load_blocked() -> set[tuple[str, str]]:
    return {
        (kind, value.strip().lower()) for kind, value in BlockedValue.objects.values_list("kind", "value")
    }


def _is_blocked(blocked: set[tuple[str, str]], key: Key) -> bool:
    value = _blocked_part(key).strip().lower()
    return ("", value) in blocked or (key[0], value) in blocked


def _read_graph(keys: set[Key]) -> tuple[dict[Key, list], dict[str, int]]:
    """Every identity of `keys` in one statement (the pairs as two arrays, looked up through
    the unique (kind, value) index), and the live CRM contacts owning the emails no identity
    holds."""
    ident: dict[Key, list] = {}
    if keys:
        ordered = sorted(keys)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT i.id, i.kind, i.value, i.contact_id
                FROM jsonb_array_elements(%s::jsonb) AS k
                JOIN identity_identity i ON i.kind = k->>0 AND i.value = k->>1
                """,
                [orjson.dumps(ordered).decode()],
            )
            for pk, kind, value, contact_id in cursor.fetchall():
                ident[(kind, value)] = [pk, contact_id]
    crm_email = {}
    if emails := [v for k, v in keys if k == IdentityKind.EMAIL and (k, v) not in ident]:
        crm_email = dict(
            Contact.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails, merged_into__isnull=True)
            .values_list("email_lower", "pk")
        )
    if refs := [v for k, v in keys if k != IdentityKind.EMAIL and _crm_owned((k, v)) and (k, v) not in ident]:
        crm_email.update(_contact_refs_resolve(refs))
    return ident, crm_email


def _lock_contacts(batch: Batch, keys: set[Key]) -> None:
    """Lock the contacts `keys` resolve to, in pk order, and read the graph again under the
    locks; retry when a concurrent merge moved an identifier in between. FOR NO KEY UPDATE:
    stitching never changes a contact's key, and the weaker lock lets other transactions'
    foreign-key checks (KEY SHARE) pass, so the segments worker committing memberships of these
    contacts, while holding ProfileUpdate rows this batch upserts, does not deadlock with it.

    Their ProfileUpdate rows are written first, before any contact is locked: the segments worker
    holds the rows it claimed until its commit, which needs KEY SHARE on their contacts, and a
    merge here locks two contacts FOR UPDATE (contacts.services.merging). Upserting the rows
    under those locks waited on the segments worker while it waited on us (a deadlock, measured
    under the sustained benchmark); upserted before them, the batch waits for its commit, holding
    nothing it needs. Contacts the batch touches later (new ones, an identifier moved by a
    concurrent merge) are marked at the end."""
    ident, crm_email = _read_graph(keys)
    first = {contact_id for _, contact_id in ident.values()} | set(crm_email.values())
    profile_updates_mark(contact_ids=sorted(first))
    batch.marked = first
    for _ in range(LOCK_ATTEMPTS):
        wanted = {contact_id for _, contact_id in ident.values()} | set(crm_email.values())
        savepoint = transaction.savepoint_create()
        locked = {
            row[0]: Person.from_row(row)
            for row in lock_rows(Contact.objects.filter(pk__in=wanted), no_key=True).values_list(
                *Person.COLUMNS
            )
        }
        ident, crm_email = _read_graph(keys)
        now_wanted = {contact_id for _, contact_id in ident.values()} | set(crm_email.values())
        if now_wanted <= set(locked) and all(locked[pk].merged_into_id is None for pk in now_wanted):
            transaction.savepoint_commit(savepoint)
            batch.ident, batch.crm_email = ident, crm_email
            batch.contacts = {pk: locked[pk] for pk in now_wanted}
            return
        transaction.savepoint_rollback(savepoint)
    raise RuntimeError("the identity graph kept changing while its contacts were being locked")


def _load_counts(batch: Batch, contact_ids: set[int]) -> None:
    for contact_id in contact_ids:
        batch.counts.setdefault(contact_id, Counter())
    rows = Identity.objects.filter(contact_id__in=contact_ids).values_list("contact_id", "kind", "value")
    for contact_id, kind, value in rows:
        batch.counts[contact_id][kind] += 1
        if kind == IdentityKind.USER_ID:
            batch.user_id[contact_id] = value


def _warn(
    batch: Batch, kind: str, detail: str, *, event: EventRow, key: Key | None = None, **contacts
) -> IdentityWarning:
    warning = IdentityWarning(
        kind=kind,
        detail=detail[:500],
        event_id=event.pk,
        identity_kind=key[0] if key else "",
        identity_value=key[1] if key else "",
        **contacts,
    )
    batch.warnings.append(warning)
    return warning


@transaction.atomic
def events_process(*, event_ids: list[int]) -> None:
    """Stitch the given events (the ingest processor). Events already stitched are skipped, so
    a batch processed twice (a re-queued event) changes nothing the second time."""
    events = _events_read(event_ids)
    if not events:
        return
    batch = Batch(events=events, keys={}, blocked=_load_blocked())
    every_key: set[Key] = set()
    for event in events:
        keys = []
        for key in event_identifiers(event):
            if _is_blocked(batch.blocked, key):
                _warn(
                    batch,
                    WarningKind.BLOCKED_VALUE,
                    f"Ignored the blocked {key[0]} value {key[1]!r}.",
                    event=event,
                    key=key,
                )
            else:
                keys.append(key)
        previous = normalise(IdentityKind.USER_ID, event.previous_id) if event.type == "alias" else None
        if previous and previous != event.user_id.strip() and (IdentityKind.ANONYMOUS_ID, previous) in keys:
            # previousId is usually an anonymous id, but may be a user id the graph knows:
            # both readings are locked and looked up, and _alias_reading keeps one.
            keys.append((IdentityKind.USER_ID, previous))
        batch.keys[event.pk] = keys
        every_key.update(keys)
    identifiers_lock(every_key)
    # Under the identifier locks, drop what another processor stitched meanwhile (a rebuild
    # racing the live worker, a re-queued event): the check above ran before the locks.
    if done := _projected(events):
        batch.events = events = [e for e in events if e.pk not in done]
        batch.warnings = [w for w in batch.warnings if w.event_id not in done]
        if not events:
            return
    _lock_contacts(batch, every_key)
    _load_counts(batch, set(batch.contacts))
    batch.expected_new = _new_contacts_expected(batch)
    for event in events:
        _event_stitch(batch, event)
    _flush(batch)


def _projected(events: list[EventRow]) -> set[int]:
    """Which of these events have a projection (another processor stitched them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id FROM identity_contactevent WHERE event_id = ANY(%s::bigint[])",
            [_int_array(e.pk for e in events)],
        )
        return {row[0] for row in cursor.fetchall()}


def _alias_reading(batch: Batch, event: EventRow, keys: list[Key]) -> list[Key]:
    """alias(previousId) was locked and looked up both as an anonymous id and as a user id; keep
    the reading the graph knows now (the anonymous id when neither is known)."""
    previous = normalise(IdentityKind.ANONYMOUS_ID, event.previous_id)
    as_user, as_anonymous = (IdentityKind.USER_ID, previous), (IdentityKind.ANONYMOUS_ID, previous)
    if not previous or as_user not in keys or previous == normalise(IdentityKind.USER_ID, event.user_id):
        return keys
    drop = as_anonymous if as_user in batch.ident and as_anonymous not in batch.ident else as_user
    return [k for k in keys if k != drop]


def _event_stitch(batch: Batch, event: EventRow) -> None:
    keys = batch.keys[event.pk]
    if event.type == "alias":
        keys = _alias_reading(batch, event, keys)
    event_user = next((v for k, v in keys if k == IdentityKind.USER_ID), None)
    if event.type == "alias":
        event_user = normalise(IdentityKind.USER_ID, event.user_id)
    accepted: list[int] = []
    found_by: dict[int, Key] = {}
    refused: set[Key] = set()
    refusals: list[IdentityWarning] = []
    effective_user = event_user
    for key in keys:
        owner = batch.owner_of(key)
        if owner is None:
            continue
        if owner in accepted:
            continue
        owner_user = batch.user_id.get(owner)
        if effective_user and owner_user and owner_user != effective_user:
            refused.add(key)
            refusals.append(
                _warn(
                    batch,
                    WarningKind.REFUSED_MERGE,
                    f"Contact {owner} holds user id {owner_user!r}; this event is for user id "
                    f"{effective_user!r}, so its {key[0]} {key[1]!r} was not linked and the contacts "
                    "were not merged.",
                    event=event,
                    key=key,
                    other_contact_id=owner,
                )
            )
            continue
        accepted.append(owner)
        found_by[owner] = key
        effective_user = effective_user or owner_user

    if accepted:
        target = accepted[0]
        for other in accepted[1:]:
            target = _try_merge(batch, event, target, other, found_by, refused)
    else:
        target = _contact_new(batch, event)

    for key in keys:
        if key in refused or key in batch.ident:
            continue
        if batch.owner_of(key) not in (None, target):  # a CRM contact's email, not merged
            continue
        if batch.counts[target][key[0]] >= caps()[key[0]]:
            _warn(
                batch,
                WarningKind.CAP_HIT,
                f"Contact {target} already holds {caps()[key[0]]} {key[0]} identifiers; "
                f"{key[1]!r} was not linked.",
                event=event,
                key=key,
                contact_id=target,
            )
            refused.add(key)
            continue
        _link(batch, key, target, event)
    for warning in refusals:
        warning.contact_id = target  # where the event landed instead

    resolved = next((k for k in keys if k not in refused and batch.owner_of(k) == target), None)
    batch.rows.append(_Pending(event=event, contact_id=target, key=resolved))
    contact = batch.contacts[target]
    _contact_touch(batch, contact, event)
    state = consent_state(event)
    if state is not None and consent_newer(candidate=state, current=contact.consent):
        contact.consent = state
    if event.type == "identify":
        _identify_apply(batch, contact, event, keys)
    elif event.type == "group":
        _group_apply(batch, contact, event)


def _link(batch: Batch, key: Key, contact_id: int, event: EventRow) -> None:
    if _crm_owned(key) and key[1] in batch.crm_email:
        batch.crm_email.pop(key[1])
    batch.new_identities.append([key[0], key[1], contact_id, event.pk])
    batch.ident[key] = [None, contact_id]
    batch.counts[contact_id][key[0]] += 1
    if key[0] == IdentityKind.USER_ID:
        batch.user_id[contact_id] = key[1]


def _new_contacts_expected(batch: Batch) -> int:
    """About how many contacts the batch will create: events none of whose identifiers has an
    owner yet, counted once per first identifier (later events of a visitor find the contact
    the first one made). The ids are reserved in one statement, more when it was too few."""
    firsts = set()
    keyless = 0
    for event in batch.events:
        keys = batch.keys[event.pk]
        if not keys:
            keyless += 1
        elif all(batch.owner_of(key) is None for key in keys):
            firsts.add(keys[0])
    return len(firsts) + keyless


def _contact_new(batch: Batch, event: EventRow) -> int:
    """A contact for a visitor nobody has seen: anonymous, a visitor, owned by nobody. It is
    inserted with the batch's other new contacts, in one statement, when anything reads
    contacts from the database (a merge, a split rule) or at the end (_flush_graph); its id
    is reserved now, so later events of the batch link to it."""
    if not batch.reserved:
        count = max(batch.expected_new - len(batch.new_contacts), RESERVE_MIN)
        batch.reserved = contact_services.contact_ids_reserve(count=count)[::-1]
    contact = Person.visitor(batch.reserved.pop(), timezone.now())
    batch.unsaved[contact.pk] = contact
    batch.contacts[contact.pk] = contact
    batch.counts[contact.pk] = Counter()
    batch.new_contacts[contact.pk] = event.pk
    return contact.pk


def _merge_reason(event: EventRow, *keys: Key) -> str:
    if event.type == "alias":
        return MergeReason.ALIAS
    kinds = {k[0] for k in keys}
    for kind, reason in (
        (IdentityKind.EMAIL, MergeReason.EMAIL),
        (IdentityKind.PHONE, MergeReason.PHONE),
        (IdentityKind.EXTERNAL, MergeReason.EXTERNAL_ID),
    ):
        if kind in kinds:
            return reason
    return MergeReason.IDENTIFY


def _try_merge(batch: Batch, event: EventRow, target: int, other: int, found_by: dict, refused: set) -> int:
    """Merge `other` and `target` (within caps, never a pair an Admin split); returns the
    contact the event now lands on."""
    combined = batch.counts[target] + batch.counts[other]
    over = [kind for kind, n in combined.items() if n > caps()[kind]]
    split_before = ContactMerge.objects.filter(
        Q(winner_id=target, loser_id=other) | Q(winner_id=other, loser_id=target), split_at__isnull=False
    ).exists() or _split_by_rule(batch, target, other)
    if over or split_before:
        refused.add(found_by[other])
        if split_before:
            kind = WarningKind.REFUSED_MERGE
            detail = f"Contacts {target} and {other} were split by an Admin; they are not merged again."
        else:
            kind = WarningKind.CAP_HIT
            detail = f"Merging contacts {target} and {other} would exceed the {', '.join(over)} cap."
        _warn(
            batch, kind, detail, event=event, key=found_by[other], contact_id=target, other_contact_id=other
        )
        return target
    winner_id, loser_id = merging.merge_order(batch.contacts[target], batch.contacts[other])
    _flush_graph(batch, {winner_id, loser_id})
    winner = merging.contacts_merge_auto(
        winner=batch.contacts[winner_id],
        loser=batch.contacts[loser_id],
        reason=_merge_reason(event, found_by[target], found_by[other]),
        event_id=event.pk,
    )
    batch.parent[loser_id] = winner_id
    batch.contacts[winner_id] = winner
    batch.contacts.pop(loser_id)
    batch.counts[winner_id] = combined
    if loser_id in batch.user_id:
        batch.user_id[winner_id] = batch.user_id.pop(loser_id)
    batch.touched.update({winner_id, loser_id})
    batch.dirty.discard(loser_id)
    return winner_id


def _split_by_rule(batch: Batch, target: int, other: int) -> bool:
    """Whether an Admin split identifiers these two contacts hold (a SplitRule: it outlives the
    contact ids, which a rebuild recreates)."""
    if not SplitRule.objects.exists():  # the usual case: no Admin ever split a merge
        return False
    _flush_graph(batch, {target, other})  # the pending identities and emails, readable
    held = merging.identifier_hashes(contact_ids=[target, other])
    return merging.split_rule_between(held[target], held[other])


def _contact_touch(batch: Batch, contact: Person | Contact, event: EventRow) -> None:
    # The earliest touch wins whatever order events arrive in, so a replay finds the same one.
    # (Read before first_seen moves: it dates attribution stored without its time.)
    touched_at = contact.first_touch_at
    if (touched_at is None or event.timestamp < touched_at) and (touch := first_touch(event)) is not None:
        contact.attribution = touch
    if contact.first_seen is None or event.timestamp < contact.first_seen:
        contact.first_seen = event.timestamp
    if contact.last_seen is None or event.timestamp > contact.last_seen:
        contact.last_seen = event.timestamp
    batch.dirty.add(contact.pk)
    batch.touched.add(contact.pk)


def _identify_apply(batch: Batch, contact: Person | Contact, event: EventRow, keys: list[Key]) -> None:
    """Traits update the profile; CRM-typed columns only fill where the CRM has no value."""
    traits = event.traits if isinstance(event.traits, dict) else {}
    if traits:
        contact.traits = {**contact.traits, **traits}
    for column, names, length in TRAIT_COLUMNS:
        value = next((traits[n] for n in names if isinstance(traits.get(n), str) and traits[n].strip()), None)
        if value and not getattr(contact, column):
            setattr(contact, column, value.strip()[:length])
    if isinstance(traits.get("name"), str) and not (contact.first_name or contact.last_name):
        first, _, last = traits["name"].strip().partition(" ")
        contact.first_name, contact.last_name = first[:100], last.strip()[:100]
    email = next(
        (v for k, v in keys if k == IdentityKind.EMAIL and batch.owner_of((k, v)) == contact.pk), None
    )
    if email and not contact.email:
        contact.email = email
    phone = next(
        (v for k, v in keys if k == IdentityKind.PHONE and batch.owner_of((k, v)) == contact.pk), None
    )
    if phone and not contact.phone:
        contact.phone = phone[:40]
    if email or contact.email:
        contact.is_identified = True
        if contact.lifecycle_stage == LifecycleStage.VISITOR:
            contact.lifecycle_stage = LifecycleStage.LEAD


def _group_apply(batch: Batch, contact: Person | Contact, event: EventRow) -> None:
    """group() links the person to the CRM company named by groupId (or its traits' domain);
    a contact that already has a company keeps it."""
    group_id = normalise(IdentityKind.EXTERNAL, event.group_id)
    if group_id is None or _is_blocked(batch.blocked, ("group", group_id)):
        return
    company_id = batch.groups.get(group_id)
    if company_id is None:
        company_id = (
            CompanyGroup.objects.filter(group_id=group_id).values_list("company_id", flat=True).first()
        )
    if company_id is None:
        company_id = _company_for_group(group_id, event.traits if isinstance(event.traits, dict) else {})
        CompanyGroup.objects.get_or_create(group_id=group_id, defaults={"company_id": company_id})
    batch.groups[group_id] = company_id
    if contact.company_id is None:
        contact.company_id = company_id


def _company_for_group(group_id: str, traits: dict) -> int:
    domain = (
        normalize_domain(traits.get("domain") or traits.get("website"))
        if isinstance(traits.get("domain") or traits.get("website"), str)
        else None
    )
    if domain and (found := Company.objects.filter(domain=domain).values_list("pk", flat=True).first()):
        return found
    name = traits.get("name") if isinstance(traits.get("name"), str) and traits["name"].strip() else None
    try:
        with transaction.atomic():
            return contact_services.company_create(
                actor=None, name=(name or domain or group_id)[:200], domain=domain
            ).pk
    except (ValidationError, Conflict):
        # A domain that does not validate (or was taken meanwhile): the company without it.
        return contact_services.company_create(actor=None, name=(name or group_id)[:200]).pk


# --- writing it out

# Contact ids reserved at least per round (the first round reserves what the batch looks like
# it needs).
RESERVE_MIN = 8


def _flush_graph(batch: Batch, contact_ids: set[int]) -> None:
    """Write new contacts, pending identities and the given contacts' changes (a merge reads
    them from the database)."""
    if batch.unsaved:
        # As they stand now: nothing of theirs is left to update.
        contact_services.contacts_tracked_create(contacts=list(batch.unsaved.values()))
        batch.dirty -= set(batch.unsaved)
        batch.unsaved = {}
    if batch.new_identities:
        for identity in batch.new_identities:
            identity[2] = batch.root(identity[2])
        for pk, kind, value in _identities_insert(batch.new_identities):
            batch.ident[(kind, value)][0] = pk
        batch.new_identities = []
    dirty = [batch.contacts[pk] for pk in sorted(contact_ids & batch.dirty) if pk in batch.contacts]
    if dirty:
        contact_services.contacts_tracked_save(contacts=dirty)
    batch.dirty -= contact_ids


def _identities_insert(identities: list[list]) -> list[tuple[int, str, str]]:
    """One INSERT for a batch's new identities ([kind, value, contact id, first event id]);
    (id, kind, value) of each. The rows travel as one JSON parameter (see _int_array)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_identity (kind, value, contact_id, first_event_id, created_at)
            SELECT i->>0, i->>1, (i->>2)::bigint, (i->>3)::bigint, %s
            FROM jsonb_array_elements(%s::jsonb) AS i
            RETURNING id, kind, value
            """,
            [timezone.now(), orjson.dumps(identities).decode()],
        )
        return cursor.fetchall()


def _contact_events_insert(batch: Batch) -> None:
    """The batch's event projection (ContactEvent), one INSERT: the one place its columns are
    written (the rows travel as one JSON parameter, decoded by the server)."""
    if not batch.rows:
        return
    identity_ids = {key: row[0] for key, row in batch.ident.items()}
    rows = [
        (
            row.event.pk,
            batch.root(row.contact_id),
            identity_ids.get(row.key) if row.key else None,
            row.event.type,
            row.event.event[:200],
            event_path(row.event),
            row.event.timestamp,
            row.event.is_bot,
            row.event.received_at,
        )
        for row in batch.rows
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_contactevent
                (event_id, contact_id, identity_id, type, name, path, timestamp, is_bot, received_at)
            SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::bigint, r->>3, r->>4, r->>5,
                (r->>6)::timestamptz, (r->>7)::boolean, (r->>8)::timestamptz
            FROM jsonb_array_elements(%s::jsonb) AS r
            """,
            [orjson.dumps(rows).decode()],
        )


def _tracked_contacts_insert(new_contacts: dict[int, int]) -> None:
    """Who created each new contact (TrackedContact: contact id -> first event id), one INSERT."""
    if not new_contacts:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_trackedcontact (contact_id, first_event_id)
            SELECT * FROM unnest(%s::bigint[], %s::bigint[])
            ON CONFLICT DO NOTHING
            """,
            [_int_array(new_contacts), _int_array(new_contacts.values())],
        )


def _flush(batch: Batch) -> None:
    _flush_graph(batch, set(batch.dirty))
    _tracked_contacts_insert(batch.new_contacts)
    _contact_events_insert(batch)
    rollup: Counter = Counter()
    for row in batch.rows:
        if found := activity_key(row.event):
            rollup[(batch.root(row.contact_id), row.event.timestamp.astimezone(UTC).date(), *found)] += 1
    daily_activity_add(rollup)
    _warnings_write(batch.warnings)
    touched = sorted({batch.root(pk) for pk in batch.touched} | batch.touched)
    profile_updates_mark(contact_ids=[pk for pk in touched if pk not in batch.marked])
    # People who viewed pages may have just turned a deal hot, and so may people a merge brought
    # history to (pricing views made anonymously, stitched at identify): their owners hear of it
    # once this batch is committed (the rules read the committed projection). Only a view whose
    # path a rule names can turn that rule true, so the check gets the paths viewed.
    viewed: dict[int, set[str]] = {}
    for row in batch.rows:
        if row.event.type == "page" and not row.event.is_bot:
            viewed.setdefault(batch.root(row.contact_id), set()).add(event_path(row.event))
    merged = {batch.root(loser) for loser in batch.parent}
    if viewed or merged:
        transaction.on_commit(
            functools.partial(hot.hot_deals_after_views, viewed=viewed, merged=merged), robust=True
        )


# A flood of "null" ids (or one shared device) must not become a million rows: one warning per
# (kind, identifier) per UTC day.
def _warnings_write(warnings: list[IdentityWarning]) -> None:
    if not warnings:
        return
    day_start = datetime.combine(timezone.now().astimezone(UTC).date(), time.min, tzinfo=UTC)
    seen = set(
        IdentityWarning.objects.filter(
            created_at__gte=day_start,
            kind__in={w.kind for w in warnings},
            identity_value__in={w.identity_value for w in warnings},
        ).values_list("kind", "identity_kind", "identity_value")
    )
    fresh = []
    for warning in warnings:
        key = (warning.kind, warning.identity_kind, warning.identity_value)
        if key not in seen:
            seen.add(key)
            fresh.append(warning)
    IdentityWarning.objects.bulk_create(fresh)
