"""Lead scores: score models (fit + engagement rules) and each contact's score in each model.

Scores are derived data: `services.score_model_recompute` rebuilds a model's scores from the CRM
tables and the identity projection (ContactEvent, DailyActivity). Rows point at contacts with
CASCADE, so erasing a person takes their scores with them.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from contacts.models import Contact


class ScoreModel(models.Model):
    """One way to score people (e.g. per product line). Rules are JSON lists checked by
    `scoring.definition` (the shapes are documented there); a contact's score is
    min(total_cap, fit + engagement), each part capped by its own cap, never below 0."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    fit_rules = models.JSONField(default=list, blank=True)
    engagement_rules = models.JSONField(default=list, blank=True)
    fit_cap = models.PositiveIntegerField(null=True, blank=True)
    engagement_cap = models.PositiveIntegerField(null=True, blank=True)
    total_cap = models.PositiveIntegerField(default=100)
    # The UTC day the stored scores were computed for: decay and time frames move scores once a
    # day (rollup days are UTC dates), so the beat refresh redoes a model only when this is behind.
    computed_on = models.DateField(null=True, blank=True)
    recomputed_at = models.DateTimeField(null=True, blank=True)
    recompute_ms = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(total_cap__gte=1), name="score_model_total_cap_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("scoring:edit", args=[self.pk])


class Score(models.Model):
    """A contact's score in one model, with the explanation that adds up to it. Every live contact
    has a row per enabled model (0, no lines, where no rule applies) once the drain or a
    recompute has seen it; the (model, score, contact) index serves "sorted by score"."""

    model = models.ForeignKey(ScoreModel, on_delete=models.CASCADE, related_name="scores")
    # A reverse name (unlike most rows here) so the contact list can join a model's scores with a
    # FilteredRelation: sorting by score is a join on the (model, contact) key, not a subquery
    # per contact. contacts never names it in code.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="lead_scores")
    score = models.IntegerField()
    fit = models.IntegerField()
    engagement = models.IntegerField()
    # [{"part", "rule", "label", "points", "raw", "occurrences"}]: the lines' points sum to `score`.
    explanation = models.JSONField(default=list)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "contact"], name="score_model_contact_unique")
        ]
        indexes = [
            # Scanned forwards for "lowest first", backwards for "highest first" (score DESC,
            # contact DESC: the keyset order of the contact list).
            models.Index(fields=["model", "score", "contact"], name="score_model_score"),
            models.Index(fields=["contact"], name="score_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}/{self.contact_id}={self.score}"


class ScoreDay(models.Model):
    """A contact's score at the end of a UTC day on which it changed: "change this week" is the
    score now minus the last one recorded a week ago or earlier. Pruned to that one row beyond
    eight days by the daily refresh."""

    model = models.ForeignKey(ScoreModel, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    score = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "contact", "day"], name="score_day_unique"),
        ]
        indexes = [models.Index(fields=["contact", "model", "-day"], name="score_day_contact")]

    def __str__(self) -> str:
        return f"{self.model_id}/{self.contact_id} {self.day}={self.score}"
