"""Reads of lead scores: models, a contact's scores with their explanation, scores of many
contacts (list columns, deal cards) and the contacts at or over a score (segments, hot deals)."""

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, FilteredRelation, Q, QuerySet
from django.utils import timezone

from contacts.selectors import ListColumn
from core.errors import NotFound
from identity.selectors import Signal
from pipeline.models import Deal
from scoring.models import Score, ScoreDay, ScoreModel
from scoring.permissions import ensure_can_read

WEEK = dt.timedelta(days=7)


def score_model_list(*, user: AbstractBaseUser | None) -> QuerySet[ScoreModel]:
    ensure_can_read(user)
    return ScoreModel.objects.order_by("name", "pk")


def score_model_get(*, user: AbstractBaseUser | None, model_id: int) -> ScoreModel:
    ensure_can_read(user)
    model = ScoreModel.objects.filter(pk=model_id).first()
    if model is None:
        raise NotFound("No such score model.")
    return model


def score_model_choices() -> list[tuple[int, str]]:
    """(id, name) of every model, for pickers in other apps (hot-deal rules, segment builder)."""
    return list(ScoreModel.objects.order_by("name", "pk").values_list("pk", "name"))


@dataclass
class ContactScore:
    model: ScoreModel
    score: int
    fit: int
    engagement: int
    explanation: list[dict]
    updated_at: dt.datetime | None
    change_week: int


def _week_ago(*, model_ids: Collection[int], contact_ids: Collection[int], now: dt.datetime) -> dict:
    """(model id, contact id) -> the score at the end of the newest recorded day a week ago or
    earlier (absent: 0, no score then)."""
    cutoff = (now.astimezone(dt.UTC) - WEEK).date()
    rows = (
        ScoreDay.objects.filter(model_id__in=model_ids, contact_id__in=contact_ids, day__lte=cutoff)
        .order_by("model_id", "contact_id", "-day")
        .distinct("model_id", "contact_id")
        .values_list("model_id", "contact_id", "score")
    )
    return {(m, c): s for m, c, s in rows}


def contact_scores(
    *, user: AbstractBaseUser | None, contact_id: int, now: dt.datetime | None = None
) -> list[ContactScore]:
    """The contact's score in every enabled model (0 with no lines where no rule applies)."""
    ensure_can_read(user)
    now = now or timezone.now()
    models = list(ScoreModel.objects.filter(enabled=True).order_by("name", "pk"))
    rows = {s.model_id: s for s in Score.objects.filter(contact_id=contact_id, model__in=models)}
    before = _week_ago(model_ids=[m.pk for m in models], contact_ids=[contact_id], now=now)
    out = []
    for model in models:
        row = rows.get(model.pk)
        score = row.score if row else 0
        out.append(
            ContactScore(
                model=model,
                score=score,
                fit=row.fit if row else 0,
                engagement=row.engagement if row else 0,
                explanation=row.explanation if row else [],
                updated_at=row.updated_at if row else None,
                change_week=score - before.get((model.pk, contact_id), 0),
            )
        )
    return out


def scores_of_contacts(
    *, contact_ids: Collection[int], model_id: int | None = None, now: dt.datetime | None = None
) -> dict[int, list[tuple[ScoreModel, int, int]]]:
    """contact id -> [(model, score, change this week)] for enabled models (one model when
    `model_id` is given), highest score first; contacts with no score are left out. Three
    queries whatever the number of contacts. Scores of 0 are left out too."""
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    models = ScoreModel.objects.filter(enabled=True)
    if model_id is not None:
        models = models.filter(pk=model_id)
    models_by_id = {m.pk: m for m in models}
    if not models_by_id:
        return {}
    rows = (
        Score.objects.filter(contact_id__in=ids, model_id__in=models_by_id)
        .exclude(score=0)
        .values_list("contact_id", "model_id", "score")
    )
    before = _week_ago(model_ids=list(models_by_id), contact_ids=ids, now=now)
    out: dict[int, list[tuple[ScoreModel, int, int]]] = {}
    for contact_id, model_id_, score in rows:
        change = score - before.get((model_id_, contact_id), 0)
        out.setdefault(contact_id, []).append((models_by_id[model_id_], score, change))
    for items in out.values():
        items.sort(key=lambda item: (-item[1], item[0].name))
    return out


