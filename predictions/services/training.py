"""Training a predictive model on the workspace's own history, with a time-based holdout.

Snapshots. `today` is the day training runs; N the model's horizon. The holdout snapshot is
`test_as_of = today - N`: its labels (the goal within [test_as_of, today)) are fully observed.
Training snapshots are `test_as_of - k·N` for k = 1..TRAIN_SNAPSHOTS, so each one's label window
ends on or before `test_as_of`: nothing the training rows see (features or labels) is dated after
the holdout starts. Each snapshot's population is the identified, unmerged contacts created before
it; its features are built as of that day (features.py, which reads only earlier rows).

Candidates: logistic regression (log1p → standardised → L2 logistic, the explainable baseline) and
HistGradientBoostingClassifier, each fitted on 75% of the (sampled) training rows and calibrated
with CalibratedClassifierCV (sigmoid) on the other 25%. The one with the better holdout AUC is
published (logistic regression on a tie within 0.005: it explains itself exactly). The published
estimator is the one evaluated: its metrics are the metrics of what scores contacts.

Refusal: fewer training positives than `min_positives` or negatives than `min_negatives` (Segment
uses 100/100), or a holdout with no positive or no negative: nothing is fitted, published scores
are withdrawn and the reason names the unmet minimum.
"""

import datetime as dt
import hashlib
import hmac
import io
import time
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

import joblib
import numpy as np
import sklearn
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from contacts.models import Contact
from events.models import Event
from identity.models import ActivityKind, ContactEvent, DailyActivity
from pipeline.models import Deal, DealStatus

from ..models import Algorithm, Goal, ModelStatus, Prediction, PredictionModel, Verdict
from .features import FeatureContext, features_build

TRAIN_SNAPSHOTS = 3
# Rows fitted at most (a uniform sample keeps the base rate, so calibration stays honest): bounds
# training time at ~100k contacts x 3 snapshots (bench/predictions.py).
MAX_TRAINING_ROWS = 100_000
# Rows held out of each candidate's fit for its probability calibration.
CALIBRATION_SHARE = 0.25
SEED = 17
# Verdict thresholds on the holdout: AUC (0.5 = coin toss) and lift in the top decile.
GOOD_AUC, GOOD_LIFT = 0.75, 2.0
FAIR_AUC = 0.65
# Typical value: the median over this many days before training.
TYPICAL_VALUE_DAYS = 365
TYPICAL_EVENT_SAMPLE = 10_000
# A training run older than this is presumed dead (killed worker) and may be claimed again.
STALE_TRAINING = dt.timedelta(hours=1)


class ModelIntegrityError(Exception):
    """The stored estimator's bytes do not carry this app's signature: it is not loaded."""


@dataclass
class Snapshot:
    as_of: dt.date
    contact_ids: np.ndarray
    X: np.ndarray
    y: np.ndarray


# --- population and labels ---------------------------------------------------------------------


def population(*, as_of: dt.date) -> np.ndarray:
    at = dt.datetime.combine(as_of, dt.time.min, tzinfo=dt.UTC)
    ids = Contact.objects.filter(merged_into=None, is_identified=True, created_at__lt=at).order_by("pk")
    return np.fromiter(ids.values_list("pk", flat=True).iterator(chunk_size=50_000), dtype=np.int64)


def positives(*, model: PredictionModel, start: dt.date, end: dt.date) -> set[int]:
    """Contacts that reached the goal within [start, end)."""
    if model.goal == Goal.EVENT:
        return set(
            DailyActivity.objects.filter(
                kind=ActivityKind.EVENT, key=model.event_name, day__gte=start, day__lt=end
            ).values_list("contact_id", flat=True)
        )
    lo = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    hi = dt.datetime.combine(end, dt.time.min, tzinfo=dt.UTC)
    won = Deal.objects.filter(status=DealStatus.WON, closed_at__gte=lo, closed_at__lt=hi)
    if model.pipeline_id:
        won = won.filter(pipeline_id=model.pipeline_id)
    people = set(won.exclude(contact=None).values_list("contact_id", flat=True))
    people |= set(
        Deal.participants.through.objects.filter(deal__in=won.values("pk")).values_list(
            "contact_id", flat=True
        )
    )
    return people


