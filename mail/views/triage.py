"""The Unmatched inbox (mail nothing could be linked to: link it, create the contact, ignore it)
and the never-log list (Settings → Email)."""

import re

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import ensure_admin
from accounts.roles import is_admin
from contacts import selectors as contact_selectors
from core.errors import DomainError, domain_errors
from core.params import parse_id
from mail.selectors import triage as selectors
from mail.services import contacts_by_address
from mail.services import triage as services

# The contact picker's "Name (#id)" form (pipeline's datalist); ASCII digits only.
_PICKED = re.compile(r"\(#([0-9]+)\)\s*$")

UNMATCHED_PER_PAGE = 25


class NeverLogForm(forms.Form):
    value = forms.CharField(max_length=320, label="Address or domain")


def _back(request: HttpRequest) -> str:
    cursor = request.POST.get("cursor") or ""
    url = reverse("mail:unmatched")
    return f"{url}?cursor={cursor}" if cursor else url


@require_GET
def unmatched(request: HttpRequest) -> HttpResponse:
    cursor = request.GET.get("cursor") or None
    page = selectors.unmatched_page(user=request.user, cursor=cursor, size=UNMATCHED_PER_PAGE)
    return render(
        request,
        "mail/unmatched.html",
        {"page": page, "cursor": cursor or "", "total": selectors.unmatched_count(user=request.user)},
    )


@require_POST
@domain_errors
def unmatched_link(request: HttpRequest, pk: int) -> HttpResponse:
    selectors.unmatched_copy_get(user=request.user, copy_id=pk)  # another's message: 404 first
    picked = (request.POST.get("contact") or "").strip()
    match = _PICKED.search(picked)
    contact_id = (
        parse_id(match.group(1)) if match else contacts_by_address(addresses=[picked]).get(picked.lower())
    )
    if contact_id is None:
        messages.error(request, "Pick a contact from the list, or type their exact email.")
        return redirect(_back(request))
    contact = contact_selectors.contact_get(user=request.user, contact_id=contact_id)
    services.unmatched_link_contact(copy_id=pk, contact=contact, actor=request.user)
    messages.success(request, f"Linked to {contact}.")
    return redirect(_back(request))


@require_POST
@domain_errors
def unmatched_create_contact(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        contact = services.unmatched_contact_create(
            copy_id=pk, address=request.POST.get("address", ""), actor=request.user
        )
    except DomainError as exc:
        if exc.http_status in (403, 404):
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Created {contact} and linked the message.")
    return redirect(_back(request))


@require_POST
@domain_errors
def unmatched_ignore(request: HttpRequest, pk: int) -> HttpResponse:
    services.unmatched_ignore(copy_id=pk, actor=request.user)
    messages.success(request, "Ignored: the message stays in your mailbox only.")
    return redirect(_back(request))


def _never_log_page(
    request: HttpRequest,
    *,
    form: NeverLogForm | None = None,
    workspace_form: NeverLogForm | None = None,
    status: int = 200,
) -> HttpResponse:
    entries = selectors.never_log_list(user=request.user)
    context = {
        "form": form or NeverLogForm(),
        "workspace_form": workspace_form or NeverLogForm(),
        "entries": entries,
        "can_workspace": is_admin(request.user),
    }
    return render(request, "mail/never_log.html", context, status=status)


@require_GET
def never_log(request: HttpRequest) -> HttpResponse:
    return _never_log_page(request)


def _never_log_add(request: HttpRequest, *, workspace: bool) -> HttpResponse:
    form = NeverLogForm(request.POST)
    if form.is_valid():
        try:
            entry = services.never_log_add(
                value=form.cleaned_data["value"], workspace=workspace, actor=request.user
            )
        except DomainError as exc:
            if exc.http_status in (403, 404):
                raise
            form.add_error("value", exc.message)
        else:
            whose = "anyone's mailbox" if workspace else "your mailboxes"
            messages.success(
                request, f"Mail with “{entry.value}” will not be logged from {whose} from now on."
            )
            return redirect("mail:never_log")
    key = "workspace_form" if workspace else "form"
    return _never_log_page(request, status=422, **{key: form})


@require_POST
@domain_errors
def never_log_add(request: HttpRequest) -> HttpResponse:
    """An entry for the user's own mailboxes."""
    return _never_log_add(request, workspace=False)


@require_POST
@domain_errors
def never_log_add_workspace(request: HttpRequest) -> HttpResponse:
    """An entry for everyone's mailboxes and the dropbox: Admins only, whatever the input."""
    ensure_admin(request.user, message="Only an Admin may change the workspace's never-log list.")
    return _never_log_add(request, workspace=True)


@require_POST
@domain_errors
def never_log_remove(request: HttpRequest, pk: int) -> HttpResponse:
    entry = services.never_log_remove(entry_id=pk, actor=request.user)
    messages.success(request, f"“{entry.value}” removed from the never-log list.")
    return redirect("mail:never_log")
