"""Writes to pipelines, their stages and the lost reasons (Settings → Pipelines, Admin only).

`actor` is the user making the change (checked against pipeline.permissions), or None for the
system itself, which skips the checks.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contacts.services import changes as contact_changes
from core.db import lock_rows
from core.errors import Conflict
from pipeline import permissions
from pipeline.models import Deal, LostReason, Pipeline, Stage
from pipeline.services.deals import Actor, _storable, lock_deals
from pipeline.services.defaults import DEFAULT_STAGES

# A stage older than ten years is not "rotting"; the bound also keeps the value in an int column.
MAX_ROTTING_DAYS = 3650


# --- pipelines, stages and lost reasons (Settings → Pipelines, Admin only)


@transaction.atomic
def pipeline_create(*, actor: Actor, name: str, stages: list[dict[str, Any]] | None = None) -> Pipeline:
    """A new pipeline, with the given stages ({name, probability, rotting_days}, in order) or the
    default set."""
    permissions.ensure_can_configure(actor)
    name = _clean_name(name, field="name")
    if Pipeline.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": [f"A pipeline named {name!r} exists already."]})
    if stages is None:
        stages = [{"name": n, "probability": p} for n, p in DEFAULT_STAGES]
    if not stages:
        raise ValidationError({"stages": ["A pipeline needs at least one stage."]})
    position = (Pipeline.objects.aggregate(m=Max("position"))["m"] or 0) + 1
    pipeline = Pipeline.objects.create(name=name, position=position)
    for index, values in enumerate(stages):
        stage = Stage(pipeline=pipeline, position=index)
        try:
            _apply_stage(
                stage,
                name=values.get("name"),
                probability=values.get("probability"),
                rotting_days=values.get("rotting_days"),
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.message_dict.items())
            raise ValidationError({"stages": [f"Stage {index + 1}: {problems}"]}) from None
        stage.save()  # one by one: the next stage's name is checked against this one
    return pipeline


@transaction.atomic
def pipeline_rename(*, actor: Actor, pipeline: Pipeline, name: str) -> Pipeline:
    permissions.ensure_can_configure(actor)
    name = _clean_name(name, field="name")
    if Pipeline.objects.filter(name__iexact=name).exclude(pk=pipeline.pk).exists():
        raise ValidationError({"name": [f"A pipeline named {name!r} exists already."]})
    pipeline.name = name
    pipeline.save(update_fields=["name"])
    return pipeline


@transaction.atomic
def pipeline_delete(*, actor: Actor, pipeline: Pipeline) -> None:
    """Delete a pipeline and its stages. One that holds deals (any status) stays: they would have
    nowhere to be. The last pipeline stays too, or no deal could be created any more."""
    permissions.ensure_can_configure(actor)
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    count = Deal.objects.filter(pipeline=pipeline).count()
    if count:
        raise Conflict(
            f"Pipeline {pipeline.name!r} holds {_deals(count)}; move or delete them before deleting it.",
            code="pipeline_has_deals",
            data={"deal_count": count},
        )
    if not Pipeline.objects.exclude(pk=pipeline.pk).exists():
        raise Conflict("The only pipeline cannot be deleted; create another one first.", code="last_pipeline")
    pipeline.delete()


@transaction.atomic
def stage_create(
    *, actor: Actor, pipeline: Pipeline, name: str, probability: int = 0, rotting_days: int | None = None
) -> Stage:
    """Add a stage at the end of the pipeline."""
    permissions.ensure_can_configure(actor)
    stage = Stage(pipeline=pipeline)
    _apply_stage(stage, name=name, probability=probability, rotting_days=rotting_days)
    stage.position = (pipeline.stages.aggregate(m=Max("position"))["m"] or 0) + 1
    stage.save()
    return stage


@transaction.atomic
def stage_update(
    *, actor: Actor, stage: Stage, name: str, probability: int, rotting_days: int | None
) -> Stage:
    permissions.ensure_can_configure(actor)
    _apply_stage(stage, name=name, probability=probability, rotting_days=rotting_days)
    stage.save(update_fields=["name", "probability", "rotting_days"])
    return stage


@transaction.atomic
def stage_reorder(*, actor: Actor, pipeline: Pipeline, stage_ids: list[int]) -> None:
    """Put the pipeline's stages in the order given (every stage of the pipeline, once)."""
    permissions.ensure_can_configure(actor)
    # NO KEY UPDATE: a position change leaves the key that deals and stage changes reference
    # alone, so the KEY SHARE a deal write's foreign-key check takes on its stage (at commit:
    # Django's constraints are deferred) neither waits for a reorder nor makes one wait.
    stages = {s.pk: s for s in lock_rows(pipeline.stages.all(), no_key=True)}
    if sorted(stage_ids) != sorted(stages):
        raise ValidationError({"stages": ["Give every stage of the pipeline exactly once."]})
    for index, pk in enumerate(stage_ids):
        stages[pk].position = index
    Stage.objects.bulk_update(stages.values(), ["position"])


