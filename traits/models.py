"""Computed traits: definitions, and the values they give each contact (and company).

Values are derived data: `traits.services.computing` makes them from the projection
(identity.ContactEvent joined with its events_event row for the properties), for a set of
contacts (the realtime path and window expiry) or for everyone (the full recompute), with the
same statement, so the two cannot disagree.
"""

from django.conf import settings
from django.db import models

from contacts.models import Company, Contact


class TraitKind(models.TextChoices):
    COUNT = "count", "Event counter"
    SUM = "sum", "Sum of a property"
    AVG = "avg", "Average of a property"
    MIN = "min", "Minimum of a property"
    MAX = "max", "Maximum of a property"
    FIRST = "first", "First value"
    LAST = "last", "Last value"
    MOST_FREQUENT = "most_frequent", "Most frequent value"
    UNIQUE_LIST = "unique_list", "Unique values (list)"
    UNIQUE_COUNT = "unique_count", "Number of unique values"
    # Account level: a company's value, rolled up from a contact trait of its live contacts.
    ACCOUNT_SUM = "account_sum", "Company: sum of a contact trait"
    ACCOUNT_MAX = "account_max", "Company: maximum of a contact trait"
    ACCOUNT_COUNT = "account_count", "Company: contacts with a contact trait"


NUMBER_KINDS = {"count", "sum", "avg", "min", "max", "unique_count"}
TEXT_KINDS = {"first", "last", "most_frequent"}
LIST_KINDS = {"unique_list"}
ACCOUNT_KINDS = {"account_sum", "account_max", "account_count"}
# Kinds whose "no events" value is 0 rather than nothing: no row is stored for them.
ZERO_KINDS = {"count", "unique_count"}


class EventType(models.TextChoices):
    ANY = "", "Any event"
    TRACK = "track", "Track event"
    PAGE = "page", "Page view"
    SCREEN = "screen", "Screen view"


class TraitDefinition(models.Model):
    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=TraitKind.choices)
    # Which events count (contact level): type, name (exact), property conditions, window.
    event_type = models.CharField(max_length=10, choices=EventType.choices, blank=True)
    event_name = models.CharField(max_length=200, blank=True)
    # The property aggregated or collected (every kind but count and the account kinds).
    property_key = models.CharField(max_length=100, blank=True)
    # [{"property", "operator", "value"}], all must hold (traits.services.definitions validates).
    conditions = models.JSONField(default=list, blank=True)
    # None: ever; N: today (UTC) and the N-1 days before.
    window_days = models.PositiveIntegerField(null=True, blank=True)
    # Account kinds: the contact trait rolled up.
    source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollups"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When the last full recompute of this trait finished (None: never, or queued since a save).
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_account(self) -> bool:
        return self.kind in ACCOUNT_KINDS

    @property
    def is_number(self) -> bool:
        return self.kind in NUMBER_KINDS or self.kind in ACCOUNT_KINDS


class TraitValue(models.Model):
    """A contact's value of a contact-level trait. No row: no matching events (0 for counters)."""

    trait = models.ForeignKey(TraitDefinition, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="trait_values")
    number = models.FloatField(null=True)
    # NULL is "no value"; "" is a property's empty string, a value like any other.
    text = models.TextField(null=True)  # noqa: DJ001
    items = models.JSONField(null=True)
    # When an event that counts leaves the window (the value changes then): the expiry sweep's key.
    expires_at = models.DateTimeField(null=True)
    # The contact's company when the value was computed: which companies' rollups a change touches.
    company_id = models.BigIntegerField(null=True)
    computed_at = models.DateTimeField()

    class Meta:
        # Contact first: the realtime path rewrites a contact's values, the page reads them.
        constraints = [models.UniqueConstraint(fields=["contact", "trait"], name="trait_value_unique")]
        indexes = [
            # Sorting and filtering a list by a trait, segment conditions on it.
            models.Index(fields=["trait", "number", "contact"], name="trait_value_number"),
            models.Index(fields=["trait", "text"], name="trait_value_text"),
            models.Index(
                fields=["expires_at"], condition=models.Q(expires_at__isnull=False), name="trait_value_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"trait {self.trait_id} of contact {self.contact_id}"


class CompanyTraitValue(models.Model):
    """A company's value of an account-level trait."""

    trait = models.ForeignKey(TraitDefinition, on_delete=models.CASCADE, related_name="+")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="trait_values")
    number = models.FloatField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trait", "company"], name="company_trait_value_unique")
        ]

    def __str__(self) -> str:
        return f"trait {self.trait_id} of company {self.company_id}"
