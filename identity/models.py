"""The identity graph and what the stitching worker derives from the event log.

Everything here is derived data: `rebuild_identity` can replay it from the append-only events.
Rows point at contacts with CASCADE, so erasing a person takes their identity data with them.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from contacts.models import Contact
from events.models import Event


class IdentityKind(models.TextChoices):
    ANONYMOUS_ID = "anonymous_id", "Anonymous id"
    USER_ID = "user_id", "User id"
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    # context.externalIds entries, stored as "<type>:<id>" (e.g. "hubspot_id:123").
    EXTERNAL = "external", "External id"


class Identity(models.Model):
    """One identifier of a person: (kind, value) belongs to exactly one live contact."""

    kind = models.CharField(max_length=20, choices=IdentityKind.choices)
    # Normalised: emails lower-cased and trimmed, phones E.164, the others trimmed.
    value = models.CharField(max_length=300)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    # The event that first carried it (None for identities taken from CRM-typed values).
    first_event_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_unique")]
        indexes = [models.Index(fields=["contact", "kind"], name="identity_contact_kind")]

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


class ContactEvent(models.Model):
    """Which contact an event belongs to, with the columns the CRM and segments filter on.

    Events are immutable and keep the identifiers they were sent with; this projection is where
    they meet contacts. A merge repoints rows; a split sends back the rows whose `identity`
    went back with the loser.
    """

    # No constraint in the database: events_event is partitioned, and a foreign key must name its
    # partition key too (events.models.Event). The ORM still cascades; retention and erasure call
    # the projection's delete hook (services.projection.events_forget) before events go.
    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    # The identifier that resolved the event to the contact.
    identity = models.ForeignKey(Identity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    type = models.CharField(max_length=10)
    # track: event name; page/screen: page name (events.Event.event).
    name = models.CharField(max_length=200, blank=True)
    # page: properties.path (or context.page.path), else "".
    path = models.CharField(max_length=500, blank=True)
    timestamp = models.DateTimeField()
    is_bot = models.BooleanField(default=False)
    # The event's received_at: the table is partitioned by it, with events_event's monthly
    # boundaries (events.services.partitions creates both; retention drops both months together).
    # The database's primary key is (event_id, received_at); Django knows event_id alone.
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            # A person's timeline and web activity panel, newest first.
            models.Index(fields=["contact", "-timestamp"], name="contact_event_timeline"),
            # Segment conditions: "type/name (or path) within a window", across all contacts.
            models.Index(fields=["type", "name", "timestamp"], name="contact_event_name_time"),
            models.Index(fields=["type", "timestamp"], name="contact_event_type_time"),
            # "N bot events hidden" on the web activity panel: a person's bot rows are few or none,
            # and without it the count reads every row of the person's history to check is_bot.
            models.Index(fields=["contact"], condition=models.Q(is_bot=True), name="contact_event_bots"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} -> contact {self.contact_id}"


class ActivityKind(models.TextChoices):
    PAGE = "page", "Page view"
    SCREEN = "screen", "Screen view"
    EVENT = "event", "Track event"


class DailyActivity(models.Model):
    """Per contact, per day, per page path or event name: how many times. The input for segment
    counts and behavioural badges ("viewed pricing 3x this week"); rebuilt from ContactEvent."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=10, choices=ActivityKind.choices)
    # page/screen: the path (or screen name); event: the event name.
    key = models.CharField(max_length=500)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily activities"
        constraints = [
            models.UniqueConstraint(fields=["contact", "day", "kind", "key"], name="daily_activity_unique")
        ]
        indexes = [models.Index(fields=["kind", "key", "day"], name="daily_activity_key_day")]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.day} {self.kind}:{self.key} x{self.count}"


class WarningKind(models.TextChoices):
    REFUSED_MERGE = "refused_merge", "Merge refused (different user ids)"
    BLOCKED_VALUE = "blocked_value", "Blocked identifier ignored"
    CAP_HIT = "cap_hit", "Identifier cap reached"


class IdentityWarning(models.Model):
    """Something the stitching worker declined to do, for a person to review."""

    kind = models.CharField(max_length=20, choices=WarningKind.choices)
    detail = models.CharField(max_length=500)
    event_id = models.BigIntegerField(null=True, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    other_contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    identity_kind = models.CharField(max_length=20, blank=True)
    identity_value = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "-created_at"], name="identity_warning_kind")]

    def __str__(self) -> str:
        return self.detail


class BlockedValue(models.Model):
    """An identifier value the worker ignores ("null", "undefined", "0", ...); editable by Admins.
    An empty kind blocks the value for every kind."""

    kind = models.CharField(max_length=20, choices=IdentityKind.choices, blank=True)
    value = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="blocked_value_unique")]

    def __str__(self) -> str:
        return f"{self.kind or '*'}={self.value}"


