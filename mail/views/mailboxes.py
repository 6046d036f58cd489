"""Settings → Email: the user's connected mailboxes (and, for Admins, the workspace dropbox) with
their sync health, connecting one (tested before it is saved), choosing folders and the start
date with a dry-run count, starting the first import, Retry, pause and disconnect."""

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_admin
from core.errors import DomainError, Forbidden, domain_errors
from mail.crypto import secret_encrypt
from mail.models import Mailbox, MailboxKind, Security, SkippedMessage, SyncState
from mail.services import mailboxes as services
from mail.services.auth import MailServerError
from mail.tasks import mailbox_sync

SKIPPED_SHOWN = 50


class MailboxForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        help_text="An app password where the provider asks for one (Gmail, iCloud, Outlook with 2FA). "
        "Stored encrypted; never shown again.",
    )

    class Meta:
        model = Mailbox
        fields = [
            "email_address",
            "display_name",
            "imap_host",
            "imap_port",
            "imap_security",
            "username",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "unknown_policy",
            "deal_link_limit",
            "daily_send_cap",
            "attachment_max_bytes",
            "track_by_default",
        ]
        labels = {
            "imap_host": "IMAP server",
            "imap_port": "IMAP port",
            "imap_security": "IMAP security",
            "smtp_host": "SMTP server",
            "smtp_port": "SMTP port",
            "smtp_security": "SMTP security",
            "unknown_policy": "Unknown addresses",
            "deal_link_limit": "Open deals to link per contact",
            "daily_send_cap": "Sends per day (cap)",
            "attachment_max_bytes": "Largest attachment kept (bytes)",
            "track_by_default": "Track opens and clicks by default",
        }
        help_texts = {
            "smtp_host": "Leave empty to sync only (no sending from the CRM).",
            "imap_security": "“None” sends your password in clear: only for a server on this machine or a "
            "trusted network.",
        }

    def __init__(self, *args, creating: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.creating = creating
        if creating:
            self.fields["password"].required = True
        else:
            self.fields["password"].help_text = "Leave empty to keep the stored password."
        for field in self.fields.values():
            css = "form-check-input" if isinstance(field.widget, forms.CheckboxInput) else "form-control"
            if isinstance(field.widget, forms.Select):
                css = "form-select"
            field.widget.attrs.setdefault("class", css + " form-control-sm" if css == "form-control" else css)

    def clean(self):
        data = super().clean()
        for prefix in ("imap", "smtp"):
            port = data.get(f"{prefix}_port")
            if port is not None and not 1 <= port <= 65535:
                self.add_error(f"{prefix}_port", "A port is a number from 1 to 65535.")
        return data


def _fields(form: MailboxForm) -> dict:
    return {k: v for k, v in form.cleaned_data.items() if k != "password"}


def _health(mailbox: Mailbox) -> dict:
    return {
        "mailbox": mailbox,
        "skipped": mailbox.skipped.count(),
        "running": mailbox.sync_lease_until is not None,
    }


@require_GET
def mailboxes(request: HttpRequest) -> HttpResponse:
    own = Mailbox.objects.filter(owner=request.user, kind=MailboxKind.PERSONAL).order_by("email_address")
    dropbox = Mailbox.objects.filter(kind=MailboxKind.DROPBOX).first() if is_admin(request.user) else None
    return render(
        request,
        "mail/mailboxes.html",
        {
            "rows": [_health(m) for m in own],
            "dropbox": _health(dropbox) if dropbox else None,
            "can_dropbox": is_admin(request.user),
        },
    )


def _tested(form: MailboxForm, candidate: Mailbox) -> services.ConnectionReport | None:
    """Try the servers with what the form holds; the failures become form errors."""
    report = services.connection_test(mailbox=candidate)
    if report.imap_error:
        form.add_error(None, report.imap_error)
    if report.smtp_error:
        form.add_error(None, report.smtp_error + " (clear the SMTP server to connect for syncing only)")
    return report if report.ok else None


@require_http_methods(["GET", "POST"])
@domain_errors
def mailbox_new(request: HttpRequest) -> HttpResponse:
    dropbox = request.GET.get("dropbox") == "1"
    if dropbox and not is_admin(request.user):
        raise Forbidden("Only an Admin can set up the workspace dropbox.")
    initial = {"email_address": request.user.email, "username": request.user.email}
    form = MailboxForm(request.POST or None, creating=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password"]
        candidate = Mailbox(**_fields(form), secret_encrypted=secret_encrypt(password))
        report = _tested(form, candidate)
        if report is not None:
            try:
                mailbox = services.mailbox_create(
                    actor=request.user,
                    password=password,
                    dropbox=dropbox,
                    folders=services.default_folders(report.folders),
                    **_fields(form),
                )
            except DomainError as exc:
                if exc.http_status in (403, 404):
                    raise
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, "Connected. Choose the folders and the start date, then start the import."
                )
                return redirect("mail:mailbox_detail", mailbox.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "mail/mailbox_form.html", {"form": form, "dropbox": dropbox}, status=status)


@require_http_methods(["GET", "POST"])
@domain_errors
def mailbox_edit(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    form = MailboxForm(request.POST or None, instance=mailbox, creating=False)
    if request.method == "POST" and form.is_valid():
        # The form wrote onto the instance; test what it would become before saving any of it.
        password = form.cleaned_data["password"]
        if password:
            mailbox.secret_encrypted = secret_encrypt(password)
        if _tested(form, mailbox) is not None:
            fresh = services.mailbox_for(user=request.user, mailbox_id=pk)
            services.mailbox_update(actor=request.user, mailbox=fresh, password=password, **_fields(form))
            messages.success(request, "Saved; the connection works.")
            return redirect("mail:mailbox_detail", pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "mail/mailbox_form.html", {"form": form, "mailbox": mailbox}, status=status)


@require_GET
@domain_errors
def mailbox_detail(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    choosing = mailbox.sync_state == SyncState.NEW or request.GET.get("folders") == "1"
    folders, folders_error = services.server_folders(mailbox=mailbox) if choosing else ([], "")
    skipped = SkippedMessage.objects.filter(mailbox=mailbox).order_by("-created_at", "-pk")[:SKIPPED_SHOWN]
    return render(
        request,
        "mail/mailbox_detail.html",
        {
            **_health(mailbox),
            "choosing": choosing,
            "server_folders": folders,
            "folders_error": folders_error,
            "skipped_rows": skipped,
            "counts": request.session.pop(f"mail-dry-run-{pk}", None),
            "cursors": mailbox.cursors.order_by("folder"),
            "plain_text": Security.NONE in (mailbox.imap_security, mailbox.smtp_security),
        },
    )


@require_POST
@domain_errors
def mailbox_folders(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the folders and the start date, then count what the first import would read."""
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    chosen = request.POST.getlist("folders")
    since_raw = (request.POST.get("sync_since") or "").strip()
    try:
        since = forms.DateField().clean(since_raw) if since_raw else None
    except forms.ValidationError:
        messages.error(request, "The start date is not a date (YYYY-MM-DD).")
        return redirect(f"{_detail(pk)}?folders=1")
    if not chosen:
        messages.error(request, "Choose at least one folder.")
        return redirect(f"{_detail(pk)}?folders=1")
    services.mailbox_update(actor=request.user, mailbox=mailbox, folders=chosen, sync_since=since)
    try:
        counts = services.dry_run_count(mailbox=mailbox)
    except MailServerError as exc:
        messages.error(request, str(exc))
    else:
        request.session[f"mail-dry-run-{pk}"] = counts
    return redirect(f"{_detail(pk)}?folders=1" if mailbox.sync_state == SyncState.NEW else _detail(pk))


def _detail(pk: int) -> str:
    return reverse("mail:mailbox_detail", args=[pk])


def _queue_sync(mailbox: Mailbox) -> None:
    transaction.on_commit(lambda: mailbox_sync.delay(mailbox.pk))


@require_POST
@domain_errors
def mailbox_start(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    services.mailbox_start(actor=request.user, mailbox=mailbox)
    _queue_sync(mailbox)
    messages.success(request, "Import started: new mail appears on your contacts' timelines as it is read.")
    return redirect("mail:mailbox_detail", pk)


@require_POST
@domain_errors
def mailbox_retry(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    if mailbox.sync_state in (SyncState.NEW, SyncState.PAUSED):
        messages.error(request, "Start (or resume) the mailbox first.")
    else:
        _queue_sync(mailbox)
        messages.success(request, "Sync queued: this page shows the result when it has run.")
    return redirect("mail:mailbox_detail", pk)


@require_POST
@domain_errors
def mailbox_test(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    report = services.connection_test(mailbox=mailbox)
    if report.ok:
        smtp = " and SMTP" if report.smtp_tested else ""
        messages.success(request, f"IMAP{smtp}: connected and logged in ({len(report.folders)} folders).")
    for error in (report.imap_error, report.smtp_error):
        if error:
            messages.error(request, error)
    return redirect("mail:mailbox_detail", pk)


@require_POST
@domain_errors
def mailbox_pause(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    paused = request.POST.get("paused") != "0"
    services.mailbox_pause(actor=request.user, mailbox=mailbox, paused=paused)
    messages.success(request, "Paused: nothing is imported until you resume." if paused else "Resumed.")
    return redirect("mail:mailbox_detail", pk)


@require_POST
@domain_errors
def mailbox_delete(request: HttpRequest, pk: int) -> HttpResponse:
    mailbox = services.mailbox_for(user=request.user, mailbox_id=pk)
    try:
        services.mailbox_delete(actor=request.user, mailbox=mailbox)
    except DomainError as exc:
        if exc.http_status in (403, 404):
            raise
        messages.error(request, exc.message)
        return redirect("mail:mailbox_detail", pk)
    messages.success(request, f"Disconnected {mailbox.email_address}. Mail linked to records stays on them.")
    return redirect("mail:mailboxes")
