from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q, TextField, Value
from django.db.models.functions import Concat, Lower
from django.urls import reverse


class LifecycleStage(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    SUBSCRIBER = "subscriber", "Subscriber"
    LEAD = "lead", "Lead"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"
    OTHER = "other", "Other"


def company_search_text() -> Lower:
    """What the company search matches: name and domain, lower-cased. The trigram index below is
    built on this exact expression, so the selectors must filter on it (not on the columns)."""
    return Lower(Concat("name", Value(" "), "domain", output_field=TextField()))


def contact_search_text() -> Lower:
    """What the contact search matches (besides the company's name): name, email and phone."""
    return Lower(
        Concat(
            "first_name",
            Value(" "),
            "last_name",
            Value(" "),
            "email",
            Value(" "),
            "phone",
            output_field=TextField(),
        )
    )


class Company(models.Model):
    name = models.CharField(max_length=200)
    # Stored lower-cased without "www."; contacts whose email domain matches are linked to it.
    domain = models.CharField(max_length=253, null=True, blank=True)  # noqa: DJ001  NULL: no domain, unique when set
    industry = models.CharField(max_length=100, blank=True)
    size = models.CharField(max_length=20, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["domain"], name="company_domain_unique"),
            models.CheckConstraint(
                condition=Q(domain__isnull=True) | ~Q(domain=""), name="company_domain_not_blank"
            ),
        ]
        indexes = [
            # `LIKE '%q%'` on the search text: a trigram GIN index serves substring search.
            GinIndex(OpClass(company_search_text(), name="gin_trgm_ops"), name="company_search_trgm"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("contacts:company_detail", args=[self.pk])


# The key of Contact.attribution that dates the touch it describes (an ISO 8601 time).
ATTRIBUTION_TOUCHED_AT = "touched_at"


class Contact(models.Model):
    """The CRM person and the CDP profile in one row. Anonymous visitors are contacts too."""

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    # Normalised (trimmed, lower-cased) by the services before it is stored.
    email = models.CharField(max_length=254, null=True, blank=True)  # noqa: DJ001  NULL: no email, unique when set
    phone = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=150, blank=True)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.LEAD, db_index=True
    )
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    # Traits as last sent by identify() calls; values typed in the CRM live in the columns above.
    traits = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    # First-touch attribution: utm_*, referrer, landing page of the person's first tracked touch
    # (identity/projection.py says what counts), and when it happened (ATTRIBUTION_TOUCHED_AT).
    attribution = models.JSONField(default=dict, blank=True)
    # The person's latest consent state as their events carried it (Segment's shape):
    # {"categoryPreferences": {category: bool}, "gpc": bool, "timestamp": iso, "event_id": int}.
    # Written by the stitching worker from the newest event by timestamp; {} when none said.
    consent = models.JSONField(default=dict, blank=True)
    is_identified = models.BooleanField(default=True)
    # Set when this contact was merged into another; the row stays so old URLs can redirect.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=Q(merged_into__isnull=True), name="contact_live_email_unique"
            ),
            models.CheckConstraint(
                condition=Q(email__isnull=True) | ~Q(email=""), name="contact_email_not_blank"
            ),
        ]
        indexes = [
            # The default CRM list (contacts.selectors.contact_list): live people, newest first.
            # Partial, so anonymous visitors, who will far outnumber people, do not bloat it.
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(merged_into__isnull=True, is_identified=True),
                name="contact_live_list_idx",
            ),
            # The tag filter is `tags @> ARRAY[tag]`, which only a GIN index serves.
            GinIndex(fields=["tags"], name="contact_tags_gin"),
            # Substring search over 100k+ rows (contacts.selectors.contact_list `q`).
            GinIndex(OpClass(contact_search_text(), name="gin_trgm_ops"), name="contact_search_trgm"),
        ]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("contacts:contact_detail", args=[self.pk])

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def display_name(self) -> str:
        return self.full_name or self.email or self.phone or f"Visitor #{self.pk}"

    @property
    def first_touch_at(self) -> datetime | None:
        """When the first-touch attribution was recorded, None when there is none. Attribution
        stored before it carried its time came from the person's first event: `first_seen`."""
        if not isinstance(self.attribution, dict) or not self.attribution:
            return None
        raw = self.attribution.get(ATTRIBUTION_TOUCHED_AT)
        if isinstance(raw, str):
            try:
                at = datetime.fromisoformat(raw)
            except ValueError:
                at = None
            if at is not None and at.tzinfo is not None:
                return at
        return self.first_seen


class CustomFieldEntity(models.TextChoices):
    CONTACT = "contact", "Contact"
    COMPANY = "company", "Company"


class CustomFieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    CHOICE = "choice", "Choice"
    BOOLEAN = "boolean", "Yes / no"


