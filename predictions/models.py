"""Predictive scores: a model per goal the workspace picks (a deal won, or a track event, within
the next N days), its training outcome and fitted estimator, and one prediction per contact.

How training and scoring work: `predictions/services/training.py` and `scoring.py`; the features:
`predictions/services/features.py`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from contacts.models import Contact
from pipeline.models import Pipeline


class Goal(models.TextChoices):
    DEAL_WON = "deal_won", "A deal is won"
    EVENT = "event", "A track event happens"


class ModelStatus(models.TextChoices):
    NEW = "new", "Not trained yet"
    TRAINING = "training", "Training"
    PUBLISHED = "published", "Published"
    REFUSED = "refused", "Refused (not enough history)"
    FAILED = "failed", "Failed"


class Verdict(models.TextChoices):
    GOOD = "good", "Good"
    FAIR = "fair", "Fair"
    POOR = "poor", "Poor"


class Algorithm(models.TextChoices):
    LOGISTIC = "logistic", "Logistic regression"
    BOOSTING = "boosting", "Gradient boosting"


class PredictionModel(models.Model):
    name = models.CharField(max_length=200)
    goal = models.CharField(max_length=10, choices=Goal.choices, default=Goal.DEAL_WON)
    # Goal EVENT: the track event's name (DailyActivity's event key), e.g. "Order Completed".
    event_name = models.CharField(max_length=200, blank=True)
    # Goal DEAL_WON: deals of this pipeline only; empty: any pipeline.
    pipeline = models.ForeignKey(Pipeline, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    horizon_days = models.PositiveIntegerField(default=30)
    # Segment's Predictions need 100 of each; fewer and the model is not published.
    min_positives = models.PositiveIntegerField(default=100)
    min_negatives = models.PositiveIntegerField(default=100)

    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.NEW)
    training_started_at = models.DateTimeField(null=True, blank=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    # Why the last training did not publish (refused or failed); empty when it did.
    status_reason = models.TextField(blank=True)
    algorithm = models.CharField(max_length=10, choices=Algorithm.choices, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    # Holdout metrics of both candidates, counts, cut-off dates, timings (training.py writes it).
    metrics = models.JSONField(default=dict, blank=True)
    # The feature names and the choices behind them (top event keys, sources...), fixed at training.
    feature_spec = models.JSONField(default=dict, blank=True)
    # The fitted estimator, joblib bytes written only by training.py, with an HMAC (keyed by
    # SECRET_KEY) checked before loading: see training.model_load for why this is safe.
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_hmac = models.CharField(max_length=64, blank=True, editable=False)
    # 1,001 quantiles of the last full scoring's probabilities: a contact scored later (hourly or
    # realtime) gets its percentile against the same distribution.
    quantiles = models.JSONField(default=list, blank=True)
    typical_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    typical_value_basis = models.CharField(max_length=300, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    scored_count = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(horizon_days__gte=1, horizon_days__lte=365), name="prediction_horizon_range"
            ),
            models.CheckConstraint(
                condition=~Q(goal=Goal.EVENT) | ~Q(event_name=""), name="prediction_event_goal_named"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("predictions:detail", args=[self.pk])

    @property
    def goal_label(self) -> str:
        if self.goal == Goal.EVENT:
            return f"“{self.event_name}” within {self.horizon_days} days"
        where = f" in {self.pipeline.name}" if self.pipeline_id and self.pipeline else ""
        return f"a deal won{where} within {self.horizon_days} days"


class Prediction(models.Model):
    """A contact's score under one model. Deleted with the contact (erasure deletes contacts)."""

    model = models.ForeignKey(PredictionModel, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField()
    percentile = models.FloatField()
    expected_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # The top contributing features: [{"feature", "label", "value", "contribution"}], largest first.
    explanation = models.JSONField(default=list)
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "contact"], name="prediction_model_contact")]
        indexes = [models.Index(fields=["model", "-probability"], name="prediction_model_probability")]

    def __str__(self) -> str:
        return f"{self.model_id}/{self.contact_id}: {self.probability:.3f}"
