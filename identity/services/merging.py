"""Automatic merges (the stitching worker's) and splits (an Admin undoing any merge).

A merge is contacts.services.merging.contact_merge with the identity app's rules around it: the winner is
the identified contact, then the older one; the loser's daily rollups are summed into the
winner's first (one row per contact, day and key); its event projections move without their ids
recorded (a split sends events back by the identity that resolved them, not by a list).

A split (`merge_split`) undoes one standing merge. Exactly:

- the loser is live again, with the values it had (a tombstone keeps its own columns);
- the rows the merge moved and that still point at the winner go back: identities, deals,
  activities, tasks, memberships, earlier tombstones, ... (`ContactMerge.moved_ids`). Rows
  created after the merge stay with the winner, and so do moved rows since deleted or moved on;
- events (ContactEvent) whose resolving identity went back go back with it; events resolved by
  the winner's own identifiers (or by none) stay;
- both contacts' daily rollups are recomputed from their events, and first/last seen and
  first-touch attribution from their earliest and latest events;
- winner columns that the merge took from the loser get the winner's earlier value back, unless
  someone changed them since; tags and traits only the loser brought are removed the same way;
- the merge row stays as history with `split_at` / `split_by`; the worker never merges that pair
  automatically again (it records a refused-merge warning instead).

It is refused (Conflict, HTTP 409) when the merge was already split, when the winner has been
merged into another contact since (split that later merge first), or when a row cannot go back
because the loser's side now conflicts with a unique constraint.
"""

import functools
from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.permissions import ensure_admin
from contacts import services as contact_services
from contacts.models import Contact, ContactMerge
from contacts.services import merging as contact_merging
from contacts.services.consent import consent_newer
from core.db import lock_rows
from core.errors import Conflict
from events.models import Event
from events.services.suppression import value_hash
from identity.models import (
    ContactEvent,
    DailyActivity,
    Identity,
    IdentityKind,
    IdentityWarning,
    ProfileUpdate,
    SplitRule,
    TrackedContact,
)
from identity.services import hot
from identity.services.projection import (
    consent_state,
    daily_activity_recompute,
    first_touch_find,
    profile_updates_mark,
)

label = contact_merging.relation_label
IDENTITY_LABEL = label(Identity, "contact")
# Moved with the merge but not listed row by row: a visitor's events can number thousands, and a
# split finds them by their identity instead.
UNTRACKED = frozenset(
    {
        label(ContactEvent, "contact"),
        label(IdentityWarning, "contact"),
        label(IdentityWarning, "other_contact"),
    }
)
# Rows about the loser itself: who created it (rebuild_identity), its pending segment update.
STAYING = frozenset({label(TrackedContact, "contact"), label(ProfileUpdate, "contact")})
# Set while the stitching worker merges: it evaluates the hot-deal rules once per batch for the
# contacts it merged into (stitching._flush), instead of once per merge.
_WORKER_MERGE: ContextVar[bool] = ContextVar("worker_merge", default=False)


def merge_order(a: Contact, b: Contact) -> tuple[int, int]:
    """(winner id, loser id): identified over anonymous, then the older, then the lower id."""
    first, second = sorted([a, b], key=lambda c: (not c.is_identified, c.created_at, c.pk))
    return first.pk, second.pk


def _daily_activity_fold(*, winner_id: int, loser_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
            SELECT %s, day, kind, key, count FROM identity_dailyactivity WHERE contact_id = %s
            ON CONFLICT (contact_id, day, kind, key)
            DO UPDATE SET count = identity_dailyactivity.count + EXCLUDED.count
            """,
            [winner_id, loser_id],
        )
    DailyActivity.objects.filter(contact_id=loser_id).delete()


def contact_merge_prepare(*, winner: Contact, loser: Contact) -> tuple[frozenset[str], frozenset[str]]:
    """settings.CONTACT_MERGE_HOOKS entry, for every merge (the worker's and a person's): sum the
    loser's daily rollups into the winner's, and say which identity rows move untracked or stay.

    A merge brings the loser's history to the winner (pricing views made before the person signed
    in): once it is committed, the hot-deal rules look at the winner, once per rule window as
    always (hot.py). The worker's merges are looked at with the rest of its batch."""
    _daily_activity_fold(winner_id=winner.pk, loser_id=loser.pk)
    if not _WORKER_MERGE.get():
        transaction.on_commit(functools.partial(hot.hot_deals_after_merge, contact_id=winner.pk), robust=True)
    return UNTRACKED, STAYING


