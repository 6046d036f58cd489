"""Scoring contacts with a published model: probability, percentile, expected value and the top
contributing features for each person.

Explanations (per contact, the TOP_FEATURES largest by magnitude):
- logistic regression: coefficient x the contact's standardised (log1p) value, in log-odds: the
  model's own decomposition of its score (the sigmoid calibration on top is monotone, so the order
  and the signs are those of the calibrated probability).
- gradient boosting: for each feature, the probability minus the probability with that feature
  replaced by its training mean, in probability points ("how much this value moved the score
  from an average value"). A local, model-agnostic attribution from scikit-learn's predict alone;
  unlike SHAP the parts need not add up to the score (interactions are counted in each part).

Percentile: the share of the model's scored contacts with a lower probability, read from 1,001
quantiles of the last full scoring, so hourly and realtime scores are on the same scale.
"""

import datetime as dt
from decimal import Decimal

import numpy as np
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from threadpoolctl import threadpool_limits

from contacts.models import Contact

from ..models import Algorithm, ModelStatus, Prediction, PredictionModel
from ..tasks import predictions_score_contacts as predictions_score_contacts_task
from .features import FeatureContext, features_build
from .training import base_estimator, model_load, population

TOP_FEATURES = 5
QUANTILES = 1001
WRITE_BATCH = 5_000


class FeaturesChanged(Exception):
    """The feature sources no longer produce the columns the model was trained on: retrain."""


def _split_thresholds(boosting, n_features: int) -> list[np.ndarray] | None:
    """Per feature, the thresholds the fitted trees split it on (sorted), or None when this
    scikit-learn keeps its trees elsewhere (then every row is re-predicted)."""
    try:
        found: list[list[np.ndarray]] = [[] for _ in range(n_features)]
        for iteration in boosting._predictors:
            for tree in iteration:
                inner = tree.nodes[~tree.nodes["is_leaf"].astype(bool)]
                for j in np.unique(inner["feature_idx"]):
                    found[int(j)].append(inner["num_threshold"][inner["feature_idx"] == j])
    except (AttributeError, KeyError, ValueError, IndexError):
        return None
    return [np.unique(np.concatenate(parts)) if parts else np.zeros(0) for parts in found]


def contributions(*, model: PredictionModel, estimator, X: np.ndarray) -> np.ndarray:
    if model.algorithm == Algorithm.LOGISTIC:
        pipe = base_estimator(estimator)
        z = pipe[:-1].transform(X)
        return z * pipe[-1].coef_[0]
    means = np.asarray(model.feature_spec.get("means") or X.mean(axis=0))
    base = estimator.predict_proba(X)[:, 1]
    out = np.zeros_like(X, dtype=float)
    thresholds = _split_thresholds(base_estimator(estimator), X.shape[1])
    for j in range(X.shape[1]):
        if thresholds is None:
            rows = np.nonzero(X[:, j] != means[j])[0]
        else:
            # A row whose value and the mean fall between the same split thresholds takes the same
            # path through every tree: replacing the value changes nothing, so only the others are
            # re-predicted (exact, and most rows of a sparse count feature are skipped).
            cuts = thresholds[j]
            if not len(cuts):
                continue  # no tree splits on it
            side = np.searchsorted(cuts, X[:, j], side="left")
            rows = np.nonzero(side != np.searchsorted(cuts, means[j], side="left"))[0]
        if not len(rows):
            continue
        work = X[rows].astype(float, copy=True)
        work[:, j] = means[j]
        out[rows, j] = base[rows] - estimator.predict_proba(work)[:, 1]
    return out


def explanations(*, names: list[str], labels: list[str], X: np.ndarray, C: np.ndarray) -> list[list[dict]]:
    k = min(TOP_FEATURES, C.shape[1])
    if k == 0:
        return [[] for _ in range(len(X))]
    top = np.argsort(-np.abs(C), axis=1, kind="stable")[:, :k]
    out = []
    for row, cols in enumerate(top):
        out.append(
            [
                {
                    "feature": names[j],
                    "label": labels[j],
                    "value": round(float(X[row, j]), 4),
                    "contribution": round(float(C[row, j]), 4),
                }
                for j in cols
                if C[row, j] != 0
            ]
        )
    return out


def percentiles(quantiles: np.ndarray, p: np.ndarray) -> np.ndarray:
    if len(quantiles) < 2:
        return np.full(len(p), 50.0)
    return np.clip(100.0 * np.searchsorted(quantiles, p, side="left") / (len(quantiles) - 1), 0, 100)