@transaction.atomic
def stage_delete(*, actor: Actor, stage: Stage, move_deals_to: Stage | None = None) -> int:
    """Delete a stage. Its deals (any status) move to `move_deals_to`, another stage of the same
    pipeline; without one, a stage that holds deals stays. Returns how many deals moved.

    The move is an Admin restructuring the pipeline, not a rep's progress: it records no stage
    change (its "from" would be the deleted stage) and leaves each deal's rotting clock running."""
    permissions.ensure_can_configure(actor)
    stage = Stage.objects.select_for_update().get(pk=stage.pk)
    if move_deals_to is not None:
        if move_deals_to.pk == stage.pk:
            raise ValidationError({"move_deals_to": ["Pick another stage than the one being deleted."]})
        if move_deals_to.pipeline_id != stage.pipeline_id:
            raise ValidationError({"move_deals_to": [f"{move_deals_to.name!r} is in another pipeline."]})
        # NO KEY UPDATE: keeps the target from being deleted meanwhile, without blocking deal writes.
        Stage.objects.select_for_update(no_key=True).get(pk=move_deals_to.pk)
    deals = Deal.objects.filter(stage=stage)
    if move_deals_to is None and (count := deals.count()):
        raise Conflict(
            f"Stage {stage.name!r} holds {_deals(count)}; move them to another stage before deleting it.",
            code="stage_has_deals",
            data={"deal_count": count},
        )
    if stage.pipeline.stages.count() == 1:
        raise Conflict("A pipeline needs at least one stage.", code="last_stage")
    moved: list[tuple[int, int | None]] = []
    if move_deals_to is not None:
        moved = list(lock_deals(deals).values_list("pk", "contact_id"))
        Deal.objects.filter(pk__in=[pk for pk, _ in moved]).update(
            stage=move_deals_to, updated_at=timezone.now()
        )
    stage.delete()
    # Segments may count deals by stage.
    contact_changes.contacts_changed(contact_ids=[contact_id for _, contact_id in moved])
    return len(moved)


def _deals(count: int) -> str:
    return f"{count} deal{'s' if count != 1 else ''}"


def _apply_stage(stage: Stage, *, name: str, probability: Any, rotting_days: Any) -> None:
    errors: dict[str, list[str]] = {}
    try:
        stage.name = _clean_name(name, field="name")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    else:
        clash = Stage.objects.filter(pipeline_id=stage.pipeline_id, name__iexact=stage.name).exclude(
            pk=stage.pk
        )
        if clash.exists():
            errors["name"] = [f"The pipeline has a stage named {stage.name!r} already."]
    try:
        stage.probability = int(probability if probability not in (None, "") else 0)
        if not 0 <= stage.probability <= 100:
            raise ValueError
    except (TypeError, ValueError):
        errors["probability"] = ["A probability is a whole number from 0 to 100."]
    try:
        # Empty or 0 turns rotting off (as Odoo's "days to rot").
        days = int(rotting_days) if rotting_days not in (None, "") else None
        if days is not None and not 0 <= days <= MAX_ROTTING_DAYS:
            raise ValueError
        stage.rotting_days = days or None
    except (TypeError, ValueError):
        errors["rotting_days"] = [
            f"Rotting days is a whole number of days up to {MAX_ROTTING_DAYS}, or empty for never."
        ]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def lost_reason_create(*, actor: Actor, name: str, note_required: bool = False) -> LostReason:
    permissions.ensure_can_configure(actor)
    name = _clean_name(name, field="name")
    if LostReason.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": [f"The lost reason {name!r} exists already."]})
    position = (LostReason.objects.aggregate(m=Max("position"))["m"] or 0) + 1
    return LostReason.objects.create(name=name, position=position, note_required=note_required)


@transaction.atomic
def lost_reason_update(
    *, actor: Actor, reason: LostReason, name: str, active: bool, note_required: bool | None = None
) -> LostReason:
    """Rename or retire a reason, or say whether it needs a note (None: as it is). Deals keep the
    name they were lost with (a copy, not a key)."""
    permissions.ensure_can_configure(actor)
    name = _clean_name(name, field="name")
    if LostReason.objects.filter(name__iexact=name).exclude(pk=reason.pk).exists():
        raise ValidationError({"name": [f"The lost reason {name!r} exists already."]})
    reason.name = name
    reason.active = active
    if note_required is not None:
        reason.note_required = note_required
    reason.save(update_fields=["name", "active", "note_required"])
    return reason


@transaction.atomic
def lost_reason_delete(*, actor: Actor, reason: LostReason) -> None:
    permissions.ensure_can_configure(actor)
    reason.delete()


def _clean_name(value: Any, *, field: str, max_length: int = 100) -> str:
    value = _storable(str(value or "").strip(), field=field)
    if not value:
        raise ValidationError({field: ["This cannot be empty."]})
    if len(value) > max_length:
        raise ValidationError({field: [f"At most {max_length} characters."]})
    return value
