"""Activity and task pages: the activity panel that contact, company and deal pages lazy-load
(composer, open tasks, feed), the "My day" task page, and the htmx actions behind them.

The panel is one partial swapped whole (`outerHTML`) after each post: the composer comes back
empty (or with its errors, as 422) and the feed and task list come back fresh, with no reload.
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from core.errors import DomainError, domain_errors
from pipeline import permissions
from pipeline.forms import (
    ActivityForm,
    MyDayFilterForm,
    MyDayTaskForm,
    TaskEditForm,
    TaskForm,
    default_due,
)
from pipeline.selectors import activities as activity_selectors
from pipeline.services import activities

SCOPES = ("contact", "company", "deal")


# --- the record panel


def _panel_context(request: HttpRequest, *, scope: str, record, activity_form=None, task_form=None) -> dict:
    user = request.user
    ids = {f"{scope}_id": record.pk}
    # Activities interleaved with tasks created and completed on the record (and its email).
    # ?feed=0: the page shows them in a feed of its own (the contact timeline), so none is read.
    feed = [] if request.GET.get("feed") == "0" else activity_selectors.record_feed(user=user, **ids)
    for item in feed:
        if item.kind == "activity":
            item.obj.editable = permissions.can_change_activity(user, item.obj)
    tasks = activity_selectors.tasks_for_record(user=user, **ids)
    for task in tasks:
        task.editable = permissions.can_change_task(user, task)
    users = activity_selectors.assignee_choices(user=user)
    return {
        "scope": scope,
        "record": record,
        "feed": feed,
        "deal_links": permissions.can_read(user),
        "tasks": tasks,
        "can_write": permissions.can_write(user),
        "activity_form": activity_form or ActivityForm(),
        "task_form": task_form
        or TaskForm(users=users, initial={"due_at": default_due(), "assignee": user.pk}),
        "now": timezone.now(),
        # Where a done checkbox lands without JavaScript: the record page, not this fragment.
        "back_url": record.get_absolute_url() if hasattr(record, "get_absolute_url") else "",
    }


def _render_panel(request, *, scope: str, pk: int, status: int = 200, **forms) -> HttpResponse:
    record = activity_selectors.record_get(user=request.user, scope=scope, pk=pk)
    context = _panel_context(request, scope=scope, record=record, **forms)
    return render(request, "pipeline/activities/panel.html#panel", context, status=status)


def _back(request: HttpRequest, *, scope: str, pk: int) -> HttpResponse:
    """Without htmx a post lands back on the record page (or the panel, for a deal)."""
    record = activity_selectors.record_get(user=request.user, scope=scope, pk=pk)
    url = getattr(record, "get_absolute_url", None)
    return redirect(url() if url else reverse(f"activities:{scope}", args=[pk]))


@require_GET
@domain_errors
def record_activities(request: HttpRequest, scope: str, pk: int) -> HttpResponse:
    return _render_panel(request, scope=scope, pk=pk)


@require_POST
@domain_errors
def activity_create(request: HttpRequest, scope: str, pk: int) -> HttpResponse:
    record = activity_selectors.record_get(user=request.user, scope=scope, pk=pk)
    # A read-only role gets 403, not form errors.
    permissions.ensure_can_write(request.user, what="activities")
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            activities.activity_log(actor=request.user, **form.cleaned_data, **{scope: record})
        except DomainError as exc:
            if exc.code == "forbidden":
                raise
            _add_domain_error(form, exc)
    if not form.is_valid():
        return _render_panel(request, scope=scope, pk=pk, status=422, activity_form=form)
    if not request.htmx:
        return _back(request, scope=scope, pk=pk)
    return _render_panel(request, scope=scope, pk=pk)


def _item_context(request: HttpRequest, activity) -> dict:
    activity.editable = permissions.can_change_activity(request.user, activity)
    return {"activity": activity, "record": activity.contact or activity.company}


@require_GET
@domain_errors
def activity_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One feed item: what Cancel in the edit form swaps back."""
    activity = activity_selectors.activity_get(user=request.user, activity_id=pk)
    return render(request, "pipeline/activities/_activity_item.html", _item_context(request, activity))