class CustomField(models.Model):
    """A field an Admin adds to contacts or companies. Values live in the record's
    `custom_fields` JSON under `key`, stored as JSON scalars (dates as ISO strings)."""

    entity = models.CharField(max_length=10, choices=CustomFieldEntity.choices)
    key = models.SlugField(max_length=50, help_text="Stable name used in the API, imports and exports.")
    label = models.CharField(max_length=100)
    field_type = models.CharField(max_length=10, choices=CustomFieldType.choices)
    choices = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["entity", "position", "pk"]
        constraints = [models.UniqueConstraint(fields=["entity", "key"], name="custom_field_key_unique")]

    def __str__(self) -> str:
        return f"{self.get_entity_display()}: {self.label}"


class FieldChange(models.Model):
    """Who changed which field of a contact or company, when, from what to what."""

    entity = models.CharField(max_length=10, choices=CustomFieldEntity.choices)
    object_id = models.BigIntegerField()
    # A column name, or "custom_fields.<key>" for a custom field.
    field = models.CharField(max_length=100)
    old_value = models.JSONField(null=True)
    new_value = models.JSONField(null=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["entity", "object_id", "-changed_at"], name="field_change_record")]

    def __str__(self) -> str:
        return f"{self.entity} {self.object_id}: {self.field}"


class ImportStatus(models.TextChoices):
    DRAFT = "draft", "Mapping columns"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DedupeMode(models.TextChoices):
    UPDATE = "update", "Update the existing contact"
    SKIP = "skip", "Skip the row"


class ImportJob(models.Model):
    """One CSV upload: its column mapping, options and progress. The worker commits `processed_rows`
    with each batch, so a re-run (a redelivered task) resumes after the last committed batch."""

    entity = models.CharField(max_length=10, choices=CustomFieldEntity.choices, default="contact")
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    encoding = models.CharField(max_length=20)
    headers = ArrayField(models.CharField(max_length=200), default=list)
    # Column index (as a string: JSON keys) -> target field ("email", "custom:<key>", ...).
    mapping = models.JSONField(default=dict, blank=True)
    dedupe = models.CharField(max_length=10, choices=DedupeMode.choices, default=DedupeMode.UPDATE)
    create_companies = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.DRAFT)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when queued and with every committed batch: a queued or running job whose heartbeat is
    # old lost its Celery message or its worker, and the sweeper queues it again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.original_name})"

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        return min(100, self.processed_rows * 100 // self.total_rows) if self.total_rows else 0

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)


class ImportRowError(models.Model):
    """A rejected row, written in the same transaction as its batch: the downloadable error file."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField(help_text="1 = the first data row after the header")
    reason = models.TextField()
    values = ArrayField(models.TextField(), default=list)

    class Meta:
        ordering = ["job", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row_number"], name="import_row_error_unique"),
        ]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"


class MergeReason(models.TextChoices):
    MANUAL = "manual", "Merged by hand"
    IDENTIFY = "identify", "identify() linked their identifiers"
    ALIAS = "alias", "alias() linked their identifiers"
    EMAIL = "email", "Same email address"
    PHONE = "phone", "Same phone number"
    EXTERNAL_ID = "external_id", "Same external id"


class ContactMerge(models.Model):
    """The merge log: who or what folded which contact into which, why, keeping which values.
    A merge can be split again; the row then stays as history with `split_at` set."""

    winner = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    # CASCADE: deleting the surviving contact deletes its tombstones (contact_delete), and this
    # row holds the loser's personal data, which must go with them.
    loser = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Field name (or "custom_fields.<key>") -> "winner" or "loser": whose value was kept.
    field_choices = models.JSONField(default=dict)
    loser_snapshot = models.JSONField(default=dict)
    # Related table label -> rows moved to the winner (and rows left on the tombstone, if any).
    moved = models.JSONField(default=dict)
    # Related table label -> primary keys of the rows moved, so a split can send them back.
    moved_ids = models.JSONField(default=dict)
    # The winner's own values before the merge (what a split restores where the loser's won).
    winner_snapshot = models.JSONField(default=dict)
    reason = models.CharField(max_length=20, choices=MergeReason.choices, default=MergeReason.MANUAL)
    # The event that triggered an automatic merge (events.Event id; contacts does not import events).
    event_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    split_at = models.DateTimeField(null=True, blank=True)
    split_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One standing merge per loser; a split one stays as history and may be merged again.
            models.UniqueConstraint(
                fields=["loser"], condition=Q(split_at__isnull=True), name="contact_merge_loser_unique"
            )
        ]

    def __str__(self) -> str:
        return f"contact {self.loser_id} -> {self.winner_id}"


class SavedView(models.Model):
    """A user's named list filter: the list page's query string, replayed when it is picked."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=10, choices=CustomFieldEntity.choices)
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "entity", "name"], name="saved_view_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class ListColumns(models.Model):
    """The columns a user chose for a list page (the column chooser remembers them here)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=10, choices=CustomFieldEntity.choices)
    columns = ArrayField(models.CharField(max_length=60), default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "entity"], name="list_columns_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.entity}"
