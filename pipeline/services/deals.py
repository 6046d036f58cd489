"""Writes to deals. Every change goes through here: validated, permitted, recorded.

`actor` is the user making the change (checked against pipeline.permissions), or None for the
system itself, which skips the checks.
"""

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Company, Contact, LifecycleStage
from contacts.services import changes as contact_changes
from core.db import lock_rows
from core.errors import Conflict
from core.text import ensure_storable_text
from pipeline import permissions
from pipeline.models import Deal, DealStatus, LostReason, Stage, StageChange

Actor = AbstractBaseUser | None

# Lifecycle stages a new deal lifts to `opportunity`; a customer with a new deal stays a customer.
MAX_LOST_NOTE = 2000
BEFORE_OPPORTUNITY = frozenset({LifecycleStage.VISITOR, LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD})
DEAL_FIELDS = frozenset(
    {"title", "amount", "currency", "contact", "company", "owner", "expected_close_date", "participants"}
)


# --- deals


@transaction.atomic
def deal_create(*, actor: Actor, title: str, stage: Stage, **fields: Any) -> Deal:
    """Create an open deal at the top of its stage column. The creator owns it unless `owner` is
    given; the contact's first-touch attribution is copied, and the contact becomes an opportunity."""
    _check_field_names(fields, DEAL_FIELDS)
    permissions.ensure_can_create_deal(actor)
    fields.setdefault("owner", actor)
    participants = fields.pop("participants", None)
    now = timezone.now()
    deal = Deal(pipeline_id=stage.pipeline_id, stage=stage, stage_entered_at=now, title=title)
    _apply_deal_fields(deal, {"title": title, **fields})
    # Newest first inside a column without renumbering: a smaller position sorts higher.
    deal.position = -now.timestamp()
    if deal.contact is not None:
        deal.attribution = dict(deal.contact.attribution or {})
        if deal.company is None:
            deal.company = deal.contact.company
    deal.save()
    if participants:
        deal.participants.set(participants)
    StageChange.objects.create(deal=deal, to_stage=stage, to_status=DealStatus.OPEN, actor=actor)
    if deal.contact is not None and deal.contact.lifecycle_stage in BEFORE_OPPORTUNITY:
        _set_lifecycle(deal.contact, LifecycleStage.OPPORTUNITY)
    _deal_changed(deal)
    return deal


@transaction.atomic
def deal_update(*, deal: Deal, actor: Actor, **fields: Any) -> Deal:
    """Change a deal's properties. Stage and status have their own services (they leave history)."""
    _check_field_names(fields, DEAL_FIELDS)
    deal = _locked(deal)
    permissions.ensure_can_change_deal(actor, deal)
    participants = fields.pop("participants", None)
    contact_before = deal.contact_id
    changed = _apply_deal_fields(deal, fields)
    if changed:
        deal.save(update_fields=[*changed, "updated_at"])
        _deal_changed(deal, contact_before)
    if participants is not None:
        deal.participants.set(participants)
    return deal


@transaction.atomic
def deal_move(
    *,
    deal: Deal,
    to_stage: Stage,
    actor: Actor,
    after: Deal | None = None,
    before: Deal | None = None,
) -> Deal:
    """Move a deal to `to_stage`, between `after` (the card above it) and `before` (the card
    below it) when given. A stage change is recorded and restarts the rotting clock; a move
    inside the same stage only reorders. Moving to where it already is changes nothing."""
    deal = _locked(deal)
    permissions.ensure_can_change_deal(actor, deal)
    if to_stage.pipeline_id != deal.pipeline_id:
        raise ValidationError({"stage": [f"Stage {to_stage.name!r} is not in the deal's pipeline."]})
    if deal.status != DealStatus.OPEN:
        raise Conflict(f"The deal is {deal.status}; reopen it before moving it.", code="closed")
    update_fields = ["updated_at"]
    if deal.stage_id != to_stage.pk:
        StageChange.objects.create(
            deal=deal,
            from_stage_id=deal.stage_id,
            to_stage=to_stage,
            from_status=DealStatus.OPEN,
            to_status=DealStatus.OPEN,
            actor=actor,
        )
        deal.stage = to_stage
        deal.stage_entered_at = timezone.now()
        update_fields += ["stage", "stage_entered_at"]
    position = _position_between(deal, to_stage, after=after, before=before)
    if position is not None and position != deal.position:
        deal.position = position
        update_fields.append("position")
    if len(update_fields) > 1:
        deal.save(update_fields=update_fields)
    if "stage" in update_fields:
        _deal_changed(deal)
    return deal


