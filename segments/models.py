"""Segments: a definition (JSON), its current members with entered/exited times, the history of
changes, size samples for the chart, and per-segment webhooks with their delivery log.

The definition's shape and meaning live in `segments/definition/compiler.py`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from contacts.models import Contact


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (rules)"
    STATIC = "static", "Static (hand-picked)"


class Segment(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    definition = models.JSONField(default=dict, blank=True)
    # Derived from the definition when it is saved (compiler.analyse), so the schedulers can pick
    # segments without parsing every definition: which changes can move a member in or out.
    triggers = models.JSONField(default=list, blank=True)
    # Other segments this one reads (their membership), for cycle checks and refresh order.
    depends_on = models.JSONField(default=list, blank=True)
    # True when a condition has a time window: the window moves every day, so membership changes
    # with no new event (expiry), and the scheduled recompute must run after each day boundary.
    has_window = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Recompute bookkeeping (the scheduler's view of this segment).
    member_count = models.PositiveIntegerField(default=0)
    last_computed_at = models.DateTimeField(null=True, blank=True)
    last_compute_ms = models.PositiveIntegerField(null=True, blank=True)
    computing_since = models.DateTimeField(null=True, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["kind", "last_computed_at"], name="segment_kind_computed")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("segments:detail", args=[self.pk])

    @property
    def is_static(self) -> bool:
        return self.kind == SegmentKind.STATIC


class Membership(models.Model):
    """One row per (segment, contact) ever matched: a member while `exited_at` is null. Re-entry
    clears `exited_at` and stamps a new `entered_at`; the full story is in MembershipChange."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segment_membership_unique"),
            models.CheckConstraint(
                condition=Q(exited_at__isnull=True) | Q(exited_at__gte=models.F("entered_at")),
                name="segment_membership_exit_after_entry",
            ),
        ]
        indexes = [
            # The contact page's segment panel and "in segment X" conditions for one contact.
            models.Index(fields=["contact"], name="segment_membership_contact", condition=Q(exited_at=None)),
            # Members of a segment (lists, counts, nested-segment conditions).
            models.Index(
                fields=["segment", "contact"], name="segment_membership_current", condition=Q(exited_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id}"


class ChangeKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    EXITED = "exited", "Exited"


class MembershipChange(models.Model):
    """The diff a recompute produced: who entered or left, when."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ChangeKind.choices)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["segment", "-at"], name="segment_change_recent")]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.kind} {self.segment_id}"


class SizeSample(models.Model):
    """Member count after each full recompute: the segment page's size-over-time chart."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    size = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["segment", "-at"], name="segment_size_recent")]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.at:%Y-%m-%d %H:%M} {self.size}"


class Webhook(models.Model):
    """Where a segment's entries and exits are sent, signed the Standard Webhooks way."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    # "whsec_" + base64 of 32 random bytes (Standard Webhooks' format).
    secret = models.CharField(max_length=100)
    on_enter = models.BooleanField(default=True)
    on_exit = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    # Private, loopback and link-local addresses are refused unless an Admin sets this (SSRF).
    allow_private = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message to one webhook, with its attempts: the delivery log and the retry queue."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    # The Standard Webhooks `webhook-id`: the same on every retry, so receivers can deduplicate.
    message_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due", condition=Q(status="pending")
            ),
            models.Index(fields=["webhook", "-created_at"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.webhook_id} ({self.status})"