@require_http_methods(["GET", "POST"])
@domain_errors
def activity_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit in place (author or Admin): GET swaps the item for a form, POST saves and swaps back."""
    activity = activity_selectors.activity_get(user=request.user, activity_id=pk)
    if not permissions.can_change_activity(request.user, activity):
        raise PermissionDenied("Only the author or an Admin may change this activity.")
    if request.method == "GET":
        names = ("kind", "subject", "body", "call_outcome", "duration_minutes")
        initial = {f: getattr(activity, f) for f in names}
        initial["occurred_at"] = timezone.localtime(activity.occurred_at)
        form = ActivityForm(initial=initial, auto_id=f"id_edit{pk}_%s")
        return render(
            request, "pipeline/activities/_activity_edit.html", {"activity": activity, "form": form}
        )
    form = ActivityForm(request.POST, auto_id=f"id_edit{pk}_%s")
    if form.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if k != "occurred_at" or v is not None}
        try:
            activity = activities.activity_update(activity=activity, actor=request.user, **fields)
        except DomainError as exc:  # a refused value is the form's error (422), not a 500
            if exc.code == "forbidden":
                raise
            _add_domain_error(form, exc)
        else:
            if not request.htmx:
                record = activity.contact or activity.company
                return redirect(record.get_absolute_url() if record else reverse("pipeline:tasks"))
            return render(
                request, "pipeline/activities/_activity_item.html", _item_context(request, activity)
            )
    context = {"activity": activity, "form": form}
    return render(request, "pipeline/activities/_activity_edit.html", context, status=422)


@require_POST
@domain_errors
def activity_delete(request: HttpRequest, pk: int) -> HttpResponse:
    activity = activity_selectors.activity_get(user=request.user, activity_id=pk)
    activities.activity_delete(activity=activity, actor=request.user)
    if request.htmx:
        return HttpResponse("")  # the feed item swaps itself out
    return _redirect_next(request)


@require_POST
@domain_errors
def task_create(request: HttpRequest, scope: str, pk: int) -> HttpResponse:
    record = activity_selectors.record_get(user=request.user, scope=scope, pk=pk)
    permissions.ensure_can_write(request.user, what="tasks")  # a read-only role gets 403, not form errors
    users = activity_selectors.assignee_choices(user=request.user)
    form = TaskForm(request.POST, users=users)
    if form.is_valid():
        try:
            activities.task_create(actor=request.user, **form.service_values(users), **{scope: record})
        except DomainError as exc:
            if exc.code == "forbidden":
                raise
            _add_domain_error(form, exc)
    if not form.is_valid():
        return _render_panel(request, scope=scope, pk=pk, status=422, task_form=form)
    if not request.htmx:
        return _back(request, scope=scope, pk=pk)
    return _render_panel(request, scope=scope, pk=pk)


@require_POST
@domain_errors
def task_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """The done checkbox: posts `done=on` when ticked, nothing when unticked."""
    task = activity_selectors.task_get(user=request.user, task_id=pk)
    if request.POST.get("done"):
        task = activities.task_complete(task=task, actor=request.user)
    else:
        task = activities.task_reopen(task=task, actor=request.user)
    if not request.htmx:
        return _redirect_next(request)
    return _render_task_row(request, task, show_record=request.POST.get("show_record") == "1")


def _render_task_row(request: HttpRequest, task, *, show_record: bool, status: int = 200) -> HttpResponse:
    task.editable = permissions.can_change_task(request.user, task)
    context = {
        "task": task,
        "now": timezone.now(),
        "show_record": show_record,
        "back_url": _safe_next(request),
        "deal_links": permissions.can_read(request.user),
    }
    return render(request, "pipeline/activities/_task_row.html", context, status=status)


@require_http_methods(["GET", "POST"])
@domain_errors
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a task in place (assignee, creator or Admin): GET swaps the row for a form, POST saves
    and swaps the row back. `show_record` carries through so the row looks as it did."""
    task = activity_selectors.task_get(user=request.user, task_id=pk)
    permissions.ensure_can_change_task(request.user, task)
    params = request.POST if request.method == "POST" else request.GET
    show_record = params.get("show_record") == "1"
    auto_id = f"id_task{pk}_%s"
    if request.method == "GET":
        initial = {name: getattr(task, name) for name in ("title", "kind", "priority", "notes")}
        initial["due_at"] = timezone.localtime(task.due_at) if task.due_at else None
        form = TaskEditForm(initial=initial, auto_id=auto_id)
        status = 200
    else:
        form = TaskEditForm(request.POST, auto_id=auto_id)
        if form.is_valid():
            try:
                task = activities.task_update(task=task, actor=request.user, **form.cleaned_data)
            except DomainError as exc:
                if exc.code == "forbidden":
                    raise
                _add_domain_error(form, exc)
            else:
                if not request.htmx:
                    return _redirect_next(request)
                return _render_task_row(request, task, show_record=show_record)
        status = 422
    context = {"task": task, "form": form, "show_record": show_record, "back_url": _safe_next(request)}
    return render(request, "pipeline/activities/_task_edit.html", context, status=status)


