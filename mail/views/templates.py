"""Settings → Email templates: the user's templates and the shared ones (list, filter mine/shared),
create, edit, delete and duplicate, a merge-field picker, and a preview as a chosen contact (and
deal) that names every field with no value instead of sending a blank."""

import re

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import selectors as contact_selectors
from core.errors import DomainError, NotFound, domain_errors
from core.params import parse_id
from mail.models import EmailTemplate
from mail.selectors import templates as selectors
from mail.services import templates as services
from pipeline import selectors as pipeline_selectors

# The pickers' "Name (#id)" form (pipeline's contact and deal datalists); ASCII digits only.
_PICKED = re.compile(r"\(#([0-9]+)\)\s*$")

BODY_HELP = (
    "Write the message as text, with merge fields; its line breaks are kept. Simple formatting tags "
    "(<b>, <i>, <a href>, <p>, lists) are allowed, anything else (scripts, styles) is removed when "
    "you save. The email goes out as simple HTML, with a plain-text copy for mail clients that show "
    "only text."
)


class EmailTemplateForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=998, help_text="One line; merge fields work here too.")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), strip=False, help_text=BODY_HELP)
    shared = forms.BooleanField(
        required=False,
        label="Shared with the team",
        help_text="Every user can use a shared template; only you (and Admins) can change it.",
    )

    def add_domain_error(self, exc: DomainError) -> None:
        """A service's refusal, on the fields it names (unknown merge fields, empty ones)."""
        for name, message in exc.fields.items():
            self.add_error(name if name in self.fields else None, message)
        if not exc.fields:
            self.add_error(None, exc.message)


def _picker_fields() -> list[tuple[str, list[str]]]:
    """The whitelist, grouped by object for the picker: [("contact", ["contact.first_name", ...])]."""
    groups: dict[str, list[str]] = {}
    for path in services.merge_fields_available():
        groups.setdefault(path.split(".", 1)[0], []).append(path)
    return list(groups.items())


def _form_page(
    request: HttpRequest, form: EmailTemplateForm, *, template: EmailTemplate | None = None, status: int = 200
) -> HttpResponse:
    context = {"form": form, "template": template, "merge_groups": _picker_fields()}
    return render(request, "mail/email_templates_form.html", context, status=status)


def _saved(form: EmailTemplateForm) -> dict:
    return {key: form.cleaned_data[key] for key in ("name", "subject", "body", "shared")}


@require_GET
def email_templates(request: HttpRequest) -> HttpResponse:
    scope = request.GET.get("show", "all")
    if scope not in selectors.SCOPES:
        scope = "all"
    rows = [
        (template, selectors.template_may_edit(template=template, user=request.user))
        for template in selectors.templates_available(user=request.user, scope=scope)
    ]
    return render(request, "mail/email_templates.html", {"rows": rows, "scope": scope})


@require_http_methods(["GET", "POST"])
@domain_errors
def email_template_new(request: HttpRequest) -> HttpResponse:
    form = EmailTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_create(actor=request.user, **_saved(form))
        except DomainError as exc:
            if exc.http_status in (403, 404):
                raise
            form.add_domain_error(exc)
        else:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect("mail:email_templates")
    status = 422 if request.method == "POST" else 200
    return _form_page(request, form, status=status)


@require_http_methods(["GET", "POST"])
@domain_errors
def email_template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = selectors.template_get_editable(user=request.user, pk=pk)  # before any input is read
    initial = {key: getattr(template, key) for key in ("name", "subject", "body", "shared")}
    form = EmailTemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_update(template=template, actor=request.user, **_saved(form))
        except DomainError as exc:
            if exc.http_status in (403, 404):
                raise
            form.add_domain_error(exc)
        else:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect("mail:email_templates")
    status = 422 if request.method == "POST" else 200
    return _form_page(request, form, template=template, status=status)


@require_POST
@domain_errors
def email_template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = selectors.template_get_editable(user=request.user, pk=pk)
    name = template.name
    services.template_delete(template=template, actor=request.user)
    messages.success(request, f"Template “{name}” deleted.")
    return redirect("mail:email_templates")


@require_POST
@domain_errors
def email_template_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    """A personal copy of any template the user may use (a shared one included), to edit."""
    source = selectors.template_get(user=request.user, pk=pk)
    copy = services.template_create(
        actor=request.user, name=f"Copy of {source.name}", subject=source.subject, body=source.body
    )
    messages.success(request, f"Copied to “{copy.name}”, a personal template: edit it here.")
    return redirect("mail:email_template_edit", copy.pk)


def _picked(value: str) -> int | None:
    match = _PICKED.search(value or "")
    return parse_id(match.group(1)) if match else None


@require_GET
@domain_errors
def email_template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The template filled for a contact (and a deal) the user picks, as the recipient would get
    it; fields with no value are named, and nothing is sent or stored."""
    template = selectors.template_get(user=request.user, pk=pk)
    picked_contact = (request.GET.get("contact") or "").strip()
    picked_deal = (request.GET.get("deal") or "").strip()
    errors: dict[str, str] = {}
    contact = deal = None
    if picked_contact:
        try:
            contact = contact_selectors.contact_get(
                user=request.user, contact_id=_picked(picked_contact) or 0
            )
        except NotFound:
            errors["contact"] = "Pick a contact from the list."
    if picked_deal:
        try:
            deal = pipeline_selectors.deal_get(user=request.user, deal_id=_picked(picked_deal) or 0)
        except NotFound:
            errors["deal"] = "Pick a deal from the list."
    rendered, missing = None, []
    if not errors:
        context = services.MergeContext(contact=contact, deal=deal, sender=request.user)
        try:
            rendered = services.template_render(template=template, context=context)
        except services.MergeFieldMissing as exc:
            missing = exc.missing
    return render(
        request,
        "mail/email_templates_preview.html",
        {
            "template": template,
            "may_edit": selectors.template_may_edit(template=template, user=request.user),
            "picked_contact": picked_contact,
            "picked_deal": picked_deal,
            "contact": contact,
            "deal": deal,
            "errors": errors,
            "rendered": rendered,
            "missing": missing,
        },
        status=422 if errors else 200,
    )
