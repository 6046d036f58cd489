"""Segment pages: list, builder (htmx), detail, members, CSV export, webhooks, the contact panel."""

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from contacts import selectors as contact_selectors
from core.csv import stream_csv
from core.errors import DomainError, domain_errors
from core.pagination import keyset_page
from core.params import parse_id
from core.replica import replica_reads

from . import permissions, selectors, services
from .definition import builder, compiler
from .forms import MembersAddForm, SegmentForm, WebhookForm
from .models import Segment, SegmentKind
from .services import webhooks
from .tasks import segment_refresh as segment_refresh_task

MEMBERS_PAGE = 50


def _flash_error(request: HttpRequest, exc: DomainError, *, redirect_to: Any) -> HttpResponse:
    """A refused change goes back to the page with the reason; a permission refusal stays a 403."""
    if exc.http_status == 403:
        raise exc
    messages.error(request, exc.message)
    return redirect(redirect_to)


def _ensure_manage(request: HttpRequest) -> None:
    if not permissions.can_manage(request.user):
        raise PermissionDenied("Only Admin and Marketing may change segments.")


@require_GET
@domain_errors
def segment_list(request: HttpRequest) -> HttpResponse:
    segments = list(selectors.segment_list(user=request.user))
    return render(
        request,
        "segments/segment_list.html",
        {"segments": segments, "can_manage": permissions.can_manage(request.user)},
    )


def _builder_context(
    request: HttpRequest,
    *,
    segment: Segment | None,
    definition: Any,
    form: SegmentForm,
    mode: str,
    error: str = "",
    choices: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if choices is None:
        choices = selectors.builder_choices(user=request.user, kinds=builder.leaf_kinds(definition))
    return {
        "segment": segment,
        "form": form,
        "mode": mode,
        "tree": builder.nodes(definition if isinstance(definition, dict) else {}, choices=choices),
        "definition_json": json.dumps(definition or {"op": "and", "conditions": []}, indent=2),
        "error": error,
        "suggestions": selectors.builder_suggestions(),
        "leaf_types": builder.LEAF_TYPES,
        "contact_fields": [(f, compiler.field_label(f)) for f in compiler.CONTACT_FIELDS]
        + choices["custom_fields"],
        "deal_fields": [(f, compiler.field_label(f)) for f in compiler.DEAL_FIELDS],
        "other_segments": [
            s for s in selectors.segment_list(user=request.user) if segment is None or s.pk != segment.pk
        ],
    }


def _definition_from_post(request: HttpRequest) -> tuple[Any, str, str]:
    """(definition, mode, error) from the builder's inputs or its JSON editor."""
    mode = request.POST.get("mode", "builder")
    if mode == "json":
        try:
            return json.loads(request.POST.get("definition_json", "") or "{}"), mode, ""
        except ValueError as exc:
            return None, mode, f"The JSON does not parse: {exc}"
    return builder.from_form(request.POST), mode, ""


@require_http_methods(["GET", "POST"])
@domain_errors
def segment_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _ensure_manage(request)
    segment = selectors.segment_get(user=request.user, segment_id=pk) if pk else None
    if request.method == "GET":
        definition = segment.definition if segment else {"op": "and", "conditions": []}
        mode = "builder" if builder.fits_builder(definition) else "json"
        initial = (
            {"name": segment.name, "description": segment.description, "kind": segment.kind}
            if segment
            else {}
        )
        form = SegmentForm(initial=initial, editing=segment is not None)
        return render(
            request,
            "segments/segment_form.html",
            _builder_context(request, segment=segment, definition=definition, form=form, mode=mode),
        )
    definition, mode, error = _definition_from_post(request)
    action = request.POST.get("action", "save")
    choices = None
    if action == "save":
        form = SegmentForm(request.POST, editing=segment is not None)
    else:
        # Editing the rules is not saving: a segment without a name yet shows no "required" error.
        form = SegmentForm(initial=_form_initial(request.POST), editing=segment is not None)
    if action.startswith("mode:"):
        mode = action.removeprefix("mode:")
        if mode == "builder" and not builder.fits_builder(definition):
            mode, error = "json", "This definition has more than the builder shows; edit it as JSON."
    elif action == "refresh" and mode == "builder":  # a field or operator changed
        choices = selectors.builder_choices(user=request.user, kinds=builder.leaf_kinds(definition))
        definition = builder.refit(definition, choices)
    elif action != "save" and definition is not None:
        definition = builder.apply_action(definition, action)
    elif action == "save" and definition is not None and form.is_valid():
        try:
            if segment is None:
                segment = services.segment_create(
                    actor=request.user, definition=definition, **form.cleaned_data
                )
            else:
                segment = services.segment_update(
                    actor=request.user,
                    segment=segment,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    definition=None if segment.is_static else definition,
                )
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, f"Segment “{segment.name}” saved; its members are being computed.")
            return redirect(segment)
    context = _builder_context(
        request, segment=segment, definition=definition, form=form, mode=mode, error=error, choices=choices
    )
    template = "segments/segment_form.html"
    if request.htmx and action != "save":
        template += "#builder"
    refused = action == "save" and (bool(error) or definition is None or not form.is_valid())
    return render(request, template, context, status=422 if refused else 200)


