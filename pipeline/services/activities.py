"""Writes for activities (notes, calls, emails, meetings) and tasks, and the task reminders.

Who may log and change activities and tasks is `pipeline.permissions` (its "activities and tasks"
section); the writes here check it.

Every write that touches a deal ends with `deal_activity_dates_refresh`, which recomputes
`last_activity_at` and `next_activity_at` from the rows themselves: idempotent, so a missed or
repeated call can never leave the board's badges wrong for longer than the next write.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Max, Min, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from contacts.models import Company, Contact
from core.errors import DomainError, Forbidden
from pipeline.models import (
    ACTIVITY_BODY_MAX_LENGTH,
    MAX_CALL_MINUTES,
    Activity,
    ActivityKind,
    CallOutcome,
    Deal,
    Task,
    TaskKind,
    TaskPriority,
)
from pipeline.permissions import (
    can_change_activity,
    can_change_task,
    ensure_can_change_task,
    ensure_can_write,
)

ACTIVITY_FIELDS = {"kind", "subject", "body", "occurred_at", "call_outcome", "duration_minutes"}
TASK_FIELDS = {"title", "due_at", "assignee", "kind", "priority", "notes"}
# A reminder for a task due longer ago than this is noise, not a reminder (beat was down, or the
# task was created already overdue): those are skipped, not sent late.
REMINDER_MAX_LATENESS = timedelta(hours=1)
# pg_try_advisory_xact_lock(namespace, assignee id): one reminder run per person at a time.
REMINDER_LOCK_NAMESPACE = 7012


# --- deal dates


def deal_activity_dates_refresh(*, deal_id: int) -> None:
    """Recompute a deal's last activity (latest logged activity) and next activity (earliest open
    task with a due time) from the data, in one UPDATE."""
    last = Activity.objects.filter(deal_id=OuterRef("pk")).values("deal_id").annotate(at=Max("occurred_at"))
    next_ = (
        Task.objects.filter(deal_id=OuterRef("pk"), done=False, due_at__isnull=False)
        .values("deal_id")
        .annotate(at=Min("due_at"))
    )
    Deal.objects.filter(pk=deal_id).update(
        last_activity_at=Subquery(last.values("at")), next_activity_at=Subquery(next_.values("at"))
    )


def _refresh_deals(*deal_ids: int | None) -> None:
    for deal_id in sorted({d for d in deal_ids if d}):
        deal_activity_dates_refresh(deal_id=deal_id)


def _linked(contact: Contact | None, deal: Deal | None, company: Company | None, *, what: str) -> None:
    if contact is None and deal is None and company is None:
        raise DomainError(
            f"A {what} must be on a contact, a deal or a company.",
            fields={"contact": ["Choose a contact, a deal or a company."]},
        )


# --- activities


def body_too_long_message(length: int) -> str:
    return (
        f"A note may be at most {ACTIVITY_BODY_MAX_LENGTH:,} characters; this one has {length:,}. "
        "Shorten it or split it into several notes."
    )


def _check_body_length(body: str) -> None:
    if len(body) > ACTIVITY_BODY_MAX_LENGTH:
        message = body_too_long_message(len(body))
        raise DomainError(message, fields={"body": [message]})


@transaction.atomic
def activity_log(
    *,
    actor: AbstractBaseUser | None,
    kind: str,
    subject: str = "",
    body: str = "",
    occurred_at: datetime | None = None,
    call_outcome: str = "",
    duration_minutes: int | None = None,
    contact: Contact | None = None,
    deal: Deal | None = None,
    company: Company | None = None,
) -> Activity:
    """Log a note, call, email or meeting on a contact and/or a deal and/or a company. Calls may
    carry an outcome and a duration in minutes."""
    ensure_can_write(actor, what="activities")
    _linked(contact, deal, company, what="activity")
    if kind not in ActivityKind.values:
        raise DomainError(f"Unknown activity kind {kind!r}.", fields={"kind": ["Choose a kind."]})
    subject, body = subject.strip(), body.strip()
    # A call's outcome says what happened ("no answer"), so it is enough on its own.
    if not subject and not body and not (kind == ActivityKind.CALL and call_outcome):
        raise DomainError("Write a subject or a body.", fields={"body": ["Write something."]})
    _check_body_length(body)
    _check_call_fields(kind, call_outcome or "", duration_minutes)
    activity = Activity.objects.create(
        kind=kind,
        subject=subject,
        body=body,
        call_outcome=call_outcome or "",
        duration_minutes=duration_minutes,
        occurred_at=occurred_at or timezone.now(),
        contact=contact,
        deal=deal,
        company=company,
        author=actor,
    )
    _refresh_deals(activity.deal_id)
    return activity


@transaction.atomic
def activity_update(*, activity: Activity, actor: AbstractBaseUser | None, **fields: Any) -> Activity:
    if not can_change_activity(actor, activity):
        raise Forbidden("Only the author or an Admin may change this activity.")
    unknown = set(fields) - ACTIVITY_FIELDS
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} of an activity.")
    if "kind" in fields and fields["kind"] not in ActivityKind.values:
        raise DomainError(f"Unknown activity kind {fields['kind']!r}.", fields={"kind": ["Choose a kind."]})
    if "call_outcome" in fields and fields["call_outcome"] is None:
        fields["call_outcome"] = ""
    kind = fields.get("kind", activity.kind)
    if "kind" in fields and kind != ActivityKind.CALL:
        # A call turned into a note keeps no outcome or duration: they would describe a call that,
        # as far as the record now says, never happened.
        fields.setdefault("call_outcome", "")
        fields.setdefault("duration_minutes", None)
    _check_call_fields(
        kind,
        fields.get("call_outcome", activity.call_outcome),
        fields.get("duration_minutes", activity.duration_minutes),
    )
    for name, value in fields.items():
        setattr(activity, name, value.strip() if isinstance(value, str) else value)
    if not activity.subject and not activity.body and not activity.call_outcome:
        raise DomainError("Write a subject or a body.", fields={"body": ["Write something."]})
    _check_body_length(activity.body)
    activity.save(update_fields=list(fields))
    _refresh_deals(activity.deal_id)
    return activity


@transaction.atomic
def activity_delete(*, activity: Activity, actor: AbstractBaseUser | None) -> None:
    if not can_change_activity(actor, activity):
        raise Forbidden("Only the author or an Admin may delete this activity.")
    deal_id = activity.deal_id
    activity.delete()
    _refresh_deals(deal_id)


def _check_call_fields(kind: str, call_outcome: str, duration_minutes: int | None) -> None:
    if kind != ActivityKind.CALL and (call_outcome or duration_minutes is not None):
        raise DomainError(
            "Only calls have an outcome and a duration.",
            fields={"call_outcome": ["Only calls have an outcome and a duration."]},
        )
    if call_outcome and call_outcome not in CallOutcome.values:
        raise DomainError(
            f"Unknown call outcome {call_outcome!r}.",
            fields={"call_outcome": [f"Choose one of {', '.join(CallOutcome.values)}."]},
        )
    if duration_minutes is not None and not (
        isinstance(duration_minutes, int) and 0 <= duration_minutes <= MAX_CALL_MINUTES
    ):
        raise DomainError(
            "A call lasts 0 to 1440 minutes.",
            fields={"duration_minutes": [f"Enter minutes from 0 to {MAX_CALL_MINUTES}."]},
        )


# --- tasks


def _check_task_choices(fields: dict[str, Any]) -> None:
    if "kind" in fields and fields["kind"] not in TaskKind.values:
        raise DomainError(
            f"Unknown task type {fields['kind']!r}.",
            fields={"kind": [f"Choose one of {', '.join(TaskKind.values)}."]},
        )
    if "priority" in fields and fields["priority"] not in TaskPriority.values:
        raise DomainError(
            f"Unknown priority {fields['priority']!r}.",
            fields={"priority": [f"Choose one of {', '.join(TaskPriority.values)}."]},
        )


@transaction.atomic
def task_create(
    *,
    actor: AbstractBaseUser | None,
    title: str,
    due_at: datetime | None = None,
    assignee: AbstractBaseUser | None = None,
    kind: str = TaskKind.TODO,
    priority: str = TaskPriority.NORMAL,
    notes: str = "",
    contact: Contact | None = None,
    deal: Deal | None = None,
    company: Company | None = None,
) -> Task:
    """Create a task; it is assigned to the actor unless someone else is named."""
    ensure_can_write(actor, what="tasks")
    title = title.strip()
    if not title:
        raise DomainError("A task needs a title.", fields={"title": ["This field is required."]})
    _check_task_choices({"kind": kind, "priority": priority})
    assignee = assignee or actor
    if assignee is None:
        raise DomainError("A task needs an assignee.", fields={"assignee": ["This field is required."]})
    task = Task.objects.create(
        title=title,
        kind=kind,
        priority=priority,
        notes=notes.strip(),
        due_at=due_at,
        assignee=assignee,
        contact=contact,
        deal=deal,
        company=company,
        created_by=actor,
    )
    _refresh_deals(task.deal_id)
    return task


@transaction.atomic
def task_update(*, task: Task, actor: AbstractBaseUser | None, **fields: Any) -> Task:
    """Change title, type, priority, notes, due time or assignee, and/or `done`. A new due time
    gets a new reminder."""
    ensure_can_change_task(actor, task)
    done = fields.pop("done", None)
    unknown = set(fields) - TASK_FIELDS
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} of a task.")
    if "title" in fields:
        fields["title"] = fields["title"].strip()
        if not fields["title"]:
            raise DomainError("A task needs a title.", fields={"title": ["This field is required."]})
    if "assignee" in fields and fields["assignee"] is None:
        raise DomainError("A task needs an assignee.", fields={"assignee": ["This field is required."]})
    _check_task_choices(fields)
    if "notes" in fields:
        fields["notes"] = (fields["notes"] or "").strip()
    update_fields = list(fields)
    if "due_at" in fields and fields["due_at"] != task.due_at:
        task.reminder_sent_at = None
        update_fields.append("reminder_sent_at")
    for name, value in fields.items():
        setattr(task, name, value)
    if done is not None and done != task.done:
        task.done = done
        task.done_at = timezone.now() if done else None
        update_fields += ["done", "done_at"]
    if update_fields:
        task.save(update_fields=update_fields)
    _refresh_deals(task.deal_id)
    return task


def task_complete(*, task: Task, actor: AbstractBaseUser | None) -> Task:
    return task_update(task=task, actor=actor, done=True)


def task_reopen(*, task: Task, actor: AbstractBaseUser | None) -> Task:
    return task_update(task=task, actor=actor, done=False)


@transaction.atomic
def task_delete(*, task: Task, actor: AbstractBaseUser | None) -> None:
    if not can_change_task(actor, task):
        raise Forbidden("Only the assignee, the creator or an Admin may delete this task.")
    deal_id = task.deal_id
    task.delete()
    _refresh_deals(deal_id)


# --- reminders


def tasks_send_reminders(*, now: datetime | None = None) -> int:
    """Email each assignee their open tasks due within the lead time, exactly once per task.

    One transaction per assignee claims that person's tasks (a transaction-level advisory lock on
    the assignee, then their rows FOR UPDATE and `reminder_sent_at`) and sends the email before
    committing: a concurrent run skips an assignee another run holds (SKIP LOCKED on the rows
    alone let two runs split one person's tasks into two emails), a later run finds them marked,
    and a failed send rolls the claim back so the next minute retries it. Grouping by assignee
    means one email per person, and a bad address holds back only that person's reminders.
    Returns the number of tasks reminded.
    """
    now = now or timezone.now()
    due = {
        "done": False,
        "reminder_sent_at__isnull": True,
        "due_at__lte": now + timedelta(minutes=settings.TASK_REMINDER_LEAD_MINUTES),
        "due_at__gt": now - REMINDER_MAX_LATENESS,
    }
    assignee_ids = sorted(set(Task.objects.filter(**due).values_list("assignee_id", flat=True)))
    sent = 0
    for assignee_id in assignee_ids:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_try_advisory_xact_lock(%s, %s)", [REMINDER_LOCK_NAMESPACE, assignee_id]
                )
                if not cursor.fetchone()[0]:
                    continue  # another run is reminding this person right now
            tasks = list(
                Task.objects.filter(assignee_id=assignee_id, **due)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("assignee")
                .order_by("due_at", "pk")
            )
            if not tasks:
                continue  # another run claimed them
            Task.objects.filter(pk__in=[t.pk for t in tasks]).update(reminder_sent_at=now)
            if _send_reminder(tasks):
                sent += len(tasks)
    return sent


def _send_reminder(tasks: list[Task]) -> bool:
    assignee = tasks[0].assignee
    if not assignee.email or not assignee.is_active:
        return False  # nobody to tell; the claim stands so the task is not retried every minute
    lines = [f"- {timezone.localtime(t.due_at):%H:%M} {t.title}" for t in tasks]
    subject = f"Due soon: {tasks[0].title}" if len(tasks) == 1 else f"{len(tasks)} tasks due soon"
    body = "\n".join(
        [
            "These tasks are due soon:",
            "",
            *lines,
            "",
            f"Your day: {settings.CDP_PUBLIC_HOST}{reverse('pipeline:tasks')}",
        ]
    )
    EmailMessage(subject=subject, body=body, to=[assignee.email]).send()
    return True
