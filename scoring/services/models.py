"""Score models: create, update, delete. Saving a model queues its full recompute on commit."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core.errors import Conflict, DomainError
from identity import services as identity_services
from scoring import definition
from scoring.models import Score, ScoreModel
from scoring.permissions import ensure_can_manage
from scoring.services.compute import lock_model
from scoring.tasks import score_model_recompute as score_model_recompute_task

FIELDS = (
    "name",
    "description",
    "enabled",
    "fit_rules",
    "engagement_rules",
    "fit_cap",
    "engagement_cap",
    "total_cap",
)


def _cap(value: Any, name: str, errors: dict, *, required: bool = False) -> int | None:
    if value in (None, ""):
        if required:
            errors[name] = ["Required: the highest score, 1 or more."]
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        errors[name] = [
            "A whole number from 1 to 1,000,000 (empty: no cap)."
            if not required
            else "A whole number from 1 to 1,000,000."
        ]
        return None
    return value


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["Give the model a name, e.g. “Enterprise plan”."]
    elif len(name.strip()) > 100 or "\x00" in name:
        errors["name"] = ["At most 100 characters."]
    description = values.get("description") or ""
    if not isinstance(description, str) or len(description) > 500 or "\x00" in description:
        errors["description"] = ["At most 500 characters."]
        description = ""
    caps = {
        "fit_cap": _cap(values.get("fit_cap"), "fit_cap", errors),
        "engagement_cap": _cap(values.get("engagement_cap"), "engagement_cap", errors),
        "total_cap": _cap(values.get("total_cap", 100), "total_cap", errors, required=True),
    }
    try:
        definition.parse(fit_rules=values.get("fit_rules"), engagement_rules=values.get("engagement_rules"))
    except DomainError as exc:
        errors.update(exc.fields)
    if errors:
        raise DomainError("The score model is not valid.", fields=errors)
    return {
        "name": name.strip(),
        "description": description.strip(),
        "enabled": bool(values.get("enabled", True)),
        "fit_rules": values.get("fit_rules") or [],
        "engagement_rules": values.get("engagement_rules") or [],
        **caps,
    }


def _queue_recompute(model_id: int) -> None:
    transaction.on_commit(lambda: score_model_recompute_task.delay(model_id))


def _ensure_unique(name: str, *, exclude: int | None = None) -> None:
    taken = ScoreModel.objects.filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise Conflict(
            "A score model with this name exists.", fields={"name": ["A score model with this name exists."]}
        )


@transaction.atomic
def score_model_create(*, actor: AbstractBaseUser | None, **values: Any) -> ScoreModel:
    ensure_can_manage(actor)
    cleaned = _clean(values)
    _ensure_unique(cleaned["name"])
    model = ScoreModel.objects.create(**cleaned, created_by=actor if actor and actor.pk else None)
    _queue_recompute(model.pk)
    return model


@transaction.atomic
def score_model_update(*, actor: AbstractBaseUser | None, model: ScoreModel, **values: Any) -> ScoreModel:
    """Change a model (the fields given; the rest are kept) and recompute it on commit."""
    ensure_can_manage(actor)
    model = ScoreModel.objects.select_for_update().get(pk=model.pk)
    merged = {name: getattr(model, name) for name in FIELDS} | {
        k: v for k, v in values.items() if k in FIELDS
    }
    cleaned = _clean(merged)
    _ensure_unique(cleaned["name"], exclude=model.pk)
    for name, value in cleaned.items():
        setattr(model, name, value)
    model.save()
    _queue_recompute(model.pk)
    return model


@transaction.atomic
def score_model_delete(*, actor: AbstractBaseUser | None, model: ScoreModel) -> None:
    """Delete a model and its scores; contacts that had one are marked for segments."""
    ensure_can_manage(actor)
    # The model's lock first, as the realtime path takes it before it writes scores; contacts
    # are marked for segments after commit (compute._mark_after_commit says why).
    lock_model(model.pk)
    contact_ids = list(Score.objects.filter(model=model).values_list("contact_id", flat=True))
    ScoreModel.objects.filter(pk=model.pk).delete()
    if contact_ids:
        transaction.on_commit(
            lambda: identity_services.profile_updates_mark(contact_ids=contact_ids), robust=True
        )