@transaction.atomic
def deal_mark_won(*, deal: Deal, actor: Actor) -> Deal:
    """Win a deal: it leaves the board, and its contact becomes a customer."""
    deal = _close(deal, actor=actor, status=DealStatus.WON, reason="")
    if deal.contact_id is not None:
        contact = Contact.objects.get(pk=deal.contact_id)
        if contact.lifecycle_stage != LifecycleStage.CUSTOMER:
            _set_lifecycle(contact, LifecycleStage.CUSTOMER)
    return deal


@transaction.atomic
def deal_mark_lost(*, deal: Deal, actor: Actor, reason: str, note: str = "") -> Deal:
    """Lose a deal for one of the configured reasons, with an optional note (required when the
    reason says so, as "Other" does: a bare "Other" tells the team nothing). It leaves the board
    but stays findable."""
    reason = _storable((reason or "").strip(), field="lost_reason")
    note = _storable((note or "").strip(), field="lost_note")
    errors: dict[str, list[str]] = {}
    configured = LostReason.objects.filter(name=reason, active=True).first() if reason else None
    if not reason:
        errors["lost_reason"] = ["Pick the reason the deal was lost."]
    elif configured is None:
        errors["lost_reason"] = [f"{reason!r} is not one of the configured lost reasons."]
    if len(note) > MAX_LOST_NOTE:
        errors["lost_note"] = [f"At most {MAX_LOST_NOTE} characters."]
    elif not note and configured is not None and configured.note_required:
        errors["lost_note"] = [f"Say what happened: the reason {reason!r} needs a note."]
    if errors:
        raise ValidationError(errors)
    return _close(deal, actor=actor, status=DealStatus.LOST, reason=reason, note=note)


@transaction.atomic
def deal_reopen(*, deal: Deal, actor: Actor) -> Deal:
    """Put a won or lost deal back on the board, in the stage it left from."""
    deal = _locked(deal)
    permissions.ensure_can_change_deal(actor, deal)
    if deal.status == DealStatus.OPEN:
        return deal
    StageChange.objects.create(
        deal=deal,
        from_stage_id=deal.stage_id,
        to_stage_id=deal.stage_id,
        from_status=deal.status,
        to_status=DealStatus.OPEN,
        actor=actor,
    )
    deal.status = DealStatus.OPEN
    deal.lost_reason = deal.lost_note = ""
    deal.closed_at = None
    deal.stage_entered_at = timezone.now()
    deal.save(
        update_fields=["status", "lost_reason", "lost_note", "closed_at", "stage_entered_at", "updated_at"]
    )
    _deal_changed(deal)
    return deal


def _close(deal: Deal, *, actor: Actor, status: str, reason: str, note: str = "") -> Deal:
    deal = _locked(deal)
    permissions.ensure_can_change_deal(actor, deal)
    if deal.status == status and deal.lost_reason == reason:
        if deal.lost_note != note:  # the same loss, explained better: no second history row
            deal.lost_note = note
            deal.save(update_fields=["lost_note", "updated_at"])
        return deal
    StageChange.objects.create(
        deal=deal,
        from_stage_id=deal.stage_id,
        to_stage_id=deal.stage_id,
        from_status=deal.status,
        to_status=status,
        actor=actor,
    )
    deal.status = status
    deal.lost_reason = reason
    deal.lost_note = note
    deal.closed_at = timezone.now()
    deal.save(update_fields=["status", "lost_reason", "lost_note", "closed_at", "updated_at"])
    _deal_changed(deal)
    return deal


