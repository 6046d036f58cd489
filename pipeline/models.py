from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from contacts.models import Company, Contact


class Pipeline(models.Model):
    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="Win probability, %"
    )
    rotting_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="A deal idle longer than this in the stage is marked as rotting."
    )

    class Meta:
        ordering = ["pipeline", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_name_unique_in_pipeline"),
            models.CheckConstraint(condition=Q(probability__lte=100), name="stage_probability_max_100"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline} / {self.name}"


class DealStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class Deal(models.Model):
    title = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expected_close_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=DealStatus.choices, default=DealStatus.OPEN, db_index=True
    )
    # The reason's name as chosen when the deal was lost (the list of reasons may change later).
    lost_reason = models.CharField(max_length=200, blank=True)
    # What happened, in the rep's words: required with the "Other" reason (pipeline.services.defaults).
    lost_note = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Other people on the deal besides the primary contact.
    participants = models.ManyToManyField(Contact, blank=True, related_name="deals_participating")
    # Order inside its stage column (drag and drop within a column); lower first.
    position = models.FloatField(default=0)
    # When the deal entered its current stage: the rotting clock.
    stage_entered_at = models.DateTimeField(null=True, blank=True)
    # Kept up to date by the activity and task services: the board's badges and sort key.
    last_activity_at = models.DateTimeField(null=True, blank=True)
    next_activity_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # First-touch attribution copied from the contact when the deal is created.
    attribution = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="deal_amount_not_negative"),
            models.CheckConstraint(
                condition=~Q(status="lost") | ~Q(lost_reason=""), name="deal_lost_needs_reason"
            ),
        ]
        indexes = [models.Index(fields=["pipeline", "status", "stage"], name="deal_board")]

    def __str__(self) -> str:
        return self.title


class LostReason(models.Model):
    """The configurable list a rep picks from when a deal is lost (Admin edits it in Settings)."""

    name = models.CharField(max_length=200, unique=True)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    # A deal lost for this reason needs a note saying what happened ("Other" alone tells the team
    # nothing). A flag on the row, so renaming the reason keeps it and a new reason may ask too.
    # db_default: migration 0003 inserts the default reasons through its historical model, which
    # has no such column.
    note_required = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class StageChange(models.Model):
    """Every move of a deal between stages (and in or out of won/lost), for history and reports."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_stage = models.ForeignKey(Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_status = models.CharField(max_length=10, choices=DealStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=DealStatus.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["deal", "-changed_at"], name="stage_change_deal")]

    def __str__(self) -> str:
        return f"{self.deal_id}: {self.from_stage_id} -> {self.to_stage_id}"


class ActivityKind(models.TextChoices):
    NOTE = "note", "Note"
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"


# The longest activity body (a note, a call's write-up). ~25 printed pages: far past any meeting
# note, and it keeps one paste from putting megabytes of text on every timeline that shows it.
# Checked by the service (so the API, the UI and imports agree) and by the forms and serializers.
ACTIVITY_BODY_MAX_LENGTH = 50_000


class CallOutcome(models.TextChoices):
    CONNECTED = "connected", "Connected"
    LEFT_VOICEMAIL = "left_voicemail", "Left voicemail"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    WRONG_NUMBER = "wrong_number", "Wrong number"


# A call longer than a day is a typo, not a call.
MAX_CALL_MINUTES = 24 * 60


class Activity(models.Model):
    """Something that happened with a person or a deal: a note, a call, an email, a meeting."""

    kind = models.CharField(max_length=10, choices=ActivityKind.choices)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    # Calls only: how the call went and how long it took (blank / null on other kinds).
    call_outcome = models.CharField(max_length=20, choices=CallOutcome.choices, blank=True)
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.CASCADE, related_name="activities")
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False) | Q(deal__isnull=False) | Q(company__isnull=False),
                name="activity_linked_to_a_record",
            ),
            models.CheckConstraint(
                condition=Q(kind=ActivityKind.CALL) | Q(call_outcome="", duration_minutes__isnull=True),
                name="activity_call_fields_on_calls_only",
            ),
            models.CheckConstraint(
                condition=Q(call_outcome="") | Q(call_outcome__in=CallOutcome.values),
                name="activity_call_outcome_valid",
            ),
            models.CheckConstraint(
                condition=Q(duration_minutes__lte=MAX_CALL_MINUTES), name="activity_duration_max_a_day"
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "-occurred_at"], name="activity_contact"),
            models.Index(fields=["company", "-occurred_at"], name="activity_company"),
            models.Index(fields=["deal", "-occurred_at"], name="activity_deal"),
            models.Index(fields=["author", "-occurred_at"], name="activity_author"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject or self.body[:40]}"


class TaskKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"
    TODO = "todo", "To-do"


class TaskPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"


class Task(models.Model):
    """A to-do with a due time for one person, optionally on a contact, company or deal."""

    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=TaskKind.choices, default=TaskKind.TODO)
    priority = models.CharField(max_length=10, choices=TaskPriority.choices, default=TaskPriority.NORMAL)
    notes = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks")
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set when the reminder email went out, in the same transaction that claims it: sent once.
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["done", "due_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TaskKind.values), name="task_kind_valid"),
            models.CheckConstraint(condition=Q(priority__in=TaskPriority.values), name="task_priority_valid"),
        ]
        indexes = [
            models.Index(fields=["assignee", "done", "due_at"], name="task_assignee_due"),
            models.Index(
                fields=["due_at"],
                name="task_reminder_due",
                condition=Q(done=False, reminder_sent_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title