def _add_domain_error(form, exc: DomainError) -> None:
    """A service's refusal on the fields it names (else on the form), like contacts' forms."""
    if not exc.fields:
        form.add_error(None, exc.message)
        return
    for name, messages in exc.fields.items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return reverse("pipeline:tasks")
    return target


def _redirect_next(request: HttpRequest) -> HttpResponse:
    return redirect(_safe_next(request))


# --- My day


def _my_day_context(request: HttpRequest, *, params=None, task_form=None) -> dict:
    """The page's filters come from the query string, or on "+ Task" posts from the filter form's
    fields the post includes, so the sections re-render as the user was looking at them."""
    admin = is_admin(request.user)
    users = activity_selectors.assignee_choices(user=request.user)
    form = MyDayFilterForm(request.GET if params is None else params, users=users if admin else [])
    form.is_valid()
    data = form.cleaned_data if form.is_bound else {}
    # Only an Admin looks at someone else's day; everyone else always sees their own.
    assignee_id = (admin and data.get("user")) or request.user.pk
    day = activity_selectors.my_day(
        user=request.user,
        assignee_id=assignee_id,
        q=data.get("q") or "",
        show_done=bool(data.get("show_done")),
    )
    for section in (day.overdue, day.today, day.upcoming, day.someday, day.done):
        for task in section:
            task.editable = permissions.can_change_task(request.user, task)
    can_write = permissions.can_write(request.user)
    if task_form is None and can_write:
        initial = {"due_at": default_due(), "assignee": assignee_id if admin else request.user.pk}
        task_form = MyDayTaskForm(users=users, initial=initial)
    return {
        "day": day,
        "form": form,
        "admin": admin,
        "now": timezone.now(),
        "assignee_id": assignee_id,
        "can_write": can_write,
        "task_form": task_form,
        "deal_links": permissions.can_read(request.user),
        # Where a done checkbox lands without JavaScript (the "+ Task" post's URL is not a page).
        "back_url": reverse("pipeline:tasks"),
    }


@require_GET
@domain_errors
def my_day(request: HttpRequest) -> HttpResponse:
    template = "pipeline/activities/my_day.html"
    if request.htmx and request.htmx.target == "task-sections":
        template += "#task-sections"
    return render(request, template, _my_day_context(request))


@require_POST
@domain_errors
def my_day_task_create(request: HttpRequest) -> HttpResponse:
    """ "+ Task" on My day. With htmx the composer and the sections swap together (the form comes
    back empty, or with its errors as 422); without, the post lands back on the page."""
    permissions.ensure_can_write(request.user, what="tasks")  # a read-only role gets 403, not form errors
    users = activity_selectors.assignee_choices(user=request.user)
    form = MyDayTaskForm(request.POST, users=users)
    if form.is_valid():
        try:
            activities.task_create(actor=request.user, **form.service_values(users))
        except DomainError as exc:
            if exc.code == "forbidden":
                raise
            _add_domain_error(form, exc)
    if not form.is_valid():
        context = _my_day_context(request, params=request.POST, task_form=form)
        template = "pipeline/activities/my_day.html"
        return render(request, template + ("#my-day-body" if request.htmx else ""), context, status=422)
    if not request.htmx:
        return redirect("pipeline:tasks")
    context = _my_day_context(request, params=request.POST)
    return render(request, "pipeline/activities/my_day.html#my-day-body", context)


@require_GET
@domain_errors
def deal_options(request: HttpRequest) -> HttpResponse:
    """The task form's deal picker: open deals matching what was typed, as datalist options."""
    deals = activity_selectors.deal_options(user=request.user, q=request.GET.get("deal", ""))
    return render(request, "pipeline/activities/_deal_options.html", {"deals": deals})