def _deal_changed(deal: Deal, *contact_ids: int | None) -> None:
    """Segments count a contact's deals: its (old and new) primary contact may move."""
    contact_changes.contacts_changed(contact_ids=[deal.contact_id, *contact_ids])


def _set_lifecycle(contact: Contact, stage: str) -> None:
    # The system moves the lifecycle as a consequence of the rep's deal (actor=None): a rep may
    # open a deal with a contact someone else owns, and the contact's history still shows it.
    contact_services.contact_update(contact=contact, actor=None, lifecycle_stage=stage)


def _position_between(deal: Deal, stage: Stage, *, after: Deal | None, before: Deal | None) -> float | None:
    """A position between the neighbours' (floats: no renumbering on an ordinary drop)."""
    above = after.position if after is not None and after.stage_id == stage.pk else None
    below = before.position if before is not None and before.stage_id == stage.pk else None
    if above is not None and below is not None:
        if above >= below:  # neighbours tie (rows made outside deal_create): spread the column
            _renumber(stage)
            above = Deal.objects.get(pk=after.pk).position
            below = Deal.objects.get(pk=before.pk).position
        return (above + below) / 2
    if above is not None:
        return above + 1
    if below is not None:
        return below - 1
    return None


def _renumber(stage: Stage) -> None:
    from pipeline.selectors import board_order

    deals = list(
        Deal.objects.filter(stage=stage, status=DealStatus.OPEN)
        .order_by(*board_order())
        .only("pk", "position")
    )
    for index, row in enumerate(deals):
        row.position = float(index)
    Deal.objects.bulk_update(deals, ["position"], batch_size=1000)


def lock_deals(deals: QuerySet[Deal]) -> QuerySet[Deal]:
    """The one way the app locks deal rows (inside a transaction). Only the deals' rows: FOR
    UPDATE over a join would lock their stage too, so every write to any deal of a column queued
    behind the others, and a stage reorder could deadlock with them. In pk order, as every
    multi-deal write: a rep's concurrent edit waits, no deadlock."""
    return lock_rows(deals, of_self=True)


def _locked(deal: Deal) -> Deal:
    return lock_deals(Deal.objects.select_related("stage").filter(pk=deal.pk)).get()


def _check_field_names(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})


def _apply_deal_fields(deal: Deal, fields: dict[str, Any]) -> list[str]:
    """Validate `fields` onto `deal`; return the names that changed."""
    errors: dict[str, list[str]] = {}
    changed = []
    for name, value in fields.items():
        try:
            value = _clean_deal_value(name, value)
        except ValidationError as exc:
            errors[name] = exc.messages
            continue
        attname = Deal._meta.get_field(name).attname
        current = getattr(deal, attname)
        new = value.pk if hasattr(value, "pk") else value
        if current != new or deal.pk is None:
            setattr(deal, name, value)
            changed.append(name)
    if errors:
        raise ValidationError(errors)
    return changed


def _clean_deal_value(name: str, value: Any) -> Any:
    if name == "title":
        value = (value or "").strip()
        if not value:
            raise ValidationError("A deal needs a title.")
        return value[:200]
    if name == "amount":
        try:
            amount = Decimal(str(value if value not in (None, "") else "0"))
        except InvalidOperation:
            raise ValidationError("Enter an amount, like 1200 or 1200.50.") from None
        if amount < 0:
            raise ValidationError("The amount cannot be negative.")
        if amount >= Decimal("1e12"):
            raise ValidationError("The amount is too large.")
        return amount.quantize(Decimal("0.01"))
    if name == "currency":
        value = (value or "").strip().upper()
        if len(value) != 3 or not value.isalpha():
            raise ValidationError("Use a three-letter currency code, like USD or EUR.")
        return value
    if name == "expected_close_date":
        if value in (None, ""):
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValidationError("Enter a date as YYYY-MM-DD.") from None
    if name == "contact" and value is not None and not isinstance(value, Contact):
        raise ValidationError("Expected a contact.")
    if name == "company" and value is not None and not isinstance(value, Company):
        raise ValidationError("Expected a company.")
    return value


def _storable(value: str, *, field: str) -> str:
    try:
        return ensure_storable_text(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from None
