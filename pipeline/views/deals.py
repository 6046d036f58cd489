"""Pipeline pages. The contact and company pages lazy-load their deals panel from here: contacts
may not import pipeline, so the app that knows deals renders them."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts.services import recent
from contacts import selectors as contact_selectors
from contacts.forms import company_picker_value
from core.errors import Conflict, NotFound, domain_errors
from core.params import parse_id
from pipeline import permissions, selectors, services
from pipeline.forms import BoardFilterForm, ContactPickerField, DealForm, contact_label
from pipeline.models import Deal, LostReason, Pipeline, Stage
from pipeline.selectors import BoardFilters


@require_GET
@domain_errors
def contact_deals(request: HttpRequest, pk: int) -> HttpResponse:
    deals = selectors.deals_for_contact(user=request.user, contact_id=pk)
    return _related_deals(request, deals, new_deal_query=f"contact={pk}")


@require_GET
@domain_errors
def company_deals(request: HttpRequest, pk: int) -> HttpResponse:
    deals = selectors.deals_for_company(user=request.user, company_id=pk)
    return _related_deals(request, deals, new_deal_query=f"company={pk}")


def _related_deals(request: HttpRequest, deals: list[Deal], *, new_deal_query: str) -> HttpResponse:
    """The deals panel, with a "+ Deal" that opens the new-deal form filled in with the record."""
    context = {
        "deals": deals,
        "can_create": permissions.can_create_deal(request.user),
        "new_deal_url": f"{reverse('pipeline:deal_create')}?{new_deal_query}",
    }
    return render(request, "pipeline/related_deals.html", context)


# --- the board


def _board_filters(request: HttpRequest, data=None) -> BoardFilters:
    data = request.GET if data is None else data
    return BoardFilterForm(data).filters(default_owner=selectors.default_owner_filter(request.user))


def _filter_query(filters: BoardFilters, pipeline: Pipeline) -> str:
    params = {"pipeline": pipeline.pk, "owner": filters.owner}
    for name in ("close_from", "close_to", "amount_min", "amount_max"):
        value = getattr(filters, name)
        if value is not None:
            params[name] = str(value)
    return urlencode(params)


def initials(user) -> str:
    if user is None:
        return ""
    first, last = (user.first_name or "").strip(), (user.last_name or "").strip()
    if first or last:
        return ((first[:1] + last[:1]) or first[:2]).upper()
    return user.get_username()[:2].upper()


def _url_maker(name: str):
    """reverse() once, then format: 160 cards x 3 links of reverse() was a fifth of the board's time."""
    prefix, _, suffix = reverse(name, args=[0]).rpartition("/0/")
    return lambda pk: f"{prefix}/{pk}/{suffix}"


def _decorate(deals: list[Deal], *, now, user) -> list[Deal]:
    """Badge, rotting, avatar and links for each card, computed here rather than in the template."""
    detail, won, lost = (_url_maker(f"pipeline:{n}") for n in ("deal_detail", "deal_won", "deal_lost"))
    for deal in deals:
        deal.url, deal.won_url, deal.lost_url = detail(deal.pk), won(deal.pk), lost(deal.pk)
        deal.editable = permissions.can_change_deal(user, deal)
        deal.badge = selectors.next_activity_badge(deal.next_activity_at, now=now)
        deal.rotting = selectors.rotting_days(
            stage_entered_at=deal.stage_entered_at,
            last_activity_at=deal.last_activity_at,
            rot_after=deal.stage.rotting_days,
            now=now,
        )
        deal.owner_initials = initials(deal.owner)
    return deals


@require_GET
@domain_errors
def board(request: HttpRequest) -> HttpResponse:
    pipeline_id = request.GET.get("pipeline")
    if not pipeline_id and not selectors.pipeline_list(user=request.user):
        return render(
            request, "pipeline/board_empty.html", {"can_configure": permissions.can_configure(request.user)}
        )
    pipeline = selectors.pipeline_get(user=request.user, pipeline_id=parse_id(pipeline_id))
    filters = _board_filters(request)
    the_board = selectors.board_get(user=request.user, pipeline=pipeline, filters=filters)
    now = timezone.now()
    for column in the_board.columns:
        _decorate(column.cards, now=now, user=request.user)
    context = {
        "board": the_board,
        "pipelines": selectors.pipeline_list(user=request.user),
        "filters": filters,
        "query": _filter_query(filters, pipeline),
        "owners": _owners(),
        "can_create": permissions.can_create_deal(request.user),
        "can_configure": permissions.can_configure(request.user),
    }
    template = "pipeline/board.html"
    if request.htmx and request.htmx.target == "board":
        template += "#board"
    return render(request, template, context)