def snapshot_build(
    *,
    model: PredictionModel,
    as_of: dt.date,
    spec: dict,
    training: bool,
    span: tuple[dt.date, dt.date] | None = None,
    shared: dict | None = None,
) -> Snapshot:
    """One snapshot's population, features and labels. `span` and `shared` let the snapshots of
    one run share what a source reads once (the rollup rows of the whole span)."""
    ids = population(as_of=as_of)
    ctx = FeatureContext(
        as_of=as_of,
        contact_ids=ids,
        spec=spec,
        training=training,
        span=span,
        shared=shared if shared is not None else {},
    )
    block = features_build(ctx=ctx)
    spec["names"], spec["labels"] = block.names, block.labels
    hit = positives(model=model, start=as_of, end=as_of + dt.timedelta(days=model.horizon_days))
    y = np.fromiter((int(pk) in hit for pk in ids), dtype=np.int8, count=len(ids))
    return Snapshot(as_of=as_of, contact_ids=ids, X=block.values, y=y)


def snapshot_dates(*, model: PredictionModel, today: dt.date) -> tuple[dt.date, list[dt.date]]:
    horizon = dt.timedelta(days=model.horizon_days)
    test_as_of = today - horizon
    return test_as_of, [test_as_of - horizon * k for k in range(1, TRAIN_SNAPSHOTS + 1)]


# --- metrics -----------------------------------------------------------------------------------


def lift_top_decile(y: np.ndarray, p: np.ndarray) -> float:
    """Positive rate among the 10% highest scores over the overall positive rate."""
    base = float(np.mean(y))
    if base == 0:
        return 0.0
    top = max(1, int(np.ceil(len(p) * 0.1)))
    order = np.argsort(-p, kind="stable")[:top]
    return float(np.mean(y[order])) / base


def quality(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "lift_top_decile": lift_top_decile(y, p),
        "positives": int(y.sum()),
        "negatives": int(len(y) - y.sum()),
    }


def verdict_of(*, auc: float, lift: float) -> str:
    if auc >= GOOD_AUC and lift >= GOOD_LIFT:
        return Verdict.GOOD
    if auc >= FAIR_AUC:
        return Verdict.FAIR
    return Verdict.POOR


# --- estimators and their storage --------------------------------------------------------------


def candidates() -> dict:
    logistic = make_pipeline(
        FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)
    )
    boosting = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=31, early_stopping=True, random_state=SEED
    )
    return {Algorithm.LOGISTIC: logistic, Algorithm.BOOSTING: boosting}


def fit_calibrated(estimator, X: np.ndarray, y: np.ndarray) -> CalibratedClassifierCV:
    """Fit on 75% of the rows, then a sigmoid calibration on the other 25% (stratified): one fit
    per candidate instead of cross-validation's four, which is what keeps 100k contacts in the
    minute (bench/predictions.py)."""
    fit_rows, calibration_rows = train_test_split(
        np.arange(len(y)), test_size=CALIBRATION_SHARE, stratify=y, random_state=SEED
    )
    estimator.fit(X[fit_rows], y[fit_rows])
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method="sigmoid")
    calibrated.fit(X[calibration_rows], y[calibration_rows])
    return calibrated


def base_estimator(calibrated: CalibratedClassifierCV):
    """The fitted model under the calibration (the logistic pipeline's coefficients explain)."""
    inner = calibrated.calibrated_classifiers_[0].estimator
    return inner.estimator if isinstance(inner, FrozenEstimator) else inner


def _signature(blob: bytes) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), b"predictions.model:" + blob, hashlib.sha256).hexdigest()


def model_dump(estimator) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    joblib.dump({"estimator": estimator, "sklearn": sklearn.__version__}, buffer, compress=3)
    blob = buffer.getvalue()
    return blob, _signature(blob)


