"""Identity's pieces of the CRM pages, and its own pages.

Contacts and pipeline may not import identity, so their pages carry lazy htmx slots that point
here: the contact page's web activity panel and combined timeline, and the deal cards' signal
slots (filled for the whole page by one request, see static/js/signals.js). Identity's own pages:
identity warnings, and hot-deal rules and blocked values (Settings, Admin).
"""

from datetime import datetime

from django.contrib import messages
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import ensure_admin
from contacts import selectors as contact_selectors
from contacts.models import Contact
from contacts.permissions import ensure_can_read
from core.errors import DomainError, domain_errors
from core.pagination import keyset_page
from core.params import parse_id
from identity import selectors
from identity.forms import BlockedValueForm, HotRuleForm, WarningFilterForm
from identity.models import BlockedValue, HotRule
from identity.services import blocked_values, hot
from pipeline import permissions as pipeline_permissions

SESSIONS_PER_PAGE = 10
EVENTS_PER_PAGE = 25
TIMELINE_PER_PAGE = 20
WARNINGS_PER_PAGE = 50
# A board shows ~20 cards per column; more ids than this in one request is not a page's worth.
MAX_SIGNAL_DEALS = 500


def _live_contact(request: HttpRequest, pk: int) -> tuple[Contact, HttpResponse | None]:
    """The contact, or a redirect to the same view for the contact a tombstone was merged into."""
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    if contact.merged_into_id is None:
        return contact, None
    survivor = contact_selectors.contact_surviving(contact=contact)
    url = reverse(request.resolver_match.view_name, args=[survivor.pk])
    if request.GET:
        url += "?" + request.GET.urlencode()
    return contact, redirect(url)


# --- the contact page: web activity panel


def _bots(request: HttpRequest) -> bool:
    """`?bots=1`: the panel shows bot-flagged traffic too (hidden by default, as segments and the
    timeline leave it out)."""
    return request.GET.get("bots") == "1"


@require_GET
@domain_errors
def web_activity(request: HttpRequest, pk: int) -> HttpResponse:
    contact, moved = _live_contact(request, pk)
    if moved:
        return moved
    bots = _bots(request)
    sessions, more_sessions = selectors.web_sessions(
        user=request.user, contact=contact, limit=SESSIONS_PER_PAGE, bots=bots
    )
    context = {
        "contact": contact,
        "identities": selectors.contact_identities(user=request.user, contact=contact),
        "attribution": selectors.contact_attribution(contact=contact),
        "sessions": sessions,
        "more_sessions": more_sessions,
        "events": selectors.web_events(user=request.user, contact=contact, size=EVENTS_PER_PAGE, bots=bots),
        "bots": bots,
        "bot_events": selectors.web_bot_event_count(user=request.user, contact=contact),
        "now": timezone.now(),
    }
    return render(request, "identity/web_activity.html", context)


@require_GET
@domain_errors
def web_sessions(request: HttpRequest, pk: int) -> HttpResponse:
    """Older sessions ("Load more"): the visits that started before `before`."""
    contact, moved = _live_contact(request, pk)
    if moved:
        return moved
    try:
        before = datetime.fromisoformat(request.GET.get("before", ""))
    except ValueError:
        return HttpResponseBadRequest("`before` must be an ISO 8601 time.")
    if timezone.is_naive(before):
        return HttpResponseBadRequest("`before` must carry a time zone.")
    bots = _bots(request)
    sessions, more = selectors.web_sessions(
        user=request.user, contact=contact, started_before=before, limit=SESSIONS_PER_PAGE, bots=bots
    )
    context = {"contact": contact, "sessions": sessions, "more_sessions": more, "bots": bots}
    return render(request, "identity/web_activity.html#session-rows", context)


@require_GET
@domain_errors
def web_events(request: HttpRequest, pk: int) -> HttpResponse:
    """Older events ("Load more"), by keyset cursor."""
    contact, moved = _live_contact(request, pk)
    if moved:
        return moved
    bots = _bots(request)
    page = selectors.web_events(
        user=request.user, contact=contact, cursor=request.GET.get("cursor"), size=EVENTS_PER_PAGE, bots=bots
    )
    context = {"contact": contact, "events": page, "bots": bots}
    return render(request, "identity/web_activity.html#event-rows", context)


# --- the contact page: combined timeline


@require_GET
@domain_errors
def contact_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """The timeline card's body: the activities composer (the pipeline panel, without its own
    feed) and one page of the combined feed. `?cursor=` answers the next page of items only;
    `?part=feed` the first page of items (what a post in the composer refreshes)."""
    contact, moved = _live_contact(request, pk)
    if moved:
        return moved
    cursor = request.GET.get("cursor")
    page = selectors.contact_timeline(
        user=request.user, contact=contact, cursor=cursor, size=TIMELINE_PER_PAGE
    )
    for item in page.items:
        if item.kind == "activity":  # the feed item's edit and delete controls
            item.obj.editable = pipeline_permissions.can_change_activity(request.user, item.obj)
    context = {
        "contact": contact,
        "page": page,
        "record": contact,
        "now": timezone.now(),
        "deal_links": pipeline_permissions.can_read(request.user),  # task entries link their deal
    }
    if cursor or request.GET.get("part") == "feed":
        return render(request, "identity/timeline.html#timeline-items", context)
    return render(request, "identity/timeline.html", context)


