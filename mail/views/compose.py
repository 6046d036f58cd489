"""Compose and reply from a contact, a deal or a thread: through the user's own mailbox, with a
template, merge fields that fail visibly, a preview, tracking and send later.

The body is plain text (what reps write); merge fields in the subject and body are filled at
send time from the contact, its company, the deal and the sender, and a field with no value
(and no `| default:`) stops the send with the fields named. A template fills the form with its
text, its fields already filled where they can be."""

import datetime as dt
import re

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from contacts import selectors as contact_selectors
from core.errors import DomainError, NotFound, domain_errors
from core.params import parse_id
from mail.models import EmailMessage, Mailbox, MailboxKind, OutgoingEmail, SendStatus
from mail.selectors import messages as message_selectors
from mail.selectors import templates as template_selectors
from mail.services import sending
from mail.services.templates import (
    MergeContext,
    MergeFieldMissing,
    MergeFieldUnknown,
    html_to_text,
    merge_fields_available,
    merge_render,
)
from pipeline import selectors as pipeline_selectors

_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


class ComposeForm(forms.Form):
    mailbox = forms.ModelChoiceField(queryset=Mailbox.objects.none(), label="From", empty_label=None)
    to = forms.CharField(max_length=5000, label="To")
    cc = forms.CharField(max_length=5000, required=False, label="Cc")
    bcc = forms.CharField(max_length=5000, required=False, label="Bcc")
    subject = forms.CharField(max_length=998)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), max_length=200_000)
    track = forms.BooleanField(required=False, label="Track opens and clicks")
    send_at = forms.DateTimeField(
        required=False,
        label="Send later",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    contact = forms.IntegerField(required=False, widget=forms.HiddenInput)
    deal = forms.IntegerField(required=False, widget=forms.HiddenInput)
    reply_to = forms.IntegerField(required=False, widget=forms.HiddenInput)
    template = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mailbox"].queryset = Mailbox.objects.filter(
            owner=user, kind=MailboxKind.PERSONAL
        ).exclude(smtp_host="")
        for name, field in self.fields.items():
            if isinstance(field.widget, forms.HiddenInput):
                continue
            if isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs["class"] = "form-check-input"
            elif isinstance(field.widget, forms.Select):
                field.widget.attrs["class"] = "form-select form-select-sm"
            else:
                field.widget.attrs["class"] = "form-control form-control-sm"
            field.widget.attrs.setdefault("data-testid", f"compose-{name}")

    def clean_send_at(self):
        when = self.cleaned_data.get("send_at")
        if when is not None and when <= timezone.now() - dt.timedelta(minutes=1):
            raise forms.ValidationError("That time has passed: leave it empty to send now.")
        return when


def _split(value: str) -> list[str]:
    return [part.strip() for part in (value or "").replace(";", ",").split(",") if part.strip()]


class _Records:
    """The contact, deal and replied-to message of a compose, each checked for the user."""

    def __init__(self, request: HttpRequest, source) -> None:
        user = request.user
        self.reply_to = None
        self.contact = None
        self.deal = None
        if (reply_id := parse_id(source.get("reply_to"))) is not None:
            self.reply_to = message_selectors.message_get(user=user, pk=reply_id)
        if (contact_id := parse_id(source.get("contact"))) is not None:
            self.contact = contact_selectors.contact_get(user=user, contact_id=contact_id)
        if (deal_id := parse_id(source.get("deal"))) is not None:
            self.deal = pipeline_selectors.deal_get(user=user, deal_id=deal_id)
        if self.contact is None and self.deal is not None and self.deal.contact_id is not None:
            self.contact = contact_selectors.contact_get(user=user, contact_id=self.deal.contact_id)

    def context(self, user) -> MergeContext:
        return MergeContext(contact=self.contact, deal=self.deal, sender=user)

    @property
    def back(self) -> str:
        if self.deal is not None:
            return reverse("pipeline:deal_detail", args=[self.deal.pk])
        if self.contact is not None:
            return reverse("contacts:contact_detail", args=[self.contact.pk])
        if self.reply_to is not None:
            return reverse("mail:thread", args=[self.reply_to.thread_id])
        return reverse("home")


def _reply_initial(message: EmailMessage, user) -> dict:
    own = {user.email.lower()} | set(
        Mailbox.objects.filter(owner=user).values_list("email_address", flat=True)
    )
    sent_by_me = message.from_address.lower() in own
    people = [p for p in message.participants.all() if p.address.lower() not in own]
    to = [p.address for p in people if p.role in ("to", "cc")] if sent_by_me else [message.from_address]
    subject = message.subject if message.subject.lower().startswith("re:") else f"Re: {message.subject}"
    quoted = "\n".join(
        f"> {line}" for line in (message.text_body or html_to_text(message.html_body)).splitlines()
    )
    when = timezone.localtime(message.sent_at).strftime("%a, %d %b %Y %H:%M")
    who = message.from_name or message.from_address
    return {"to": ", ".join(to), "subject": subject, "body": f"\n\nOn {when}, {who} wrote:\n{quoted}"}


