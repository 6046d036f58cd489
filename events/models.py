import secrets

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models


def new_write_key() -> str:
    return secrets.token_urlsafe(24)


class SourceKind(models.TextChoices):
    WEB = "web", "Website"
    SERVER = "server", "Server"
    MOBILE = "mobile", "Mobile app"


class Source(models.Model):
    """Where events come from. The write key is public (it ships in the page), so it only writes."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=SourceKind.choices, default=SourceKind.WEB)
    write_key = models.CharField(max_length=64, unique=True, default=new_write_key)
    enabled = models.BooleanField(default=True)
    # Empty: any origin may send (write keys are public anyway); otherwise only these, for CORS.
    allowed_origins = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    # Events per second this source may send; empty means the INGEST_RATE_LIMIT_PER_SECOND default.
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    # Privacy (docs/architecture.md, "Consent and retention"). The pasted snippet carries the two
    # consent switches as load options; the server never sees a message the library held back.
    require_consent = models.BooleanField(default=False)
    honor_gpc = models.BooleanField(default=False)
    # Events received longer ago than this are deleted by events.tasks.events_retention_enforce;
    # empty keeps them forever.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__isnull=True) | models.Q(retention_days__gte=1),
                name="source_retention_days_positive",
            )
        ]

    def __str__(self) -> str:
        return self.name


class EventType(models.TextChoices):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class Event(models.Model):
    """One accepted message, exactly as sent (plus the server's timestamps). Never updated:
    a database trigger refuses UPDATE; rows leave only through retention or privacy erasure.

    The table is range-partitioned by received_at, a partition per month (services/partitions.py):
    the database's primary key is (id, received_at), Django's is id (unique: one sequence)."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: event_source_received leads with source_id (one btree less per event).
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="+", db_index=False)
    message_id = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=EventType.choices)
    # track: the event name; page/screen: the page name; empty for the other types.
    event = models.CharField(max_length=200, blank=True)
    anonymous_id = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=200, blank=True)
    group_id = models.CharField(max_length=200, blank=True)
    previous_id = models.CharField(max_length=200, blank=True)
    properties = models.JSONField(default=dict)
    traits = models.JSONField(default=dict)
    context = models.JSONField(default=dict)
    # Skew-corrected: receivedAt - (sentAt - originalTimestamp), clamped when far in the future.
    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True)
    sent_at = models.DateTimeField(null=True)
    received_at = models.DateTimeField()
    is_bot = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["source", "-received_at"], name="event_source_received"),
            models.Index(
                fields=["anonymous_id"], name="event_anonymous_id", condition=~models.Q(anonymous_id="")
            ),
            models.Index(fields=["user_id"], name="event_user_id", condition=~models.Q(user_id="")),
            # Erasure's sweep by identifier matches previous_id too (alias events only, so tiny):
            # without it that OR read the whole event log.
            models.Index(
                fields=["previous_id"], name="event_previous_id", condition=~models.Q(previous_id="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event or ''} ({self.message_id})".strip()


class EventDedup(models.Model):
    """messageIds seen per source in the dedup window. A small, expiring table: a unique index
    on the ever-growing event table would make large inserts write full WAL pages."""

    # Indexed by event_dedup_unique (source_id first): no index of its own. No constraint in the
    # database: its check was a tenth of the write path's database work per event (a lookup and
    # a KEY SHARE lock on the one source row that every concurrent insert shares), and it guarded
    # nothing: a dedup key is written in the same statement as its event, whose own foreign key
    # is checked, and Source.delete() still cascades here through the ORM.
    source = models.ForeignKey(
        Source, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    message_id = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "message_id"], name="event_dedup_unique")]
        # Rows arrive in received_at order, so a BRIN index (a few pages, next to nothing to
        # maintain per insert) serves the hourly expiry as well as a btree written on every event.
        indexes = [BrinIndex(fields=["received_at"], name="event_dedup_received_brin")]

    def __str__(self) -> str:
        return self.message_id


class IngestBatch(models.Model):
    """Work still to do for stored events: the record of work (Celery messages only wake workers).
    One row per insert statement, holding the ids of the events it stored, written in the same
    statement: a row per event cost a sixth of the database's work per batched event (a heap
    tuple, a primary-key entry and a foreign-key check each; docs/benchmarks.md). Claimed with
    SELECT ... FOR UPDATE SKIP LOCKED and deleted (or trimmed, when a worker takes only part of
    it) in the transaction that does the work. A batch that fails is expanded into IngestQueue
    rows, so each event is retried and dead-lettered on its own.

    No foreign key can point into an array: an event deleted while queued (erasure, retention)
    is taken out of its batch by services.ingest_batches_forget, and a worker skips ids whose
    event is gone."""

    id = models.BigAutoField(primary_key=True)
    # In insert order, which is id order: a statement takes its ids from one sequence.
    event_ids = ArrayField(models.BigIntegerField())
    # cardinality(event_ids), so the backlog can be summed without reading the arrays.
    size = models.PositiveIntegerField()
    enqueued_at = models.DateTimeField()
    # Which of the queue's slices the batch belongs to (services.queue.QUEUE_SLICES): the events of
    # one statement are split by the person they route to (settings.INGEST_ROUTING), and a claim
    # takes whole slices no other claim holds, so two drains rarely stitch the same people at once.
    slice = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gte=1), name="ingest_batch_not_empty"),
        ]
        indexes = [models.Index(fields=["slice", "id"], name="ingest_batch_slice")]

    def __str__(self) -> str:
        return f"queued batch {self.pk} ({self.size} events)"


class IngestQueue(models.Model):
    """Work still to do for one stored event, retried on its own: the events of a batch that
    failed (IngestBatch), with their attempt count, last error and dead-letter time. Claimed with
    SELECT ... FOR UPDATE SKIP LOCKED and deleted in the transaction that does the work."""

    # No constraint in the database: events_event is partitioned by received_at, and Postgres
    # accepts a foreign key only to a unique key holding the partition key (id alone is not one).
    # The ORM still cascades; retention and erasure take events out of the queue first
    # (services.ingest_batches_forget).
    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    enqueued_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Set once an event has failed too often; such rows are skipped and shown in the UI.
    dead_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"queued event {self.event_id}"


class RejectedEvent(models.Model):
    """A message from an authenticated request that failed validation, kept with the reason."""

    # Indexed by rejected_source_received (source_id first): no index of its own.
    source = models.ForeignKey(Source, null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    received_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    # The message as sent, or a truncated prefix of it when it was oversize.
    payload = models.JSONField(null=True)

    class Meta:
        indexes = [models.Index(fields=["source", "-received_at"], name="rejected_source_received")]

    def __str__(self) -> str:
        return self.reason


class Suppression(models.Model):
    """An identifier whose events are dropped at ingestion (an erased person's). Only the SHA-256
    of the normalised value is kept: the list itself must not hold the personal data it protects."""

    value_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"suppressed {self.value_hash[:12]}…"