class ProfileUpdate(models.Model):
    """Contacts whose profile or behaviour changed, waiting for downstream work (segment
    re-evaluation): written by the stitching worker in its transaction, so nothing is lost when a
    wake-up message is, and after commit of a CRM edit (settings.CONTACT_CHANGE_HOOKS). Consumers
    claim rows with SKIP LOCKED and delete them."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True, related_name="+")
    updated_at = models.DateTimeField()
    # When the first unprocessed change happened (for latency figures).
    first_changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"profile update {self.contact_id}"


# The values every install starts with in BlockedValue (kind ""), from what peers learned to block.
# Compared case-insensitively after trimming (stored lower-cased).
DEFAULT_BLOCKED_VALUES = [
    "",
    "null",
    "none",
    "nil",
    "undefined",
    "nan",
    "0",
    "-1",
    "anonymous",
    "guest",
    "unknown",
    "[object object]",
    "true",
    "false",
    "{}",
    "[]",
    "00000000-0000-0000-0000-000000000000",
    "test@test.com",
    "email@example.com",
    "noreply@example.com",
]


class HotRule(models.Model):
    """When a deal's person is "hot": page views whose path contains `path_contains`, at least
    `min_views` of them within `window_hours`. The rule's name also labels the behavioural signal
    on deal cards ("viewed pricing 3x this week"). Admins edit the rules in Settings."""

    name = models.CharField(max_length=60, unique=True, help_text='Shown as "viewed <name> 3x this week".')
    path_contains = models.CharField(max_length=200, help_text="Matched case-insensitively.")
    min_views = models.PositiveIntegerField(default=2)
    window_hours = models.PositiveIntegerField(default=24)
    # Optionally also: the person's lead score in a score model (the scoring app, a higher one:
    # an id, not a foreign key; read through settings.HOT_RULE_SCORE_HOOK) at least `min_score`.
    score_model_id = models.BigIntegerField(null=True, blank=True)
    min_score = models.IntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(min_views__gte=1), name="hot_rule_min_views_positive"),
            # One hour to thirty days: a longer window is a segment, not an alert.
            models.CheckConstraint(
                condition=models.Q(window_hours__gte=1, window_hours__lte=720), name="hot_rule_window_range"
            ),
            models.CheckConstraint(condition=~models.Q(path_contains=""), name="hot_rule_path_not_blank"),
            models.CheckConstraint(
                condition=models.Q(score_model_id__isnull=True, min_score__isnull=True)
                | models.Q(score_model_id__isnull=False, min_score__isnull=False),
                name="hot_rule_score_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class HotDealAlert(models.Model):
    """The last time a rule alerted a deal's owner. One row per (rule, deal): the notifier claims it
    with one conditional upsert, so a deal is notified once per rule window however often (and
    however concurrently) the stitching worker reports its contacts."""

    rule = models.ForeignKey(HotRule, on_delete=models.CASCADE, related_name="+")
    deal = models.ForeignKey("pipeline.Deal", on_delete=models.CASCADE, related_name="+")
    notified_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "deal"], name="hot_deal_alert_unique")]
        indexes = [models.Index(fields=["deal", "-notified_at"], name="hot_deal_alert_deal")]

    def __str__(self) -> str:
        return f"rule {self.rule_id} deal {self.deal_id} at {self.notified_at}"


class TrackedContact(models.Model):
    """A contact the stitching worker created for a new visitor (not typed in the CRM).

    `rebuild_identity` deletes these (unless someone has since attached CRM data to them) and
    lets the replay create them again; contacts made by people are never deleted. A merge
    leaves this row on the tombstone: it describes the loser, not the person."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True, related_name="+")
    first_event_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"tracked contact {self.contact_id}"


class CompanyGroup(models.Model):
    """A `group` call's groupId, resolved to the CRM company it names (the identity graph of
    companies: groupIds have no column on Company, and companies need no CDP columns)."""

    group_id = models.CharField(max_length=200, unique=True)
    company = models.ForeignKey("contacts.Company", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"group {self.group_id} -> company {self.company_id}"


class RebuildState(models.Model):
    """The checkpoint of `rebuild_identity` (one row): a run interrupted after its reset resumes
    after `last_event_id` instead of starting over."""

    started_at = models.DateTimeField()
    # The newest event when the run started: the replay covers events up to here, then catches up.
    last_event_id = models.BigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rebuild from {self.started_at:%Y-%m-%d %H:%M} at event {self.last_event_id}"


class SplitRule(models.Model):
    """Two sets of identifiers an Admin split apart (`merging.merge_split`): the worker never
    merges a contact holding one of `left` with one holding one of `right`. Keyed by identifiers,
    not contact ids, so the decision outlives `rebuild_identity`, which recreates the contacts
    the worker made. Values are stored as SHA-256 digests
    (`events.services.suppression.value_hash`: the trimmed, lower-cased value), so the rule itself
    holds no personal data; erasure deletes the rules of an erased person's identifiers."""

    left = ArrayField(models.CharField(max_length=64))
    right = ArrayField(models.CharField(max_length=64))
    # The split it records (null once that merge row is gone, e.g. after a rebuild).
    merge = models.ForeignKey("contacts.ContactMerge", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"split rule {self.pk} ({len(self.left)} | {len(self.right)} identifiers)"