def _copy(*, model: PredictionModel, ids, p, pct, expected, why, now) -> None:
    columns = "model_id, contact_id, probability, percentile, expected_value, explanation, scored_at"
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY predictions_prediction ({columns}) FROM STDIN") as copy,
    ):
        for i, pk in enumerate(ids):
            copy.write_row(
                (
                    model.pk,
                    int(pk),
                    float(p[i]),
                    round(float(pct[i]), 1),
                    expected[i],
                    orjson.dumps(why[i]).decode(),
                    now,
                )
            )


def predictions_score(*, model: PredictionModel, contact_ids: list[int] | None = None) -> int:
    """Score every contact of the population (contact_ids None) or those given; returns how many.
    A contact given that is no longer scored (merged away, anonymous) loses its prediction."""
    with threadpool_limits(settings.PREDICTION_THREADS):
        return _score(model=model, contact_ids=contact_ids)


def _score(*, model: PredictionModel, contact_ids: list[int] | None) -> int:
    if model.status != ModelStatus.PUBLISHED:
        return 0
    estimator = model_load(model)
    now = timezone.now()
    # Scores include today's activity: features use days before tomorrow.
    as_of = now.date() + dt.timedelta(days=1)
    if contact_ids is None:
        ids = population(as_of=as_of)
    else:
        ids = np.array(
            sorted(
                Contact.objects.filter(pk__in=contact_ids, merged_into=None, is_identified=True).values_list(
                    "pk", flat=True
                )
            ),
            dtype=np.int64,
        )
    spec = dict(model.feature_spec)
    names, labels = spec["names"], spec["labels"]
    n = 0
    p = pct = why = expected = None
    if len(ids):
        block = features_build(ctx=FeatureContext(as_of=as_of, contact_ids=ids, spec=spec, training=False))
        if block.names != names:
            raise FeaturesChanged(f"Model {model.pk} was trained on other features: retrain it.")
        X = block.values
        p = estimator.predict_proba(X)[:, 1]
        if contact_ids is None:
            model.quantiles = [float(q) for q in np.quantile(p, np.linspace(0, 1, QUANTILES))]
        pct = percentiles(np.asarray(model.quantiles or []), p)
        why = explanations(
            names=names, labels=labels, X=X, C=contributions(model=model, estimator=estimator, X=X)
        )
        value = model.typical_value
        expected = [
            Decimal(str(round(float(p[i]) * float(value), 2))) if value is not None else None
            for i in range(len(ids))
        ]
        n = len(ids)
    with transaction.atomic():
        if contact_ids is None:
            # The full run replaces the model's rows: DELETE + COPY in one transaction (readers
            # see the old scores until it commits), ~10x quicker than an upsert of 100k rows.
            Prediction.objects.filter(model=model).delete()
            if n:
                _copy(model=model, ids=ids, p=p, pct=pct, expected=expected, why=why, now=now)
            PredictionModel.objects.filter(pk=model.pk).update(
                quantiles=model.quantiles, scored_at=now, scored_count=n
            )
            model.scored_at, model.scored_count = now, n
        else:
            if n:
                Prediction.objects.bulk_create(
                    [
                        Prediction(
                            model=model,
                            contact_id=int(pk),
                            probability=float(p[i]),
                            percentile=round(float(pct[i]), 1),
                            expected_value=expected[i],
                            explanation=why[i],
                            scored_at=now,
                        )
                        for i, pk in enumerate(ids)
                    ],
                    update_conflicts=True,
                    unique_fields=["model", "contact"],
                    update_fields=["probability", "percentile", "expected_value", "explanation", "scored_at"],
                )
            # Contacts given that are no longer scored (merged away, anonymous) lose their row.
            Prediction.objects.filter(model=model, contact_id__in=contact_ids, scored_at__lt=now).delete()
    return n


def predictions_score_contacts(*, contact_ids: list[int]) -> int:
    """The realtime path: these contacts under every published model."""
    total = 0
    for model in PredictionModel.objects.filter(status=ModelStatus.PUBLISHED):
        total += predictions_score(model=model, contact_ids=contact_ids)
    return total


def predictions_realtime_queue(*, contact_ids: list[int]) -> None:
    """Called by segments' realtime drain inside its transaction: after commit, rescore these
    contacts (one task per drain batch of up to 500, so one EXISTS when no model is published)."""
    if not contact_ids or not PredictionModel.objects.filter(status=ModelStatus.PUBLISHED).exists():
        return
    ids = sorted(set(contact_ids))
    transaction.on_commit(lambda: predictions_score_contacts_task.delay(ids))
