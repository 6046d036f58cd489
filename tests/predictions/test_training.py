import datetime as dt

import pytest

from predictions import services
from predictions.models import Algorithm, Goal, ModelStatus, Prediction, PredictionModel, Verdict
from predictions.services import training

from .helpers import GOAL, history

pytestmark = pytest.mark.django_db

# A planted signal this strong gives a holdout AUC of about 0.85 (pricing viewers order ~10x as
# often); below 0.75 the features or the holdout are broken.
SIGNAL_AUC = 0.75


def _model(**fields) -> PredictionModel:
    fields = {"name": "Buyers", "goal": Goal.EVENT, "event_name": GOAL, "horizon_days": 30, **fields}
    return services.prediction_model_create(actor=None, **fields)


def test_a_known_signal_is_learned_published_and_explained():
    # given 600 people over 150 days, half of them pricing-page viewers who order far more often
    ids = history(people=600)
    model = _model()
    # when the model trains
    model = services.prediction_model_train(model=model)
    # then it is published with a good holdout AUC, its counts and a verdict
    assert model.status == ModelStatus.PUBLISHED, model.status_reason
    chosen = model.metrics["chosen"]
    assert chosen["auc"] > SIGNAL_AUC
    assert chosen["lift_top_decile"] > 1.5
    assert 0 < chosen["log_loss"] < 0.7
    assert model.metrics["train_positives"] >= 100 and model.metrics["train_negatives"] >= 100
    assert model.verdict in (Verdict.GOOD, Verdict.FAIR)
    assert set(model.metrics["candidates"]) == {Algorithm.LOGISTIC, Algorithm.BOOSTING}
    assert model.algorithm in (Algorithm.LOGISTIC, Algorithm.BOOSTING)
    # and every contact is scored, with a percentile and explanations ordered by magnitude
    predictions = {p.contact_id: p for p in Prediction.objects.filter(model=model)}
    assert set(predictions) == set(ids)
    top = max(predictions.values(), key=lambda p: p.probability)
    assert top.percentile >= 99
    assert top.explanation, "the most likely buyer has reasons"
    sizes = [abs(e["contribution"]) for e in top.explanation]
    assert sizes == sorted(sizes, reverse=True)
    assert any("/pricing" in e["feature"] for e in top.explanation)


def test_no_signal_reports_poor():
    # given people whose orders have nothing to do with what they browse
    history(people=600, signal=False, seed=2)
    # when a model trains on them
    model = services.prediction_model_train(model=_model())
    # then it says the model is poor (or refuses): an AUC near a coin toss
    assert model.status in (ModelStatus.PUBLISHED, ModelStatus.REFUSED)
    if model.status == ModelStatus.PUBLISHED:
        assert model.verdict == Verdict.POOR
        assert model.metrics["chosen"]["auc"] < training.FAIR_AUC


def test_too_few_positives_refuses_and_names_the_minimum():
    # given 60 people: too few orders for the default minimum of 100 positives
    history(people=60, seed=3)
    model = _model()
    # when the model trains
    model = services.prediction_model_train(model=model)
    # then it refuses, says which minimum is unmet, and publishes nothing
    assert model.status == ModelStatus.REFUSED
    assert "positives" in model.status_reason and "at least 100 needed" in model.status_reason
    assert "negatives" not in model.status_reason
    assert not Prediction.objects.filter(model=model).exists()
    assert model.artifact is None


def test_lower_minimums_are_honoured():
    history(people=60, seed=3)
    model = services.prediction_model_train(model=_model(min_positives=5, min_negatives=5))
    assert model.status == ModelStatus.PUBLISHED, model.status_reason


def test_holdout_starts_after_every_training_label_window():
    # the training snapshots' label windows [as_of, as_of + N) all end by the holdout's start
    model = PredictionModel(horizon_days=30)
    today = dt.date(2026, 12, 1)
    test_as_of, train = training.snapshot_dates(model=model, today=today)
    assert test_as_of + dt.timedelta(days=30) == today
    assert all(d + dt.timedelta(days=30) <= test_as_of for d in train)


def test_a_tampered_estimator_is_not_loaded():
    history(people=60, seed=3)
    model = services.prediction_model_train(model=_model(min_positives=5, min_negatives=5))
    model.artifact = bytes(model.artifact) + b"x"
    with pytest.raises(training.ModelIntegrityError):
        training.model_load(model)


def test_boosting_attributions_skip_only_rows_whose_tree_paths_cannot_change():
    # given a calibrated boosting model on data where feature 0 carries the signal
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from predictions.services import scoring

    rng = np.random.default_rng(0)
    X = rng.poisson(0.4, size=(3000, 6)).astype(float)
    y = (rng.random(3000) < 0.05 + 0.4 * (X[:, 0] > 0)).astype(int)
    estimator = training.fit_calibrated(HistGradientBoostingClassifier(max_iter=30, random_state=0), X, y)
    model = PredictionModel(algorithm=Algorithm.BOOSTING, feature_spec={"means": X.mean(axis=0).tolist()})
    # when the attributions are computed the quick way
    quick = scoring.contributions(model=model, estimator=estimator, X=X)
    # then they equal re-predicting every row with each feature at its mean
    base = estimator.predict_proba(X)[:, 1]
    for j in range(X.shape[1]):
        work = X.copy()
        work[:, j] = X[:, j].mean()
        assert np.allclose(quick[:, j], base - estimator.predict_proba(work)[:, 1])
    assert np.abs(quick[:, 0]).mean() > np.abs(quick[:, 1:]).mean()
