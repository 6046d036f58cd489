"""The notifications page, the navbar bell it counts for, and the email preference in Settings."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors
from accounts.forms import NotificationPreferencesForm
from accounts.services import notifications

PAGE_SIZE = 50


def _bell_context(request: HttpRequest) -> dict:
    count = selectors.notification_unread_count(user=request.user)
    return {"unread": count, "unread_capped": count >= selectors.UNREAD_COUNT_CAP}


@require_GET
def notification_bell(request: HttpRequest) -> HttpResponse:
    """The bell with its unread count; base.html loads it lazily and refreshes it every minute."""
    return render(request, "accounts/_notification_bell.html", _bell_context(request))


@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    items = list(selectors.notification_list(user=request.user)[:PAGE_SIZE])
    context = {"notifications": items, **_bell_context(request)}
    return render(request, "accounts/notifications.html", context)


@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    notifications.notification_mark_read(user=request.user, notification_id=pk)
    return _back_to_list(request)


@require_POST
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Follow a notification's link and mark it read (a POST: reading changes state)."""
    notification = selectors.notification_list(user=request.user).filter(pk=pk).first()
    if notification is None:
        raise Http404("No such notification.")
    notifications.notification_mark_read(user=request.user, notification_id=pk)
    target = notification.url
    if not target or not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect("accounts:notifications")
    return redirect(target)


@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = notifications.notification_mark_all_read(user=request.user)
    if not request.htmx:
        messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return _back_to_list(request)


def _back_to_list(request: HttpRequest) -> HttpResponse:
    if request.htmx:
        return notification_list_partial(request)
    return redirect("accounts:notifications")


def notification_list_partial(request: HttpRequest) -> HttpResponse:
    """The list and (out of band) the bell, after a mark-read post."""
    items = list(selectors.notification_list(user=request.user)[:PAGE_SIZE])
    context = {"notifications": items, "oob": True, **_bell_context(request)}
    return render(request, "accounts/notifications.html#notification-list", context)


@require_POST
def notification_preferences(request: HttpRequest) -> HttpResponse:
    form = NotificationPreferencesForm(request.POST)
    form.is_valid()  # a checkbox: absent means off, so the form is always valid
    notifications.user_preferences_update(
        user=request.user, email_notifications=form.cleaned_data["email_notifications"]
    )
    state = "on" if form.cleaned_data["email_notifications"] else "off"
    messages.success(request, f"Email notifications are {state}.")
    return redirect("accounts:settings")
