"""Pages: the contact page's privacy buttons (a lazy slot: contacts may not import privacy), the
export download, the erase confirmation, and the erasure log under Settings."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from contacts import selectors as contact_selectors
from core.errors import domain_errors
from events.services import suppression
from privacy import permissions, selectors, services
from privacy.api.erasure import export_response
from privacy.forms import EraseConfirmForm
from privacy.models import ErasureStatus

PAGE_SIZE = 50


@require_GET
@domain_errors
def contact_actions(request: HttpRequest, pk: int) -> HttpResponse:
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    context = {
        "contact": contact,
        "can_export": permissions.can_export(request.user, contact),
        "can_erase": is_admin(request.user),
    }
    return render(request, "privacy/contact_actions.html", context)


@require_GET
@domain_errors
def contact_export(request: HttpRequest, pk: int) -> HttpResponse:
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    return export_response(selectors.person_export(user=request.user, contact=contact), contact_id=pk)


@require_http_methods(["GET", "POST"])
@domain_errors
def contact_erase(request: HttpRequest, pk: int) -> HttpResponse:
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    preview = selectors.person_erase_preview(user=request.user, contact=contact)
    contact = preview["contact"]
    form = EraseConfirmForm(request.POST or None, contact=contact)
    if request.method == "POST" and form.is_valid():
        erasure = services.person_erase_request(actor=request.user, contact=contact)
        return redirect(erasure)
    status = 400 if request.method == "POST" else 200
    return render(request, "privacy/erase_confirm.html", {"form": form, **preview}, status=status)


@require_GET
@domain_errors
def erasure_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.erasure_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "privacy/erasure_list.html", {"page": page, "dropped": suppression.suppressed_count()}
    )


@require_GET
@domain_errors
def erasure_detail(request: HttpRequest, pk: int) -> HttpResponse:
    erasure = selectors.erasure_get(user=request.user, request_id=pk)
    pending = erasure.status in (ErasureStatus.QUEUED, ErasureStatus.RUNNING)
    template = "privacy/erasure_detail.html"
    if request.htmx:
        template += "#erasure-status"  # the polling swap replaces only the status card
    return render(request, template, {"erasure": erasure, "pending": pending})


@require_POST
@domain_errors
def erasure_retry(request: HttpRequest, pk: int) -> HttpResponse:
    erasure = selectors.erasure_get(user=request.user, request_id=pk)
    if services.person_erase_retry(actor=request.user, request_id=erasure.pk):
        messages.success(
            request, f"Erasure {erasure.reference} is queued again; it resumes where it stopped."
        )
    else:
        messages.info(request, f"Erasure {erasure.reference} has not failed; nothing to retry.")
    return redirect(erasure)