def _template_initial(request: HttpRequest, records: _Records, template_id: int) -> tuple[dict, list[str]]:
    """The form filled from a template: fields filled where they have values; the ones that do
    not are left as written and named (the send stops on them until they are fixed)."""
    template = template_selectors.template_get(user=request.user, pk=template_id)
    context = records.context(request.user)
    # A body written as HTML is shown as its text; plain text as written.
    body = html_to_text(template.body) if _HTML_TAG.search(template.body) else template.body
    filled, missing = {}, []
    for name, text, kwargs in (("subject", template.subject, {"header": True}), ("body", body, {})):
        try:
            filled[name] = merge_render(text=text, context=context, **kwargs)
        except MergeFieldMissing as exc:
            filled[name] = text
            missing += exc.missing
    return {**filled, "template": template.pk}, list(dict.fromkeys(missing))


def _page(request: HttpRequest, form: ComposeForm, records: _Records, *, status=200, **extra) -> HttpResponse:
    scheduled = OutgoingEmail.objects.filter(
        sender=request.user, status=SendStatus.SCHEDULED, send_at__gt=timezone.now()
    ).order_by("send_at")[:20]
    return render(
        request,
        "mail/compose.html",
        {
            "form": form,
            "records": records,
            "templates": template_selectors.templates_available(user=request.user),
            "merge_fields": merge_fields_available(),
            "scheduled": scheduled,
            "has_mailbox": form.fields["mailbox"].queryset.exists(),
            **extra,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@domain_errors
def compose(request: HttpRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    records = _Records(request, source)
    if request.method == "GET":
        initial: dict = {
            "contact": getattr(records.contact, "pk", None),
            "deal": getattr(records.deal, "pk", None),
        }
        if records.contact is not None and records.contact.email:
            initial["to"] = records.contact.email
        missing: list[str] = []
        if records.reply_to is not None:
            initial |= _reply_initial(records.reply_to, request.user) | {"reply_to": records.reply_to.pk}
        if (template_id := parse_id(request.GET.get("template"))) is not None:
            filled, missing = _template_initial(request, records, template_id)
            initial |= filled
        form = ComposeForm(user=request.user, initial=initial)
        first = form.fields["mailbox"].queryset.first()
        if first is not None:
            form.initial.setdefault("mailbox", first.pk)
            form.initial.setdefault("track", first.track_by_default)
        return _page(request, form, records, missing=missing)

    form = ComposeForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, form, records, status=422)
    data = form.cleaned_data
    context = records.context(request.user)
    try:
        subject = merge_render(text=data["subject"], context=context, header=True)
        body = merge_render(text=data["body"], context=context)
    except (MergeFieldMissing, MergeFieldUnknown) as exc:
        form.add_error(None, exc.message)
        return _page(request, form, records, status=422)
    if request.POST.get("action") == "preview":
        return _page(request, form, records, preview={"subject": subject, "body": body})
    template = None
    if (template_id := data.get("template")) is not None:
        template = template_selectors.template_get(user=request.user, pk=template_id)
    try:
        with transaction.atomic():
            send = sending.email_send(
                sender=request.user,
                mailbox=data["mailbox"],
                to=_split(data["to"]),
                cc=_split(data["cc"]),
                bcc=_split(data["bcc"]),
                subject=subject,
                body_text=body,
                contact=records.contact,
                deal=records.deal,
                template=template,
                reply_to_message=records.reply_to,
                track=data["track"],
                send_at=data.get("send_at"),
            )
    except DomainError as exc:
        if exc.http_status in (403, 404):
            raise
        # Field errors beside their fields; the whole message on top when none of them is shown.
        shown = {name: message for name, message in exc.fields.items() if name in form.fields}
        for name, message in shown.items():
            form.add_error(name, message)
        if not shown:
            form.add_error(None, exc.message)
        return _page(request, form, records, status=422)
    if send.send_at > timezone.now():
        when = timezone.localtime(send.send_at).strftime("%Y-%m-%d %H:%M")
        messages.success(request, f"Scheduled for {when}: “{send.subject}”.")
    else:
        messages.success(request, f"Sending “{send.subject}”: it appears on the timeline once it has gone.")
    return redirect(records.back)


@require_POST
@domain_errors
def send_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    send = OutgoingEmail.objects.filter(pk=pk, sender=request.user).first()
    if send is None:
        raise NotFound("No such email.")
    try:
        sending.send_cancel(send=send, actor=request.user)
    except DomainError as exc:
        if exc.http_status in (403, 404):
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled “{send.subject}”.")
    return redirect(reverse("mail:compose"))