def model_load(model: PredictionModel):
    """The fitted estimator. Loading joblib runs pickle, which executes code from the bytes, so the
    bytes must be ours: only `prediction_model_train` writes `artifact` (no form, API field or
    import sets it; the API never returns or accepts it), and it is loaded only if its HMAC under
    SECRET_KEY matches, so bytes put there by anything that lacks the key (a restored dump from
    elsewhere, a hand-edited row) are refused rather than run."""
    blob = bytes(model.artifact or b"")
    if not blob or not hmac.compare_digest(_signature(blob), model.artifact_hmac or ""):
        raise ModelIntegrityError(
            f"Model {model.pk}'s stored estimator is missing or not signed by this app."
        )
    stored = joblib.load(io.BytesIO(blob))
    return stored["estimator"]


# --- typical value -----------------------------------------------------------------------------


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if np.isfinite(number) else None
    return None


def typical_value(*, model: PredictionModel, now: dt.datetime) -> tuple[Decimal | None, str]:
    """Deal goal: the median amount of the deals won in the last 12 months (the pipeline's, when the
    model names one). Event goal: the median numeric `revenue` property of the goal event's last
    10,000 occurrences within 12 months. None when there is nothing to take a median of."""
    since = now - dt.timedelta(days=TYPICAL_VALUE_DAYS)
    if model.goal == Goal.DEAL_WON:
        won = Deal.objects.filter(status=DealStatus.WON, closed_at__gte=since)
        if model.pipeline_id:
            won = won.filter(pipeline_id=model.pipeline_id)
        amounts = [float(a) for a in won.values_list("amount", flat=True) if a is not None]
        basis = f"median amount of the {len(amounts)} deals won in the last 12 months"
    else:
        event_ids = (
            ContactEvent.objects.filter(type="track", name=model.event_name, timestamp__gte=since)
            .order_by("-timestamp")
            .values_list("event_id", flat=True)[:TYPICAL_EVENT_SAMPLE]
        )
        values = Event.objects.filter(pk__in=list(event_ids)).values_list("properties__revenue", flat=True)
        amounts = [n for n in (_number(v) for v in values) if n is not None]
        basis = f"median “revenue” of {len(amounts)} “{model.event_name}” events in the last 12 months"
    if not amounts:
        return None, basis.replace("median", "no value: no", 1)
    return Decimal(str(round(median(amounts), 2))), basis


# --- the run -----------------------------------------------------------------------------------


def training_claim(*, model_id: int) -> PredictionModel | None:
    """Mark the model as training, unless a live run has it already (two runs would race)."""
    now = timezone.now()
    claimed = (
        PredictionModel.objects.filter(pk=model_id)
        .filter(~Q(status=ModelStatus.TRAINING) | Q(training_started_at__lt=now - STALE_TRAINING))
        .update(status=ModelStatus.TRAINING, training_started_at=now)
    )
    return PredictionModel.objects.filter(pk=model_id).first() if claimed else None


def _refuse(model: PredictionModel, *, reason: str, metrics: dict) -> PredictionModel:
    with transaction.atomic():
        Prediction.objects.filter(model=model).delete()
        model.status = ModelStatus.REFUSED
        model.status_reason = reason
        model.metrics = metrics
        model.verdict = ""
        model.artifact, model.artifact_hmac, model.quantiles = None, "", []
        model.trained_at = timezone.now()
        model.scored_at, model.scored_count = None, 0
        model.save()
    return model