# --- deal cards and the deal page: behavioural signals


def _deal_ids(raw: str) -> list[int] | None:
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        deal_id = parse_id(part)
        if deal_id is None:
            return None
        ids.append(deal_id)
    return ids


@require_GET
@domain_errors
def deal_signals(request: HttpRequest) -> HttpResponse:
    """Signals for the deal cards on a page: `?deals=1,2,3` answers one out-of-band swap per deal
    (an empty slot for a deal with nothing to show, so the page does not ask again)."""
    ensure_can_read(request.user)
    ids = _deal_ids(request.GET.get("deals", ""))
    if ids is None:
        return HttpResponseBadRequest("`deals` must be a comma-separated list of deal ids.")
    if len(ids) > MAX_SIGNAL_DEALS:
        return HttpResponseBadRequest(f"At most {MAX_SIGNAL_DEALS} deals per request.")
    signals = selectors.deal_signals(deal_ids=ids)
    return render(request, "identity/_deal_signals.html", {"signals": sorted(signals.items())})


# --- identity warnings


@require_GET
@domain_errors
def warning_list(request: HttpRequest) -> HttpResponse:
    form = WarningFilterForm(request.GET)
    kind = form.cleaned_data.get("kind") if form.is_valid() else None
    warnings = selectors.identity_warning_list(user=request.user, kind=kind or None)
    page = keyset_page(
        warnings,
        key=F("created_at"),
        descending=True,
        cursor=request.GET.get("cursor"),
        size=WARNINGS_PER_PAGE,
    )
    query = {"kind": kind} if kind else {}
    context = {"form": form, "page": page, "kind": kind or "", "query": query}
    template = "identity/warnings.html"
    if request.htmx and request.htmx.target == "warning-table":
        template += "#warning-table"
    return render(request, template, context)


# --- Settings: hot-deal rules and blocked values (Admin)


SETTINGS_ADMIN_ONLY = "Only Admins change identity settings."


def _rule_form(rule: HotRule, data=None) -> HotRuleForm:
    return HotRuleForm(data, instance=rule, prefix=f"rule{rule.pk}", form_id=f"rule-form-{rule.pk}")


def _settings_page(
    request: HttpRequest, *, status: int = 200, rule_form=None, blocked_form=None, edit_forms=None
):
    rules = selectors.hot_rule_list()
    edit_forms = edit_forms or {}
    context = {
        "rules": [(rule, edit_forms.get(rule.pk) or _rule_form(rule)) for rule in rules],
        "rule_form": rule_form or HotRuleForm(prefix="new"),
        "blocked": selectors.blocked_value_list(),
        "blocked_form": blocked_form or BlockedValueForm(),
    }
    return render(request, "identity/settings.html", context, status=status)


@require_GET
@domain_errors
def identity_settings(request: HttpRequest) -> HttpResponse:
    ensure_admin(request.user, message=SETTINGS_ADMIN_ONLY)
    return _settings_page(request)


def _apply_errors(form, exc: DomainError) -> None:
    if not exc.fields:
        form.add_error(None, exc.message)
    for name, errors in exc.fields.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


@require_POST
@domain_errors
def hot_rule_create(request: HttpRequest) -> HttpResponse:
    ensure_admin(request.user, message=SETTINGS_ADMIN_ONLY)
    form = HotRuleForm(request.POST, prefix="new")
    if form.is_valid():
        try:
            rule = hot.hot_rule_create(actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Rule “{rule.name}” added.")
            return redirect("identity:settings")
    return _settings_page(request, status=422, rule_form=form)


@require_POST
@domain_errors
def hot_rule_update(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_admin(request.user, message=SETTINGS_ADMIN_ONLY)
    rule = get_object_or_404(HotRule, pk=pk)
    form = _rule_form(rule, data=request.POST)
    if form.is_valid():
        try:
            rule = hot.hot_rule_update(actor=request.user, rule=rule, **form.cleaned_data)
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Rule “{rule.name}” saved.")
            return redirect("identity:settings")
    return _settings_page(request, status=422, edit_forms={rule.pk: form})


@require_POST
@domain_errors
def hot_rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_admin(request.user, message=SETTINGS_ADMIN_ONLY)
    rule = get_object_or_404(HotRule, pk=pk)
    hot.hot_rule_delete(actor=request.user, rule=rule)
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("identity:settings")


@require_POST
@domain_errors
def blocked_value_add(request: HttpRequest) -> HttpResponse:
    ensure_admin(request.user, message=SETTINGS_ADMIN_ONLY)
    form = BlockedValueForm(request.POST)
    if form.is_valid():
        try:
            blocked = blocked_values.blocked_value_add(actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"“{blocked.value}” is now ignored for {blocked.kind or 'every kind'}.")
            return redirect(reverse("identity:settings") + "#blocked-values")
    return _settings_page(request, status=422, blocked_form=form)


@require_POST
@domain_errors
def blocked_value_remove(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_admin(request.user, message=SETTINGS_ADMIN_ONLY)
    blocked = get_object_or_404(BlockedValue, pk=pk)
    blocked_values.blocked_value_remove(actor=request.user, blocked=blocked)
    messages.success(request, f"“{blocked.value}” is no longer blocked.")
    return redirect(reverse("identity:settings") + "#blocked-values")