def _form_initial(data: Any) -> dict[str, str]:
    """The name, description and kind as typed, to show again unvalidated."""
    return {key: data.get(key, "") for key in ("name", "description", "kind") if key in data}


@require_POST
@domain_errors
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count and sample beside the builder."""
    definition, _, error = _definition_from_post(request)
    preview = None
    if not error:
        try:
            preview = selectors.segment_preview(user=request.user, definition=definition)
        except compiler.DefinitionError as exc:
            error = exc.message
    return render(request, "segments/segment_form.html#preview", {"preview": preview, "error": error})


@require_GET
@domain_errors
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    sizes = selectors.segment_sizes(segment=segment)
    chart = {
        "labels": [s.at.strftime("%Y-%m-%d %H:%M") for s in sizes],
        "sizes": [s.size for s in sizes],
    }
    rules, invalid = None, ""
    if not segment.is_static:
        try:
            tree = compiler.parse(segment.definition)
        except compiler.DefinitionError as exc:
            invalid = exc.message
        else:
            names = selectors.segment_names(segment_ids=set(segment.depends_on or []))
            labels = selectors.value_labels(trees=[tree])
            rules = compiler.outline(tree, segment_names=names, value_labels=labels)
    can_manage = permissions.can_manage(request.user)
    context = {
        "segment": segment,
        "rules": rules,
        "invalid": invalid,
        "changes": selectors.segment_changes(segment=segment),
        "chart": chart,
        "webhooks": selectors.segment_webhooks(user=request.user, segment=segment) if can_manage else [],
        "deliveries": selectors.webhook_deliveries(user=request.user, segment=segment) if can_manage else [],
        "can_manage": can_manage,
        "can_allow_private": permissions.can_allow_private(request.user),
        "webhook_form": WebhookForm(),
        "members_form": MembersAddForm(),
    }
    return render(request, "segments/segment_detail.html", context)


@require_POST
@domain_errors
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    try:
        services.segment_delete(actor=request.user, segment=segment)
    except DomainError as exc:
        return _flash_error(request, exc, redirect_to=segment)
    messages.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("segments:list")


@require_POST
@domain_errors
def segment_recompute(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_manage(request)
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    # a wake-up after commit, like every other enqueue (inside a test's or a caller's transaction
    # the worker must not refresh a segment that is not committed, or is rolled back)
    transaction.on_commit(lambda: segment_refresh_task.delay(segment.pk))
    messages.info(request, "Recompute queued.")
    return redirect(segment)


@require_GET
@domain_errors
def segment_members(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact list filtered by segment (a segments-owned view: contacts cannot import us)."""
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    contacts = selectors.segment_members(user=request.user, segment=segment).select_related(
        "company", "owner"
    )
    page = keyset_page(
        contacts, key=F("pk"), descending=True, cursor=request.GET.get("cursor"), size=MEMBERS_PAGE
    )
    context = {
        "segment": segment,
        "page": page,
        "can_manage": permissions.can_manage(request.user) and segment.is_static,
        "members_form": MembersAddForm(),
    }
    template = "segments/segment_members.html"
    if request.htmx and request.htmx.target == "member-table":
        template += "#member-table"
    return render(request, template, context)