def _sample(X: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= limit:
        return X, y
    rows = np.random.default_rng(SEED).choice(len(y), size=limit, replace=False)
    rows.sort()
    return X[rows], y[rows]


def prediction_model_train(
    *, model: PredictionModel, today: dt.date | None = None, algorithm: str | None = None
) -> PredictionModel:
    """Build the snapshots, check the minimums, fit both candidates, keep the better one (or the
    `algorithm` named: benchmarks and tests) with its metrics, its signed estimator and its typical
    value, then score every contact (scoring.py)."""
    with threadpool_limits(settings.PREDICTION_THREADS):
        return _train(model=model, today=today, algorithm=algorithm)


def _train(*, model: PredictionModel, today: dt.date | None, algorithm: str | None) -> PredictionModel:
    from .scoring import predictions_score

    started = time.monotonic()
    today = today or timezone.now().date()
    test_as_of, train_dates = snapshot_dates(model=model, today=today)
    spec: dict = {"fit_before": test_as_of.isoformat()}
    timings: dict[str, float] = {}

    t = time.monotonic()
    run = {"span": (min(train_dates), test_as_of), "shared": {}}
    train = [snapshot_build(model=model, as_of=d, spec=spec, training=True, **run) for d in train_dates]
    train = [s for s in train if len(s.y)]
    holdout = snapshot_build(model=model, as_of=test_as_of, spec=spec, training=False, **run)
    timings["features_s"] = round(time.monotonic() - t, 3)
    X = np.vstack([s.X for s in train]) if train else np.zeros((0, len(spec["names"])))
    y = np.concatenate([s.y for s in train]) if train else np.zeros(0, dtype=np.int8)
    counts = {
        "train_positives": int(y.sum()),
        "train_negatives": int(len(y) - y.sum()),
        "holdout_positives": int(holdout.y.sum()),
        "holdout_negatives": int(len(holdout.y) - holdout.y.sum()),
        "train_snapshots": [s.as_of.isoformat() for s in train],
        "holdout_as_of": test_as_of.isoformat(),
        "features": len(spec["names"]),
    }
    unmet = []
    have_pos, have_neg = counts["train_positives"], counts["train_negatives"]
    if have_pos < model.min_positives:
        unmet.append(f"{have_pos} positives in the training history (at least {model.min_positives} needed)")
    if have_neg < model.min_negatives:
        unmet.append(f"{have_neg} negatives in the training history (at least {model.min_negatives} needed)")
    if not unmet and (counts["holdout_positives"] == 0 or counts["holdout_negatives"] == 0):
        unmet.append("the holdout period has no positive or no negative to evaluate on")
    if unmet:
        return _refuse(
            model, reason="Not published: " + "; ".join(unmet) + ".", metrics={**counts, "timings": timings}
        )

    X_fit, y_fit = _sample(X, y, MAX_TRAINING_ROWS)
    counts["fitted_rows"] = len(y_fit)
    results: dict[str, dict] = {}
    fitted = {}
    for name, candidate in candidates().items():
        t = time.monotonic()
        estimator = fit_calibrated(candidate, X_fit, y_fit)
        timings[f"fit_{name}_s"] = round(time.monotonic() - t, 3)
        p = estimator.predict_proba(holdout.X)[:, 1]
        results[name] = quality(holdout.y, p)
        fitted[name] = estimator
    best = Algorithm.LOGISTIC
    if results[Algorithm.BOOSTING]["auc"] > results[Algorithm.LOGISTIC]["auc"] + 0.005:
        best = Algorithm.BOOSTING
    if algorithm is not None:
        best = Algorithm(algorithm)
    chosen = results[best]
    blob, signature = model_dump(fitted[best])
    spec["means"] = [float(v) for v in X_fit.mean(axis=0)]
    value, basis = typical_value(model=model, now=timezone.now())
    timings["total_train_s"] = round(time.monotonic() - started, 3)
    with transaction.atomic():
        model.status = ModelStatus.PUBLISHED
        model.status_reason = ""
        model.algorithm = best
        model.verdict = verdict_of(auc=chosen["auc"], lift=chosen["lift_top_decile"])
        model.metrics = {**counts, "chosen": chosen, "candidates": results, "timings": timings}
        model.feature_spec = spec
        model.artifact, model.artifact_hmac = blob, signature
        model.typical_value, model.typical_value_basis = value, basis
        model.trained_at = timezone.now()
        model.save()
    predictions_score(model=model)
    return model
