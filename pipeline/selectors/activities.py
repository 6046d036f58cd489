"""Reads for activities and tasks: record feeds, the "My day" page and the API lists."""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from contacts import selectors as contact_selectors
from contacts.permissions import ensure_can_read
from core.errors import NotFound
from pipeline.models import Activity, Deal, Task

FEED_LIMIT = 50


def _record_q(*, contact_id: int | None, deal_id: int | None, company_id: int | None) -> Q:
    if contact_id is not None:
        return Q(contact_id=contact_id)
    if deal_id is not None:
        return Q(deal_id=deal_id)
    if company_id is not None:
        # A company's feed also shows what was logged on its people.
        return Q(company_id=company_id) | Q(contact__company_id=company_id)
    raise ValueError("a record is required")


def activity_feed(
    *,
    user: AbstractBaseUser,
    contact_id: int | None = None,
    deal_id: int | None = None,
    company_id: int | None = None,
    limit: int = FEED_LIMIT,
) -> list[Activity]:
    """A record's activities, newest first."""
    ensure_can_read(user)
    q = _record_q(contact_id=contact_id, deal_id=deal_id, company_id=company_id)
    return list(
        Activity.objects.filter(q)
        .select_related("author", "contact", "deal", "company")
        .order_by("-occurred_at", "-pk")[:limit]
    )


@dataclass
class TaskEvent:
    """A task's creation or completion, shown on timelines next to the activities. Derived from
    the task row itself, so a reopened task loses its "completed" entry and a deleted task leaves
    none: the timeline says what is true now, like the task list."""

    kind: str  # "task_created" or "task_done"
    at: datetime
    task: Task

    @property
    def key(self) -> int:
        return self.task.pk


def task_events(
    *,
    user: AbstractBaseUser,
    contact_id: int | None = None,
    deal_id: int | None = None,
    company_id: int | None = None,
    until: datetime | None = None,
    limit: int = FEED_LIMIT,
) -> list[TaskEvent]:
    """A record's task created / completed entries at or before `until`, newest first: at most
    `limit` of each kind (two indexed reads), so a caller merging them with other sources cuts one
    page from the top of each."""
    ensure_can_read(user)
    q = _record_q(contact_id=contact_id, deal_id=deal_id, company_id=company_id)
    tasks = Task.objects.filter(q).select_related("assignee", "created_by", "deal", "contact")
    created = tasks.order_by("-created_at", "-pk")
    done = tasks.filter(done=True, done_at__isnull=False).order_by("-done_at", "-pk")
    if until is not None:
        created, done = created.filter(created_at__lte=until), done.filter(done_at__lte=until)
    events = [TaskEvent("task_created", t.created_at, t) for t in created[:limit]]
    events += [TaskEvent("task_done", t.done_at, t) for t in done[:limit]]
    return sorted(events, key=lambda e: (e.at, e.kind == "task_done", e.key), reverse=True)


@dataclass
class FeedItem:
    kind: str  # "activity", "task_created", "task_done", or a TIMELINE_SOURCE_HOOKS kind ("email")
    at: datetime
    obj: Any  # an Activity, a TaskEvent or a hook's entry


def record_feed(
    *,
    user: AbstractBaseUser,
    contact_id: int | None = None,
    deal_id: int | None = None,
    company_id: int | None = None,
    limit: int = FEED_LIMIT,
) -> list[FeedItem]:
    """A record's activity panel feed: its activities, its tasks created and completed and what
    TIMELINE_SOURCE_HOOKS add (its email), newest first."""
    ids = {"contact_id": contact_id, "deal_id": deal_id, "company_id": company_id}
    items = [FeedItem("activity", a.occurred_at, a) for a in activity_feed(user=user, limit=limit, **ids)]
    items += [FeedItem(e.kind, e.at, e) for e in task_events(user=user, limit=limit, **ids)]
    # settings.TIMELINE_SOURCE_HOOKS: sources higher apps add (mail: the email linked to the
    # record), called with user=, one of contact_id= / company_id= / deal_id=, until= and limit=;
    # each returns at most `limit` entries, newest first, with .kind, .at and .template (the
    # partial the feed includes). pipeline imports no higher app.
    record = {name: value for name, value in ids.items() if value is not None}
    for path in getattr(settings, "TIMELINE_SOURCE_HOOKS", []):
        entries = import_string(path)(user=user, until=None, limit=limit, **record)
        items += [FeedItem(e.kind, e.at, e) for e in entries]
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]