@require_POST
@domain_errors
def segment_members_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Static segments: add by ids/emails or CSV, remove selected; also the CRM list's
    "add selected to segment" (ids from the contact list's checkboxes)."""
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    _ensure_manage(request)
    back = request.POST.get("next") or reverse("segments:members", args=[segment.pk])
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("segments:members", args=[segment.pk])
    ids = [parse_id(value) for value in request.POST.getlist("ids")]
    if None in ids:  # a tampered form: refused whole rather than half applied
        messages.error(request, "The selection holds something that is not a contact id; nothing changed.")
        return redirect(back)
    try:
        if request.POST.get("action") == "remove":
            n = services.segment_members_remove(actor=request.user, segment=segment, contact_ids=ids)
            messages.success(request, f"{n} removed.")
            return redirect(back)
        form = MembersAddForm(request.POST, request.FILES)
        if not form.is_valid():
            messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
            return redirect(back)
        added = (
            services.segment_members_add(actor=request.user, segment=segment, contact_ids=ids) if ids else 0
        )
        not_found = 0
        for data in (
            form.cleaned_data["entries"].encode(),
            form.cleaned_data["file"] and form.cleaned_data["file"].read(),
        ):
            if data:
                result = services.segment_members_import_csv(actor=request.user, segment=segment, data=data)
                added += result["added"]
                not_found += result["not_found"]
        if not_found:
            messages.warning(request, f"{not_found} entries matched no contact.")
    except DomainError as exc:
        return _flash_error(request, exc, redirect_to=back)
    messages.success(request, f"{added} added to “{segment.name}”.")
    if request.htmx:  # from the contact list's menu: show the segment with its new members
        return HttpResponseClientRedirect(back)
    return redirect(back)


@require_GET
@domain_errors
def segment_export(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    contacts = selectors.segment_members(user=request.user, segment=segment).order_by("pk")
    header = ["id", "email", "first_name", "last_name", "phone", "company", "is_identified"]

    @replica_reads  # a large segment's export is heavy (see contacts' export)
    def rows():
        for c in contacts.iterator(chunk_size=2000):
            yield [
                c.pk,
                c.email or "",
                c.first_name,
                c.last_name,
                c.phone,
                c.company.name if c.company else "",
                c.is_identified,
            ]

    return stream_csv(filename=f"segment-{segment.pk}.csv", header=header, rows=rows())


@require_POST
@domain_errors
def webhook_add(request: HttpRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(user=request.user, segment_id=pk)
    _ensure_manage(request)  # before the form: a refused role learns nothing from its errors
    form = WebhookForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(segment)
    try:
        hook = webhooks.webhook_create(actor=request.user, segment=segment, **form.cleaned_data)
    except DomainError as exc:
        return _flash_error(request, exc, redirect_to=segment)
    messages.success(request, f"Webhook added. Its signing secret: {hook.secret}")
    return redirect(segment)


@require_POST
@domain_errors
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    hook = selectors.webhook_get(user=request.user, webhook_id=pk)
    webhooks.webhook_delete(actor=request.user, webhook=hook)
    messages.success(request, "Webhook deleted.")
    return redirect(hook.segment)


@require_POST
@domain_errors
def webhook_test(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Send test": one signed sample entry to the webhook, and its answer shown in place."""
    hook = selectors.webhook_get(user=request.user, webhook_id=pk)
    _ensure_manage(request)
    attempt = webhooks.webhook_send_test(actor=request.user, webhook=hook)
    if request.htmx:
        return render(
            request, "segments/segment_detail.html#webhook-test-result", {"hook": hook, "attempt": attempt}
        )
    if attempt.ok:
        messages.success(request, f"Test sent to {hook.url}: HTTP {attempt.status_code}.")
    else:
        messages.error(request, f"Test to {hook.url} failed: {attempt.error}")
    return redirect(hook.segment)


@require_GET
@domain_errors
def contact_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact page's lazy "Segments" slot: current segments and why the contact is in them."""
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    rows = selectors.contact_segments(user=request.user, contact=contact)
    return render(request, "segments/contact_segments.html", {"contact": contact, "rows": rows})


@require_GET
@domain_errors
def list_slot(request: HttpRequest) -> HttpResponse:
    """The contact list's lazy "Segments" menu: open a segment's members, or add the selected
    contacts to a static segment."""
    segments = list(selectors.segment_list(user=request.user))
    return render(
        request,
        "segments/contact_list_slot.html",
        {
            "segments": segments,
            "static_segments": [s for s in segments if s.kind == SegmentKind.STATIC],
            "can_manage": permissions.can_manage(request.user),
        },
    )
