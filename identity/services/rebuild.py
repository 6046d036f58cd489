"""Rebuilding the identity graph from the append-only event log (`manage.py rebuild_identity`).

"From scratch" means (docs/architecture.md, "Identity rebuild"):

- reset, in one transaction: every standing automatic merge is split (newest first, so CRM rows
  go back to the contacts they came from) and all automatic merge rows are deleted; every contact
  the worker created (TrackedContact) is deleted unless people attached CRM data to it (a deal,
  an activity, a task, an owner, a manual merge, a field edited by a user); every derived row
  goes: identities, event projections, daily rollups, identity warnings; the contacts that stay
  lose their derived columns (traits, first/last seen, attribution). CRM data survives: contacts
  typed in the CRM, their deals, activities, tasks, companies (and the groupId -> company map,
  which only points at CRM companies), manual merges;
- replay: every event, in id order, through the worker's own `events_process`, in batches, each
  batch committing the checkpoint (RebuildState.last_event_id) with its work. A run stopped
  after its reset resumes from the checkpoint; `restart=True` starts over.

Stop the identity workers first: an event the live worker stitches during the replay would be
taken out of order. (Nothing breaks if one does: the replay skips events already stitched.)
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from contacts.models import ATTRIBUTION_TOUCHED_AT, Contact, ContactMerge, FieldChange, MergeReason
from contacts.services import changes as contact_changes
from contacts.services import merging as contact_merging
from core.db import lock_rows
from events.models import Event
from identity.models import (
    ContactEvent,
    DailyActivity,
    Identity,
    IdentityWarning,
    ProfileUpdate,
    RebuildState,
    TrackedContact,
)
from identity.services.merging import merge_split
from identity.services.projection import first_touch, first_touch_find, profile_updates_mark
from identity.services.stitching import events_process

label = contact_merging.relation_label
# Rows that do not make a worker-created contact a CRM record: the identity app's own.
DERIVED = frozenset(
    {
        label(Identity, "contact"),
        label(ContactEvent, "contact"),
        label(DailyActivity, "contact"),
        label(IdentityWarning, "contact"),
        label(IdentityWarning, "other_contact"),
        label(TrackedContact, "contact"),
        label(ProfileUpdate, "contact"),
        label(Contact, "merged_into"),
    }
)
BATCH_SIZE = 500


@dataclass
class ResetResult:
    merges_split: int
    contacts_deleted: int
    contacts_kept: int


def _automatic_merges():
    return ContactMerge.objects.filter(~Q(reason=MergeReason.MANUAL))


@transaction.atomic
def identity_reset() -> ResetResult:
    """Undo everything the worker derived (see the module docstring) and start a checkpoint."""
    split = 0
    for merge in _automatic_merges().filter(split_at__isnull=True).order_by("-created_at", "-pk"):
        merge_split(merge=merge, actor=None)
        split += 1
    _automatic_merges().delete()
    tracked = list(TrackedContact.objects.values_list("contact_id", flat=True))
    worked_on = contact_merging.contacts_with_related_rows(contact_ids=tracked, ignore=DERIVED)
    worked_on |= set(
        Contact.objects.filter(pk__in=tracked).filter(Q(owner__isnull=False)).values_list("pk", flat=True)
    )
    worked_on |= set(
        FieldChange.objects.filter(entity="contact", object_id__in=tracked, actor__isnull=False).values_list(
            "object_id", flat=True
        )
    )
    for winner_id, loser_id in ContactMerge.objects.values_list("winner_id", "loser_id"):
        worked_on |= {winner_id, loser_id}
    doomed = [pk for pk in tracked if pk not in worked_on]
    for model in (ContactEvent, DailyActivity, IdentityWarning, Identity, ProfileUpdate):
        model.objects.all().delete()
    contact_changes.contacts_deleting(contact_ids=doomed)
    Contact.objects.filter(pk__in=doomed).delete()
    TrackedContact.objects.all().delete()
    reset = Contact.objects.filter(merged_into__isnull=True).exclude(
        Q(traits={})
        & Q(first_seen__isnull=True)
        & Q(last_seen__isnull=True)
        & Q(attribution={})
        & Q(consent={})
    )
    changed = list(reset.values_list("pk", flat=True))
    reset.update(
        traits={}, first_seen=None, last_seen=None, attribution={}, consent={}, updated_at=timezone.now()
    )
    # Segments re-evaluate the survivors whose profile just lost its derived data (the replay
    # marks the ones it touches again).
    profile_updates_mark(contact_ids=changed)
    RebuildState.objects.all().delete()
    RebuildState.objects.create(started_at=timezone.now(), last_event_id=0)
    return ResetResult(
        merges_split=split, contacts_deleted=len(doomed), contacts_kept=len(worked_on & set(tracked))
    )


def identity_replay(
    *, batch_size: int = BATCH_SIZE, progress: Callable[[int, int], None] | None = None
) -> int:
    """Replay events after the checkpoint, a batch per transaction; returns how many."""
    done = 0
    while True:
        with transaction.atomic():
            state = RebuildState.objects.select_for_update().filter(finished_at__isnull=True).first()
            if state is None:
                return done
            ids = list(
                Event.objects.filter(pk__gt=state.last_event_id)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                state.finished_at = timezone.now()
                state.save(update_fields=["finished_at"])
                return done
            events_process(event_ids=ids)
            state.last_event_id = ids[-1]
            state.save(update_fields=["last_event_id"])
        done += len(ids)
        if progress:
            progress(done, state.last_event_id)


def rebuild_pending() -> bool:
    """A rebuild was reset and has not finished its replay (the next run resumes it)."""
    return RebuildState.objects.filter(finished_at__isnull=True).exists()


# --- first touch, re-derived in place

# Contacts locked and re-derived per transaction.
FIRST_TOUCH_BATCH = 500
# A person's earliest event that may be a tracked touch (projection.first_touch decides): a
# non-bot page or screen view, or an event whose context.campaign names a UTM tag.
_TOUCH_CANDIDATES = """
    SELECT DISTINCT ON (ce.contact_id) ce.contact_id, ce.event_id
    FROM identity_contactevent ce
    JOIN events_event e ON e.id = ce.event_id AND e.received_at = ce.received_at
    WHERE ce.contact_id = ANY(%s::bigint[]) AND NOT ce.is_bot AND (
        ce.type IN ('page', 'screen')
        OR (jsonb_typeof(e.context -> 'campaign') = 'object' AND EXISTS (
            SELECT 1 FROM jsonb_each(e.context -> 'campaign') AS tag(name, value)
            WHERE tag.name IN ('source', 'medium', 'name', 'term', 'content')
              AND jsonb_typeof(tag.value) = 'string' AND btrim(tag.value #>> '{}') <> ''
        ))
    )
    ORDER BY ce.contact_id, ce.timestamp, ce.event_id
"""


def first_touch_backfill(*, batch_size: int = FIRST_TOUCH_BATCH) -> int:
    """Give contacts whose attribution predates dated touches (no ATTRIBUTION_TOUCHED_AT) the
    first touch the worker would record now: what a rebuild replays, without the rebuild. The
    old rule took the first event of any kind, so a contact known before its first visit (or
    first seen through a server's identify) often had none. Contacts without events keep what
    they have. Safe beside the live worker (contacts are locked in pk order, as it locks them)
    and to run again. Returns how many contacts changed."""
    changed = 0
    after = 0
    while True:
        with transaction.atomic():
            todo = Contact.objects.filter(pk__gt=after, merged_into__isnull=True).exclude(
                attribution__has_key=ATTRIBUTION_TOUCHED_AT
            )
            contacts = list(lock_rows(todo)[:batch_size])
            if not contacts:
                return changed
            after = contacts[-1].pk
            ids = [c.pk for c in contacts]
            with connection.cursor() as cursor:
                cursor.execute(_TOUCH_CANDIDATES, [ids])
                candidates = dict(cursor.fetchall())
            events = Event.objects.in_bulk(candidates.values())
            with_events = set(
                ContactEvent.objects.filter(contact_id__in=ids)
                .values_list("contact_id", flat=True)
                .distinct()
            )
            updated = []
            for contact in contacts:
                if contact.pk not in with_events:
                    continue
                event = events.get(candidates.get(contact.pk))
                touch = first_touch(event) if event is not None else None
                if touch is None and event is not None:  # a tag the SQL let through, but blank
                    touch = first_touch_find(contact_id=contact.pk) or None
                attribution = touch or {}
                if attribution != contact.attribution:
                    contact.attribution = attribution
                    updated.append(contact)
            now = timezone.now()
            for contact in updated:
                contact.updated_at = now
            Contact.objects.bulk_update(updated, ["attribution", "updated_at"])
            # Segments re-evaluate them (a condition may read attribution).
            profile_updates_mark(contact_ids=[c.pk for c in updated])
            changed += len(updated)