def activity_list(*, user: AbstractBaseUser, filters: dict[str, Any] | None = None) -> QuerySet[Activity]:
    ensure_can_read(user)
    filters = filters or {}
    activities = Activity.objects.all()
    for name in ("contact", "deal", "company", "author"):
        if filters.get(name) is not None:
            activities = activities.filter(**{f"{name}_id": filters[name]})
    if filters.get("kind"):
        activities = activities.filter(kind=filters["kind"])
    return activities.order_by("-occurred_at", "-pk")


def activity_get(*, user: AbstractBaseUser, activity_id: int) -> Activity:
    ensure_can_read(user)
    activity = Activity.objects.select_related("author").filter(pk=activity_id).first()
    if activity is None:
        raise NotFound(f"Activity {activity_id} does not exist.")
    return activity


def tasks_for_record(
    *,
    user: AbstractBaseUser,
    contact_id: int | None = None,
    deal_id: int | None = None,
    company_id: int | None = None,
    limit: int = FEED_LIMIT,
) -> list[Task]:
    """A record's open tasks, soonest first (no due time last)."""
    ensure_can_read(user)
    if company_id is not None:
        q = Q(company_id=company_id)  # a company's own tasks; its people's tasks are on their pages
    else:
        q = _record_q(contact_id=contact_id, deal_id=deal_id, company_id=None)
    return list(
        Task.objects.filter(q, done=False)
        .select_related("assignee", "deal")
        .order_by("due_at", "pk")[:limit]  # Postgres sorts NULLs last ascending
    )


def task_list(
    *, user: AbstractBaseUser, filters: dict[str, Any] | None = None, now: datetime | None = None
) -> QuerySet[Task]:
    """Tasks for the API: filters assignee (id or "me"), done, due ("overdue", "today", "upcoming",
    "none"), contact, deal, company."""
    ensure_can_read(user)
    filters = filters or {}
    tasks = Task.objects.all()
    assignee = filters.get("assignee")
    if assignee is not None:
        tasks = tasks.filter(assignee_id=user.pk if assignee == "me" else assignee)
    if filters.get("done") is not None:
        tasks = tasks.filter(done=filters["done"])
    if filters.get("due"):
        tasks = tasks.filter(_due_q(filters["due"], now or timezone.now()))
    for name in ("contact", "deal", "company"):
        if filters.get(name) is not None:
            tasks = tasks.filter(**{f"{name}_id": filters[name]})
    return tasks.order_by("done", "due_at", "pk")


def _day_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _due_q(due: str, now: datetime) -> Q:
    start, end = _day_bounds(now)
    return {
        "overdue": Q(due_at__lt=now, done=False),
        "today": Q(due_at__gte=start, due_at__lt=end),
        "upcoming": Q(due_at__gte=end),
        "none": Q(due_at__isnull=True),
    }[due]


def task_get(*, user: AbstractBaseUser, task_id: int) -> Task:
    ensure_can_read(user)
    task = Task.objects.select_related("assignee", "contact", "deal", "company").filter(pk=task_id).first()
    if task is None:
        raise NotFound(f"Task {task_id} does not exist.")
    return task


@dataclass
class MyDay:
    overdue: list[Task] = field(default_factory=list)
    today: list[Task] = field(default_factory=list)
    upcoming: list[Task] = field(default_factory=list)
    someday: list[Task] = field(default_factory=list)  # no due time
    done: list[Task] = field(default_factory=list)
    truncated: bool = False  # more tasks than the page shows