@require_GET
@domain_errors
def board_column(request: HttpRequest, pk: int) -> HttpResponse:
    """The next page of one column's cards (infinite scroll)."""
    stage = selectors.stage_get(user=request.user, stage_id=pk)
    filters = _board_filters(request)
    offset = parse_id(request.GET.get("offset")) or 0
    cards, has_more = selectors.column_cards(user=request.user, stage=stage, filters=filters, offset=offset)
    column = selectors.Column(
        stage=stage, cards=_decorate(cards, now=timezone.now(), user=request.user), has_more=has_more
    )
    context = {
        "column": column,
        "next_offset": offset + len(cards),
        "query": _filter_query(filters, stage.pipeline),
    }
    return render(request, "pipeline/board.html#column-cards", context)


def _owners():
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .order_by("username")
        .only("pk", "username", "first_name", "last_name")
    )


def _board_update(request: HttpRequest, pipeline: Pipeline, *, remove: Deal | None = None) -> HttpResponse:
    """Out-of-band swaps for the board after a move or a close: every column header and the
    totals (the filters come along with the request, so the figures match what is shown)."""
    filters = _board_filters(request, request.POST)
    the_board = selectors.board_totals(user=request.user, pipeline=pipeline, filters=filters)
    context = {
        "board": the_board,
        "remove": remove,
        "query": _filter_query(filters, pipeline),
        "can_create": permissions.can_create_deal(request.user),
    }
    return render(request, "pipeline/_board_oob.html", context)


def _next_is_board(request: HttpRequest) -> bool:
    return request.POST.get("from", request.GET.get("from")) == "board"


@require_POST
@domain_errors
def deal_move(request: HttpRequest, pk: int) -> HttpResponse:
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    stage_id = parse_id(request.POST.get("stage"))
    to_stage = deal.stage if stage_id is None else selectors.stage_get(user=request.user, stage_id=stage_id)
    after = _neighbour(request.POST.get("after"))
    before = _neighbour(request.POST.get("before"))
    try:
        services.deal_move(deal=deal, to_stage=to_stage, actor=request.user, after=after, before=before)
    except (ValidationError, Conflict) as exc:
        return _refused(request, deal, exc)
    if _next_is_board(request):
        return _board_update(request, deal.pipeline)
    return redirect("pipeline:deal_detail", pk=deal.pk)


def _neighbour(value: str | None) -> Deal | None:
    pk = parse_id(value)
    return Deal.objects.filter(pk=pk).first() if pk is not None else None


def _refused(request: HttpRequest, deal: Deal, exc: Exception) -> HttpResponse:
    message = " ".join(exc.messages) if isinstance(exc, ValidationError) else exc.message
    if request.htmx:
        # The card is back where it was after a reload; tell the rep why.
        response = HttpResponse(message, status=409)
        return trigger_client_event(response, "board-refused", {"message": message})
    messages.error(request, message)
    return redirect("pipeline:deal_detail", pk=deal.pk)


@require_POST
@domain_errors
def deal_won(request: HttpRequest, pk: int) -> HttpResponse:
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    services.deal_mark_won(deal=deal, actor=request.user)
    if _next_is_board(request):
        return _board_update(request, deal.pipeline)
    messages.success(request, f"{deal.title} won.")
    return _to_deal(request, deal)


@require_POST
@domain_errors
def deal_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    services.deal_reopen(deal=deal, actor=request.user)
    messages.success(request, f"{deal.title} is open again.")
    return _to_deal(request, deal)


def _to_deal(request: HttpRequest, deal: Deal) -> HttpResponse:
    url = deal_url(deal)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def deal_url(deal: Deal) -> str:
    return reverse("pipeline:deal_detail", args=[deal.pk])