def contacts_scoring(*, model_id: int, op: str, value: int, contact_ids: Collection[int] | None = None):
    """Contact ids whose stored score in the enabled model compares to `value` by `op` (gte, gt,
    lte, lt): a values queryset, for a subquery (served by the (model, score) index). Contacts
    with no row (a score of 0) are not in it: callers that count them say so."""
    if op not in ("gte", "gt", "lte", "lt"):
        raise ValueError(op)
    rows = Score.objects.filter(model_id=model_id, model__enabled=True, **{f"score__{op}": value})
    if contact_ids is not None:
        rows = rows.filter(contact_id__in=list(contact_ids))
    return rows.values("contact_id")


# --- the contact list's score columns (settings.CONTACT_LIST_COLUMN_HOOKS)


def _score_column(model: ScoreModel) -> ListColumn:
    key = f"score_{model.pk}"
    join = f"_score_join_{model.pk}"

    def annotate(qs):
        if key in qs.query.annotations:
            return qs
        # An inner join (the filter on the relation makes it one), so that "sorted by score" walks
        # the (model, score, contact) index and stops after a page, rather than sorting every
        # contact. Every live contact has a row (scores_compute); one created a moment ago shows
        # here once the realtime drain has scored it.
        relation = FilteredRelation("lead_scores", condition=Q(lead_scores__model_id=model.pk))
        return (
            qs.annotate(**{join: relation})
            .filter(**{f"{join}__model_id": model.pk})
            .annotate(**{key: F(f"{join}__score")})
        )

    return ListColumn(
        key=key,
        label=f"{model.name} score",
        annotate=annotate,
        sort=F(key),  # NOT NULL: a column of the inner-joined row
        render=str,
        filter_field=lambda: forms.IntegerField(
            required=False, min_value=0, label=f"{model.name} score at least"
        ),
        filter=lambda qs, value: qs.filter(**{f"{key}__gte": value}) if value is not None else qs,
    )


def contact_list_columns() -> list[ListColumn]:
    """The CONTACT_LIST_COLUMN_HOOKS provider: one sortable, filterable column per enabled model
    (the score, 0 where no rule applies)."""
    return [_score_column(m) for m in ScoreModel.objects.filter(enabled=True).order_by("name", "pk")]


# --- deal cards (settings.DEAL_SIGNAL_HOOKS, called by identity.selectors.deal_signals)


def deal_signals(*, deal_ids: Collection[int], now: dt.datetime | None = None) -> dict[int, list[Signal]]:
    """Each deal's primary contact's best lead score and its change this week, as a signal on the
    card: "Enterprise 72 (+12 this week)"; the other models' scores in its title. Deals without a
    primary contact, or whose contact has no score, get nothing. Four queries."""
    primary = dict(
        Deal.objects.filter(pk__in=list(deal_ids), contact__isnull=False).values_list("pk", "contact_id")
    )
    scores = scores_of_contacts(contact_ids=primary.values(), now=now)
    out: dict[int, list[Signal]] = {}
    for deal_id, contact_id in primary.items():
        items = scores.get(contact_id)
        if not items:
            continue
        model, score, change = items[0]
        label = f"{model.name} {score}" + (f" ({change:+d} this week)" if change else "")
        title = "Lead scores of the primary contact: " + ", ".join(
            f"{m.name} {s} ({c:+d} this week)" for m, s, c in items
        )
        out[deal_id] = [Signal(kind="score", label=label, title=title)]
    return out