def my_day(
    *,
    user: AbstractBaseUser,
    assignee_id: int,
    q: str = "",
    show_done: bool = False,
    now: datetime | None = None,
    limit: int = 200,
) -> MyDay:
    """One person's tasks split into overdue, today (not yet overdue), upcoming and undated, in one
    query. Done tasks (finished today, or all with `show_done`) stay visible under their section
    so a ticked checkbox does not make the row vanish. At most `limit` tasks, soonest first: the
    page renders ~1 ms per row, so a backlog of hundreds is cut off with a note, not rendered."""
    ensure_can_read(user)
    now = now or timezone.now()
    start, end = _day_bounds(now)
    tasks = Task.objects.filter(assignee_id=assignee_id)
    if not show_done:
        tasks = tasks.filter(Q(done=False) | Q(done_at__gte=start))
    if q.strip():
        tasks = tasks.filter(title__icontains=q.strip())
    tasks = list(tasks.select_related("contact", "deal", "company").order_by("due_at", "pk")[: limit + 1])
    day = MyDay(truncated=len(tasks) > limit)
    for task in tasks[:limit]:
        if task.due_at is None:
            day.someday.append(task)
        elif task.due_at < now and not task.done:
            day.overdue.append(task)
        elif task.due_at < end:
            day.today.append(task) if task.due_at >= start else day.done.append(task)
        else:
            day.upcoming.append(task)
    return day


def record_get(*, user: AbstractBaseUser, scope: str, pk: int):
    """The contact, company or deal an activity panel belongs to."""
    if scope == "contact":
        return contact_selectors.contact_get(user=user, contact_id=pk)
    if scope == "company":
        return contact_selectors.company_get(user=user, company_id=pk)
    ensure_can_read(user)
    deal = Deal.objects.filter(pk=pk).first()
    if deal is None:
        raise NotFound(f"Deal {pk} does not exist.")
    return deal


def deal_options(*, user: AbstractBaseUser, q: str, limit: int = 20) -> list[Deal]:
    """Open deals whose title contains `q`, for the task form's deal picker."""
    ensure_can_read(user)
    deals = Deal.objects.filter(status="open")
    if q.strip():
        deals = deals.filter(title__icontains=q.strip())
    return list(deals.order_by("-updated_at", "-pk")[:limit])


def assignee_choices(*, user: AbstractBaseUser) -> list:
    """Who a task may be assigned to (Admins and Sales), the current user first."""
    users = contact_selectors.owner_choices()
    return sorted(users, key=lambda u: u.pk != user.pk)


def activities_of_contacts(*, contact_ids: Collection[int]) -> QuerySet[Activity]:
    """Activities logged on these contacts, oldest first (privacy's export)."""
    return Activity.objects.filter(contact_id__in=contact_ids).order_by("occurred_at", "pk")


def tasks_of_contacts(*, contact_ids: Collection[int]) -> QuerySet[Task]:
    return Task.objects.filter(contact_id__in=contact_ids).order_by("pk")


# --- the home page


def tasks_due(
    *, user: AbstractBaseUser, now: datetime | None = None, limit: int = 10
) -> tuple[list[Task], int]:
    """The user's open tasks due by the end of today (overdue first, then today's), at most
    `limit`, with how many there are in all. Two queries."""
    ensure_can_read(user)
    _, end = _day_bounds(now or timezone.now())
    tasks = Task.objects.filter(assignee_id=user.pk, done=False, due_at__lt=end)
    rows = list(tasks.select_related("contact", "deal", "company").order_by("due_at", "pk")[:limit])
    total = len(rows) if len(rows) < limit else tasks.count()
    return rows, total


def activities_on_owned_records(
    *, user: AbstractBaseUser, now: datetime | None = None, limit: int = 10
) -> list[Activity]:
    """What happened lately on the deals, contacts and companies the user owns (by anyone),
    newest first; scheduled activities still in the future are left out."""
    ensure_can_read(user)
    mine = Q(deal__owner_id=user.pk) | Q(contact__owner_id=user.pk) | Q(company__owner_id=user.pk)
    return list(
        Activity.objects.filter(mine, occurred_at__lte=now or timezone.now())
        .select_related("author", "contact", "deal", "company")
        .order_by("-occurred_at", "-pk")[:limit]
    )