@require_http_methods(["GET", "POST"])
@domain_errors
def deal_lost(request: HttpRequest, pk: int) -> HttpResponse:
    """Lose a deal: a small form asks for the reason (a modal on the board and the deal page)."""
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    permissions.ensure_can_change_deal(request.user, deal)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            services.deal_mark_lost(
                deal=deal,
                actor=request.user,
                reason=request.POST.get("lost_reason", ""),
                note=request.POST.get("lost_note", ""),
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            if _next_is_board(request):
                response = _board_update(request, deal.pipeline, remove=deal)
                return trigger_client_event(response, "records-changed")
            messages.success(request, f"{deal.title} lost.")
            return _to_deal(request, deal)
    reasons = selectors.lost_reasons()
    context = {
        "deal": deal,
        "reasons": reasons,
        "note_reasons": [reason.name for reason in reasons if reason.note_required],
        "error": " ".join(errors.get("lost_reason", [])),
        "note_error": " ".join(errors.get("lost_note", [])),
        "from": request.POST.get("from", request.GET.get("from", "")),
        "chosen": request.POST.get("lost_reason", ""),
        "note": request.POST.get("lost_note", ""),
    }
    template = "pipeline/deal_lost.html" + ("#lost-form" if request.htmx else "")
    return render(request, template, context, status=422 if errors else 200)


@require_http_methods(["GET", "POST"])
@domain_errors
def deal_create(request: HttpRequest) -> HttpResponse:
    """Quick add, from a column (stage filled in) or the board's "+ Deal"."""
    permissions.ensure_can_create_deal(request.user)
    stage_id = parse_id(request.POST.get("stage") or request.GET.get("stage"))
    if stage_id is not None:
        stage = selectors.stage_get(user=request.user, stage_id=stage_id)
    else:
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=None)
        stage = pipeline.stages.first()
        if stage is None:
            raise Http404("The pipeline has no stages yet.")
    initial = {"currency": "USD", "owner": request.user.pk, **_deal_prefill(request)}
    form = DealForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.deal_create(actor=request.user, stage=stage, **form.values())
        except ValidationError as exc:
            _errors_onto(form, exc)
        else:
            messages.success(request, f"Added {deal.title} to {stage.name}.")
            url = reverse("pipeline:board") + f"?pipeline={stage.pipeline_id}"
            if not _next_is_board(request):
                url = deal_url(deal)
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"form": form, "stage": stage, "from": request.GET.get("from", request.POST.get("from", ""))}
    template = "pipeline/deal_form.html" + ("#deal-form" if request.htmx else "")
    return render(request, template, context, status=422 if form.errors else 200)


def _deal_prefill(request: HttpRequest) -> dict:
    """Form values from `?contact=<id>` or `?company=<id>` (the contact and company pages' "+ Deal").
    An id that names nothing (a stale link, a merged-away contact's) just fills nothing in."""
    prefill: dict = {}
    if (contact_id := parse_id(request.GET.get("contact"))) is not None:
        try:
            contact = contact_selectors.contact_get(user=request.user, contact_id=contact_id)
            contact = contact_selectors.contact_surviving(contact=contact)
        except NotFound:
            pass
        else:
            prefill["contact"] = contact_label(contact)
            prefill["title"] = f"{contact.company.name if contact.company else contact} deal"
            if contact.company is not None:
                prefill["company"] = company_picker_value(contact.company)
    if (company_id := parse_id(request.GET.get("company"))) is not None:
        try:
            company = contact_selectors.company_get(user=request.user, company_id=company_id)
        except NotFound:
            pass
        else:
            prefill["company"] = company_picker_value(company)
            prefill["title"] = f"{company.name} deal"
    return prefill


def _errors_onto(form, exc: ValidationError) -> None:
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)


@require_GET
@domain_errors
def contact_options(request: HttpRequest) -> HttpResponse:
    """<option>s for the contact picker's datalist, as the user types."""
    q = (request.GET.get("contact") or request.GET.get("add") or request.GET.get("q") or "").strip()
    contacts = (
        list(contact_selectors.contact_list(user=request.user, filters={"q": q})[:10]) if len(q) >= 2 else []
    )
    return render(request, "pipeline/_contact_options.html", {"contacts": contacts})


# --- the deal page


@require_GET
@domain_errors
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    recent.recent_view_record(user=request.user, kind="deal", object_id=deal.pk)
    return render(request, "pipeline/deal_detail.html", _deal_context(request, deal))


def _deal_context(request: HttpRequest, deal: Deal, form: DealForm | None = None) -> dict:
    now = timezone.now()
    _decorate([deal], now=now, user=request.user)
    stages = list(deal.pipeline.stages.all())
    current = next((i for i, s in enumerate(stages) if s.pk == deal.stage_id), 0)
    return {
        "deal": deal,
        "stages": [(s, i < current, i == current) for i, s in enumerate(stages)],
        "history": selectors.deal_stage_history(user=request.user, deal=deal),
        "participants": list(deal.participants.all()),
        "can_change": permissions.can_change_deal(request.user, deal),
        "form": form,
    }