@transaction.atomic
def contacts_merge_auto(*, winner: Contact, loser: Contact, reason: str, event_id: int | None) -> Contact:
    """The worker's merge: no actor, CRM values win where the winner has them (the default
    choices), logged with `reason` and the triggering event."""
    token = _WORKER_MERGE.set(True)
    try:
        return contact_merging.contact_merge(
            winner=winner, loser=loser, field_choices={}, actor=None, reason=reason, event_id=event_id
        )
    finally:
        _WORKER_MERGE.reset(token)


# --- split


def _attname(name: str) -> str:
    return Contact._meta.get_field(name).attname


def _restore_winner(winner: Contact, merge: ContactMerge) -> tuple[dict[str, Any], list[str]]:
    """Give the winner back the values it had where the loser's won, unless changed since."""
    mine, theirs = merge.winner_snapshot, merge.loser_snapshot
    before = {name: getattr(winner, _attname(name)) for name in contact_services.CONTACT_FIELDS}
    changed = []
    for name, side in merge.field_choices.items():
        if side != contact_merging.LOSER:
            continue
        if name.startswith("custom_fields."):
            key = name.removeprefix("custom_fields.")
            if winner.custom_fields.get(key) == theirs.get("custom_fields", {}).get(key):
                custom = dict(winner.custom_fields)
                if key in mine.get("custom_fields", {}):
                    custom[key] = mine["custom_fields"][key]
                else:
                    custom.pop(key, None)
                winner.custom_fields = custom
                changed.append("custom_fields")
        elif name in mine and getattr(winner, _attname(name)) == theirs.get(name):
            setattr(winner, _attname(name), mine[name])
            changed.append(name)
    brought = set(theirs.get("tags", [])) - set(mine.get("tags", []))
    if brought & set(winner.tags):
        winner.tags = [t for t in winner.tags if t not in brought]
        changed.append("tags")
    winner.traits = {
        k: v
        for k, v in winner.traits.items()
        if k in mine.get("traits", {}) or theirs.get("traits", {}).get(k) != v
    }
    return before, list(dict.fromkeys(changed))


def _seen_recompute(contact: Contact) -> None:
    """first/last seen and first-touch attribution from the contact's events (if it has any)."""
    events = ContactEvent.objects.filter(contact=contact)
    first = events.order_by("timestamp", "event_id").values_list("event_id", "timestamp").first()
    if first is None:
        return
    contact.first_seen = first[1]
    contact.attribution = first_touch_find(contact_id=contact.pk)
    contact.last_seen = events.order_by("-timestamp").values_list("timestamp", flat=True).first()


# Events scanned, newest first, for one whose consent state is readable (contacts/services/consent.py).
CONSENT_SCAN = 50


def _consent_recompute(contact: Contact, *, at_merge: object) -> None:
    """After a split, each side's consent is its own again: the newer (contacts/services/consent.py) of
    the state it had when merged and that of its own newest event carrying one. The merged state
    may have come from the other person's events, so it is not kept."""
    state = dict(at_merge) if isinstance(at_merge, dict) else {}
    own = ContactEvent.objects.filter(contact=contact).values("event_id")
    candidates = Event.objects.filter(pk__in=own, context__consent__has_key="categoryPreferences").order_by(
        "-timestamp", "-pk"
    )[:CONSENT_SCAN]
    for event in candidates:
        if (carried := consent_state(event)) is not None:
            if consent_newer(candidate=carried, current=state):
                state = carried
            break
    contact.consent = state


def identifier_hashes(*, contact_ids: list[int]) -> dict[int, set[str]]:
    """Per contact, the digests (SplitRule's form) of the identifiers it holds and of its own
    email (a CRM contact's email joins events without an Identity row)."""
    held: dict[int, set[str]] = {pk: set() for pk in contact_ids}
    for contact_id, value in Identity.objects.filter(contact_id__in=contact_ids).values_list(
        "contact_id", "value"
    ):
        held[contact_id].add(value_hash(value))
    for contact_id, email in (
        Contact.objects.filter(pk__in=contact_ids).exclude(email=None).values_list("pk", "email")
    ):
        if email:
            held[contact_id].add(value_hash(email))
    return held


