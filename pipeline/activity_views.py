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
from cdp_crm.errors import DomainError, domain_errors
from pipeline import activities, activity_selectors
from pipeline.activity_forms import ActivityForm, MyDayFilterForm, TaskForm, default_due

SCOPES = ("contact", "company", "deal")


# --- the record panel


def _panel_context(request: HttpRequest, *, scope: str, record, activity_form=None, task_form=None) -> dict:
    user = request.user
    ids = {f"{scope}_id": record.pk}
    feed = activity_selectors.activity_feed(user=user, **ids)
    for activity in feed:
        activity.editable = activities.can_change_activity(user, activity)
    users = activity_selectors.assignee_choices(user=user)
    return {
        "scope": scope,
        "record": record,
        "feed": feed,
        "tasks": activity_selectors.tasks_for_record(user=user, **ids),
        "can_write": activities.can_write(user),
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
    activities.ensure_can_write(request.user, what="activities")  # a read-only role gets 403, not form errors
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            activities.activity_log(actor=request.user, **form.cleaned_data, **{scope: record})
        except DomainError as exc:
            if exc.code == "forbidden":
                raise
            form.add_error(None, exc.message)
    if not form.is_valid():
        return _render_panel(request, scope=scope, pk=pk, status=422, activity_form=form)
    if not request.htmx:
        return _back(request, scope=scope, pk=pk)
    return _render_panel(request, scope=scope, pk=pk)


def _item_context(request: HttpRequest, activity) -> dict:
    activity.editable = activities.can_change_activity(request.user, activity)
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
    if not activities.can_change_activity(request.user, activity):
        raise PermissionDenied("Only the author or an Admin may change this activity.")
    if request.method == "GET":
        initial = {f: getattr(activity, f) for f in ("kind", "subject", "body")}
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
        except DomainError as exc:
            if exc.code == "forbidden":
                raise
            form.add_error(None, exc.message)  # a form error (422), not a 500
    if form.is_valid():
        if not request.htmx:
            record = activity.contact or activity.company
            return redirect(record.get_absolute_url() if record else reverse("pipeline:tasks"))
        return render(request, "pipeline/activities/_activity_item.html", _item_context(request, activity))
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
    activities.ensure_can_write(request.user, what="tasks")  # a read-only role gets 403, not form errors
    users = activity_selectors.assignee_choices(user=request.user)
    form = TaskForm(request.POST, users=users)
    if form.is_valid():
        assignee = next((u for u in users if u.pk == form.cleaned_data["assignee"]), None)
        try:
            activities.task_create(
                actor=request.user,
                title=form.cleaned_data["title"],
                due_at=form.cleaned_data["due_at"],
                assignee=assignee,
                **{scope: record},
            )
        except DomainError as exc:
            if exc.code == "forbidden":
                raise
            form.add_error(None, exc.message)
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
    context = {
        "task": task,
        "now": timezone.now(),
        "show_record": request.POST.get("show_record") == "1",
        "back_url": _safe_next(request),
    }
    return render(request, "pipeline/activities/_task_row.html", context)


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return reverse("pipeline:tasks")
    return target


def _redirect_next(request: HttpRequest) -> HttpResponse:
    return redirect(_safe_next(request))


# --- My day


@require_GET
@domain_errors
def my_day(request: HttpRequest) -> HttpResponse:
    admin = is_admin(request.user)
    users = activity_selectors.assignee_choices(user=request.user) if admin else []
    form = MyDayFilterForm(request.GET, users=users)
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
    template = "pipeline/activities/my_day.html"
    if request.htmx and request.htmx.target == "task-sections":
        template += "#task-sections"
    context = {"day": day, "form": form, "admin": admin, "now": timezone.now(), "assignee_id": assignee_id}
    return render(request, template, context)