@require_http_methods(["GET", "POST"])
@domain_errors
def deal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Inline edit of the properties card: GET swaps in the form, POST saves and swaps back."""
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    permissions.ensure_can_change_deal(request.user, deal)
    if request.method == "GET" and request.GET.get("cancel"):
        return render(request, "pipeline/deal_detail.html#deal-properties", _deal_context(request, deal))
    initial = {
        "title": deal.title,
        "amount": deal.amount,
        "currency": deal.currency,
        "contact": contact_label(deal.contact),
        "company": f"{deal.company.name} (#{deal.company.pk})" if deal.company else "",
        "owner": deal.owner_id,
        "expected_close_date": deal.expected_close_date,
    }
    form = DealForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.deal_update(deal=deal, actor=request.user, **form.values())
        except ValidationError as exc:
            _errors_onto(form, exc)
        else:
            deal = selectors.deal_get(user=request.user, deal_id=pk)
            return render(request, "pipeline/deal_detail.html#deal-properties", _deal_context(request, deal))
    template = "pipeline/deal_detail.html#deal-properties" if request.htmx else "pipeline/deal_detail.html"
    return render(request, template, _deal_context(request, deal, form), status=422 if form.errors else 200)


# --- Settings → Pipelines (Admin only)


@require_GET
@domain_errors
def pipeline_settings(request: HttpRequest) -> HttpResponse:
    permissions.ensure_can_configure(request.user)
    return render(
        request,
        "pipeline/settings.html",
        {
            "pipelines": selectors.pipeline_list(user=request.user, with_deal_counts=True),
            "reasons": selectors.lost_reasons(active_only=False),
        },
    )


SETTINGS_ACTIONS = (
    "pipeline-create",
    "pipeline-rename",
    "stage-create",
    "stage-update",
    "stage-up",
    "stage-down",
    "stage-delete",
    "reason-create",
    "reason-update",
    "reason-delete",
)


@require_POST
@domain_errors
def pipeline_settings_post(request: HttpRequest, action: str) -> HttpResponse:
    """One endpoint per form on the settings page; each calls one service and comes back."""
    permissions.ensure_can_configure(request.user)
    data, actor = request.POST, request.user
    try:
        if action == "pipeline-create":
            services.pipeline_create(actor=actor, name=data.get("name", ""))
        elif action == "pipeline-rename":
            services.pipeline_rename(actor=actor, pipeline=_get(Pipeline, data), name=data.get("name", ""))
        elif action == "stage-create":
            services.stage_create(
                actor=actor,
                pipeline=_get(Pipeline, data),
                name=data.get("name", ""),
                probability=data.get("probability", 0),
                rotting_days=data.get("rotting_days"),
            )
        elif action == "stage-update":
            services.stage_update(
                actor=actor,
                stage=_get(Stage, data),
                name=data.get("name", ""),
                probability=data.get("probability", 0),
                rotting_days=data.get("rotting_days"),
            )
        elif action in ("stage-up", "stage-down"):
            stage = _get(Stage, data)
            ids = list(stage.pipeline.stages.values_list("pk", flat=True))
            i = ids.index(stage.pk)
            j = i - 1 if action == "stage-up" else i + 1
            if 0 <= j < len(ids):
                ids[i], ids[j] = ids[j], ids[i]
                services.stage_reorder(actor=actor, pipeline=stage.pipeline, stage_ids=ids)
        elif action == "stage-delete":
            target = None
            if data.get("move_deals_to"):
                pk = parse_id(data.get("move_deals_to"))
                target = Stage.objects.filter(pk=pk).first() if pk is not None else None
                if target is None:
                    raise ValidationError("Pick a stage to move the deals to.")
            moved = services.stage_delete(actor=actor, stage=_get(Stage, data), move_deals_to=target)
            if moved:
                messages.info(request, f"Moved {moved} deal{'s' if moved != 1 else ''} to {target.name}.")
        elif action == "reason-create":
            services.lost_reason_create(
                actor=actor, name=data.get("name", ""), note_required=bool(data.get("note_required"))
            )
        elif action == "reason-update":
            services.lost_reason_update(
                actor=actor,
                reason=_get(LostReason, data),
                name=data.get("name", ""),
                active=bool(data.get("active")),
                note_required=bool(data.get("note_required")),
            )
        elif action == "reason-delete":
            services.lost_reason_delete(actor=actor, reason=_get(LostReason, data))
        else:
            raise Http404("No such settings action.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Saved.")
    return redirect("pipeline:settings")


def _get(model, data):
    pk = parse_id(data.get("id"))
    obj = model.objects.filter(pk=pk).first() if pk is not None else None
    if obj is None:
        raise Http404(f"No such {model._meta.verbose_name}.")
    return obj


@require_POST
@domain_errors
def deal_participants(request: HttpRequest, pk: int) -> HttpResponse:
    """Add (`add`: the contact picker's value) or remove (`remove`: a contact id) a participant."""
    deal = selectors.deal_get(user=request.user, deal_id=pk)
    # before reading the picker: a refused user gets 403, not "pick a contact" and a redirect
    permissions.ensure_can_change_deal(request.user, deal)
    people = {p.pk: p for p in deal.participants.all()}
    if (remove := parse_id(request.POST.get("remove"))) is not None:
        people.pop(remove, None)
    else:
        try:
            contact = ContactPickerField(required=True).clean(request.POST.get("add", ""))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(deal_url(deal))
        if contact.pk != deal.contact_id:
            people[contact.pk] = contact
    services.deal_update(deal=deal, actor=request.user, participants=list(people.values()))
    return redirect(deal_url(deal))