def split_rule_between(first: set[str], second: set[str]) -> bool:
    """Whether an Admin split apart identifiers that these two sets hold, one on each side."""
    if not first or not second:
        return False
    a, b = sorted(first), sorted(second)
    return SplitRule.objects.filter(
        Q(left__overlap=a, right__overlap=b) | Q(left__overlap=b, right__overlap=a)
    ).exists()


def _rows_return(merge: ContactMerge, *, winner: Contact, loser: Contact) -> None:
    for relation, pks in sorted(merge.moved_ids.items()):
        model_label, name = relation.rsplit(".", 1)
        model = apps.get_model(model_label)
        model._default_manager.filter(pk__in=pks, **{name: winner.pk}).update(**{name: loser.pk})
    returned = merge.moved_ids.get(IDENTITY_LABEL, [])
    if returned:
        ContactEvent.objects.filter(contact=winner, identity_id__in=returned).update(contact=loser)


@transaction.atomic
def merge_split(*, merge: ContactMerge, actor: AbstractBaseUser | None) -> ContactMerge:
    """Undo a standing merge (Admin only; None is the system). See the module docstring."""
    ensure_admin(actor, message="Only Admins may split a merge.")
    merge = ContactMerge.objects.select_for_update().filter(pk=merge.pk).first()
    if merge is None:
        raise Conflict("This merge no longer exists.", code="not_found")
    if merge.split_at is not None:
        raise Conflict(f"Merge {merge.pk} was already split.", code="already_split")
    if merge.moved and not merge.moved_ids:
        raise Conflict(
            f"Merge {merge.pk} was recorded before merges kept the ids of the rows they moved; "
            "it cannot be split.",
            code="not_splittable",
        )
    locked = {c.pk: c for c in lock_rows(Contact.objects.filter(pk__in=[merge.winner_id, merge.loser_id]))}
    winner, loser = locked.get(merge.winner_id), locked.get(merge.loser_id)
    if winner is None or loser is None:
        raise Conflict("One of the two contacts no longer exists.", code="not_found")
    if winner.merged_into_id is not None:
        later = (
            ContactMerge.objects.filter(loser=winner, split_at__isnull=True)
            .values_list("pk", flat=True)
            .first()
        )
        raise Conflict(
            f"Contact {winner.pk} has since been merged into contact {winner.merged_into_id}; "
            f"split that merge (#{later}) first.",
            code="merged_since",
        )
    if loser.merged_into_id != winner.pk:
        raise Conflict(
            f"Contact {loser.pk} is no longer merged into contact {winner.pk}.", code="merged_since"
        )
    try:
        with transaction.atomic():
            before, changed = _restore_winner(winner, merge)
            _rows_return(merge, winner=winner, loser=loser)
            winner.is_identified = bool(
                merge.winner_snapshot.get("is_identified")
                or winner.email
                or Identity.objects.filter(contact=winner, kind=IdentityKind.EMAIL).exists()
            )
            _seen_recompute(winner)
            _consent_recompute(winner, at_merge=merge.winner_snapshot.get("consent"))
            winner.save()
            loser.merged_into = None
            _seen_recompute(loser)
            _consent_recompute(loser, at_merge=merge.loser_snapshot.get("consent"))
            loser.save()
    except IntegrityError as exc:
        raise Conflict(
            f"Merge {merge.pk} cannot be split: the rows that would go back to contact {loser.pk} now "
            f"conflict with others ({exc.__cause__ or exc}).",
            code="split_conflict",
        ) from exc
    contact_services.field_changes_record(
        entity="contact", instance=winner, before=before, changed=changed, actor=actor
    )
    daily_activity_recompute(contact_ids=[winner.pk, loser.pk])
    merge.split_at = timezone.now()
    merge.split_by = actor
    merge.save(update_fields=["split_at", "split_by"])
    if actor is not None:
        # An Admin's decision, kept as a rule; the system's own splits (a rebuild undoing every
        # automatic merge before replaying them) decide nothing.
        held = identifier_hashes(contact_ids=[winner.pk, loser.pk])
        if held[winner.pk] and held[loser.pk]:
            SplitRule.objects.create(left=sorted(held[winner.pk]), right=sorted(held[loser.pk]), merge=merge)
    profile_updates_mark(contact_ids=[winner.pk, loser.pk])
    return merge
