"""HTML pages for contacts and companies: lists, detail pages, forms, inline edits, bulk actions.

Thin function views: parse input with a form, call one selector or service, render a full page or,
for htmx requests, the named partial that the request swaps (`#contact-table`, a single cell, …).
"""

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import conditional_escape, escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts.services import recent
from contacts import permissions, selectors, services
from contacts.forms import (
    CF_PREFIX,
    BulkForm,
    CompanyFilterForm,
    CompanyForm,
    ContactBulkEditForm,
    ContactFilterForm,
    ContactForm,
    SavedViewForm,
)
from contacts.models import Company, Contact, CustomField, CustomFieldType, LifecycleStage
from core.csv import stream_csv
from core.errors import Conflict, domain_errors
from core.replica import replica_reads

PAGE_SIZE = 50


# --- columns and cells


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort: str | None = None  # a key of selectors.CONTACT_SORTS / COMPANY_SORTS
    fields: tuple[str, ...] = ()  # the form fields an inline edit of this cell changes
    link: bool = False  # the cell links to the record (or its company); edit with the pencil
    extra: selectors.ListColumn | None = None  # a higher app's column (CONTACT_LIST_COLUMN_HOOKS)


CONTACT_COLUMNS = [
    Column("name", "Name", "name", ("first_name", "last_name"), link=True),
    Column("email", "Email", "email", ("email",)),
    Column("phone", "Phone", "phone", ("phone",)),
    Column("title", "Title", "title", ("title",)),
    Column("company", "Company", "company", ("company",), link=True),
    Column("owner", "Owner", "owner", ("owner",)),
    Column("lifecycle_stage", "Lifecycle", "lifecycle_stage", ("lifecycle_stage",)),
    Column("tags", "Tags", None, ("tags",)),
    Column("last_seen", "Last seen", "last_seen"),
    Column("created", "Created", "created"),
]
CONTACT_DEFAULT_COLUMNS = ["name", "email", "company", "owner", "lifecycle_stage", "last_seen", "created"]

COMPANY_COLUMNS = [
    Column("name", "Name", "name", ("name",), link=True),
    Column("domain", "Domain", "domain", ("domain",)),
    Column("industry", "Industry", "industry", ("industry",)),
    Column("size", "Size", "size", ("size",)),
    Column("owner", "Owner", "owner", ("owner",)),
    Column("contacts", "Contacts"),
    Column("created", "Created", "created"),
]
COMPANY_DEFAULT_COLUMNS = ["name", "domain", "industry", "owner", "contacts", "created"]


# Characters that fit the narrowest list cell (.cell-text's 8rem) uncut.
CELL_TEXT_FITS = 16


@dataclass
class Cell:
    record: Any
    column: Column
    entity: str
    editable: bool
    text: str = ""
    kind: str = "text"  # text | link | badge | tags | muted
    href: str = ""
    items: list[str] = field(default_factory=list)
    form: Any = None  # bound form while editing
    error: str = ""

    @property
    def dom_id(self) -> str:
        return f"cell-{self.entity}-{self.record.pk}-{self.column.key}"

    @property
    def url(self) -> str:
        return fast_reverse(SPECS[self.entity].cell_url, self.record.pk, self.column.key)

    @property
    def bound_fields(self) -> list:
        return [self.form[name] for name in self.column.fields] if self.form is not None else []

    def html(self) -> SafeString:
        """The cell in display mode. Built here rather than by a template include per cell: a
        50-row page has ~400 cells, and an include each cost ~25 ms of the page's time
        (docs/benchmarks.md). format_html escapes every value."""
        # List cells stay one line: a long value (a 200-character company name) is cut with an
        # ellipsis by the .cell-text CSS, and its title shows the whole value on hover. Values
        # short enough to fit the narrowest cell stay bare: nothing to cut, and a list page
        # renders ~400 cells.
        long = len(self.text) > CELL_TEXT_FITS
        if self.kind == "link":
            if long:
                content = format_html(
                    '<a href="{}" class="cell-text" title="{}">{}</a>', self.href, self.text, self.text
                )
            else:
                content = format_html('<a href="{}">{}</a>', self.href, self.text)
        elif self.kind == "badge":
            content = format_html(
                '<span class="badge rounded-pill text-bg-light border">{}</span>', self.text
            )
        elif self.kind == "tags":
            content = format_html_join(
                "", '<span class="badge text-bg-secondary me-1">{}</span>', ((t,) for t in self.items)
            ) or mark_safe('<span class="text-secondary">—</span>')
            if self.items:
                content = format_html(
                    '<span class="cell-text" title="{}">{}</span>', ", ".join(self.items), content
                )
        elif self.kind == "muted":
            content = format_html('<span class="text-secondary">{}</span>', self.text)
        elif long:
            content = format_html('<span class="cell-text" title="{}">{}</span>', self.text, self.text)
        else:
            content = conditional_escape(self.text)
        if not self.editable:
            return format_html('<td id="{}" data-column="{}">{}</td>', self.dom_id, self.column.key, content)
        if self.column.link:
            return format_html(
                '<td id="{}" data-column="{}" class="cell-editable">{} <button type="button" '
                'class="btn btn-link btn-sm p-0 ms-1 cell-edit-btn" hx-get="{}?edit=1" '
                'hx-target="closest td" hx-swap="outerHTML" aria-label="Edit {}">'
                '<i class="bi bi-pencil"></i></button></td>',
                self.dom_id,
                self.column.key,
                content,
                self.url,
                self.column.label.lower(),
            )
        return format_html(
            '<td id="{}" data-column="{}" class="cell-editable" hx-get="{}?edit=1" hx-trigger="click" '
            'hx-target="this" hx-swap="outerHTML" title="Click to edit">{}</td>',
            self.dom_id,
            self.column.key,
            self.url,
            content,
        )


@functools.cache
def _url_pattern(name: str, kinds: tuple[type, ...]) -> tuple[str, list[str]]:
    markers = [str(987650 + i) if kind is int else f"zq{i}zq" for i, kind in enumerate(kinds)]
    return reverse(name, args=markers), markers


def fast_reverse(name: str, *args: int | str) -> str:
    """reverse() for the hundreds of per-row URLs of a list page: resolved once per URL name,
    then filled in (reverse() costs ~0.1 ms a call). Arguments are ints or slug-like keys."""
    url, markers = _url_pattern(name, tuple(type(a) for a in args))
    for marker, arg in zip(markers, args, strict=True):
        url = url.replace(marker, quote(str(arg), safe=""), 1)
    return url


def _custom_columns(definitions: list[CustomField]) -> list[Column]:
    return [Column(CF_PREFIX + d.key, d.label, None, (CF_PREFIX + d.key,)) for d in definitions]


def _display_custom(record, key: str, definitions: dict[str, CustomField]) -> str:
    value = (record.custom_fields or {}).get(key)
    if value is None:
        return ""
    if definitions.get(key) and definitions[key].field_type == CustomFieldType.BOOLEAN:
        return "Yes" if value else "No"
    return str(value)


def _dt(value) -> str:
    return date_format(timezone.localtime(value), "Y-m-d H:i") if value else ""


def make_cell(record, column: Column, *, entity: str, editable: bool, definitions: dict) -> Cell:
    cell = Cell(record=record, column=column, entity=entity, editable=editable and bool(column.fields))
    key = column.key
    if column.extra is not None:
        value = getattr(record, key, None)
        # escape() even a SafeString: the provider's text is shown as text, never as markup.
        cell.text = escape(column.extra.render(value)) if value is not None else ""
    elif key.startswith(CF_PREFIX):
        cell.text = _display_custom(record, key.removeprefix(CF_PREFIX), definitions)
    elif key == "name":
        spec = SPECS[entity]
        cell.kind, cell.href = "link", fast_reverse(spec.detail_url, record.pk)
        cell.text = getattr(record, spec.name_attr)
    elif key == "company":
        if record.company_id:
            cell.kind, cell.text = "link", record.company.name
            cell.href = fast_reverse("contacts:company_detail", record.company_id)
    elif key == "owner":
        cell.text = record.owner.get_username() if record.owner_id else ""
    elif key == "lifecycle_stage":
        cell.kind, cell.text = "badge", record.get_lifecycle_stage_display()
    elif key == "tags":
        cell.kind, cell.items = "tags", record.tags
    elif key == "last_seen":
        cell.text = _dt(record.last_seen)
    elif key == "created":
        cell.text = _dt(record.created_at)
    elif key == "contacts":
        cell.text = str(getattr(record, "contact_count", ""))
    else:
        cell.text = getattr(record, key) or ""
    if not cell.text and cell.kind in ("text", "link"):
        cell.kind, cell.text = "muted", "—"
    return cell


# --- list pages


@dataclass
class ListSpec:
    entity: str
    model: type
    columns: list[Column]
    default_columns: list[str]
    filter_form: type
    page: Callable[..., Any]
    sorts: dict
    default_sort: str
    template: str
    table_id: str
    url_name: str
    # What differs between the two kinds of record beyond the list, so views look it up here
    # instead of switching on the entity's name.
    noun: str
    plural: str
    detail_url: str
    cell_url: str
    name_attr: str  # the record's name as the list's link shows it
    form_class: type
    matching: Callable[..., Any]  # (user=, filters=) -> every record the list matches, to count
    get: Callable[..., Any]  # (user=, pk=) -> the record, or NotFound / Forbidden
    create: Callable[..., Any]  # (actor=, **values)
    update: Callable[..., Any]  # (record, actor=, **values)

    def all_columns(self, definitions: list[CustomField], extras: list | None = None) -> list[Column]:
        return self.columns + _custom_columns(definitions) + _extra_columns(extras or [])

    def extras(self) -> list[selectors.ListColumn]:
        """Higher apps' columns (contacts only: the hook is about the contact list)."""
        return selectors.contact_list_columns() if self.entity == "contact" else []


def _extra_columns(extras: list[selectors.ListColumn]) -> list[Column]:
    return [Column(c.key, c.label, c.key if c.sort is not None else None, extra=c) for c in extras]


CONTACTS = ListSpec(
    entity="contact",
    model=Contact,
    columns=CONTACT_COLUMNS,
    default_columns=CONTACT_DEFAULT_COLUMNS,
    filter_form=ContactFilterForm,
    page=selectors.contact_page,
    sorts=selectors.CONTACT_SORTS,
    default_sort="-created",
    template="contacts/contact_list.html",
    table_id="contact-table",
    url_name="contacts:list",
    noun="contact",
    plural="contacts",
    detail_url="contacts:contact_detail",
    cell_url="contacts:contact_cell",
    name_attr="display_name",
    form_class=ContactForm,
    matching=selectors.contact_list,
    get=lambda *, user, pk: selectors.contact_get(user=user, contact_id=pk),
    create=services.contact_create,
    update=lambda record, **values: services.contact_update(contact=record, **values),
)
COMPANIES = ListSpec(
    entity="company",
    model=Company,
    columns=COMPANY_COLUMNS,
    default_columns=COMPANY_DEFAULT_COLUMNS,
    filter_form=CompanyFilterForm,
    page=selectors.company_page,
    sorts=selectors.COMPANY_SORTS,
    default_sort="name",
    template="contacts/company_list.html",
    table_id="company-table",
    url_name="contacts:company_list",
    noun="company",
    plural="companies",
    detail_url="contacts:company_detail",
    cell_url="contacts:company_cell",
    name_attr="name",
    form_class=CompanyForm,
    matching=lambda *, user, filters: selectors.company_list(user=user, filters=filters, with_counts=False),
    get=lambda *, user, pk: selectors.company_get(user=user, company_id=pk),
    create=services.company_create,
    update=lambda record, **values: services.company_update(company=record, **values),
)
SPECS = {spec.entity: spec for spec in (CONTACTS, COMPANIES)}


def _query_without(query: QueryDict, *drop: str, **set_: str) -> str:
    q = query.copy()
    for name in drop:
        q.pop(name, None)
    for name, value in set_.items():
        q[name] = value
    return q.urlencode()


def _list_context(request: HttpRequest, spec: ListSpec, query: QueryDict) -> dict[str, Any]:
    definitions = selectors.custom_field_definitions(entity=spec.entity)
    by_key = {d.key: d for d in definitions}
    extras = spec.extras()
    form = spec.filter_form(query, definitions=definitions, columns=extras)
    filters = form.filters()
    sort = query.get("sort") or spec.default_sort
    all_columns = spec.all_columns(definitions, extras)
    chosen = selectors.list_columns(user=request.user, entity=spec.entity) or spec.default_columns
    columns = [c for c in all_columns if c.key in chosen] or [all_columns[0]]
    sorts = spec.sorts | {c.key: c.sort for c in extras if c.sort is not None}
    sort_name, descending = selectors.parse_sort(sort, sorts=sorts, default=spec.default_sort)
    # Only the extra columns shown (or sorted on) join into the page's query.
    wanted = {c.key for c in columns} | {sort_name}
    shown_extras = {"columns": [c for c in extras if c.key in wanted]} if extras else {}
    page = spec.page(
        user=request.user,
        filters=filters,
        sort=sort,
        cursor=query.get("cursor"),
        size=PAGE_SIZE,
        **shown_extras,
    )
    # Below 3 characters the trigram index cannot help, so the count stops sooner.
    cap = 1_000 if 0 < len((filters.get("q") or "").strip()) < 3 else 10_000
    matching = spec.matching(user=request.user, filters=filters)
    total, more = selectors.count_capped(matching, cap=cap)
    user = request.user
    rows = []
    for record in page.rows:
        editable = permissions.can_change(user, record)
        cells = [
            make_cell(record, c, entity=spec.entity, editable=editable, definitions=by_key) for c in columns
        ]
        rows.append({"record": record, "cells": cells, "editable": editable})
    base = reverse(spec.url_name)
    headers = []
    for column in columns:
        header = {"column": column, "url": None, "active": column.sort == sort_name, "descending": descending}
        if column.sort:
            # A second click on the sorted column flips it; a new column starts ascending.
            new = f"-{column.sort}" if column.sort == sort_name and not descending else column.sort
            header["url"] = f"{base}?{_query_without(query, 'cursor', sort=new)}"
        headers.append(header)
    current = _query_without(query, "cursor")
    owners = selectors.owner_choices()
    return {
        "spec": spec,
        "form": form,
        "rows": rows,
        "headers": headers,
        "all_columns": all_columns,
        "chosen_columns": [c.key for c in columns],
        "total": total,
        "total_more": more,
        "next_url": f"{base}?{_query_without(query, cursor=page.next_cursor)}" if page.next_cursor else None,
        "prev_url": f"{base}?{_query_without(query, cursor=page.prev_cursor)}" if page.prev_cursor else None,
        "current_query": current,
        "list_url": base,
        "export_url": reverse(f"contacts:{spec.entity}_export") + (f"?{current}" if current else ""),
        "saved_views": selectors.saved_views(user=user, entity=spec.entity),
        "can_create": permissions.can_create(user),
        "can_bulk": permissions.can_create(user),  # Admin and Sales; rows are checked one by one
        "owners": owners if permissions.can_create(user) else [],
        "filter_owners": owners,
        "lifecycle_stages": LifecycleStage.choices,
        "sort": sort,
        # The company filter is an id (from a company page's link); show whose it is.
        "filter_company": selectors.company_names(company_ids={filters["company"]}).get(filters["company"])
        if filters.get("company")
        else None,
    }


def _render_list(
    request: HttpRequest, spec: ListSpec, query: QueryDict, *, status: int = 200
) -> HttpResponse:
    template = spec.template
    if request.htmx and request.htmx.target == spec.table_id:
        template += "#" + spec.table_id
    return render(request, template, _list_context(request, spec, query), status=status)


@require_GET
@domain_errors
def contact_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, CONTACTS, request.GET)


@require_GET
@domain_errors
def company_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, COMPANIES, request.GET)


def _after_post(request: HttpRequest, spec: ListSpec) -> HttpResponse:
    """Re-render the table with the state the user was looking at (htmx), or go back to it."""
    query = QueryDict(request.POST.get("query", "").lstrip("?"))
    if request.htmx:
        response = render(request, spec.template + "#" + spec.table_id, _list_context(request, spec, query))
        return response
    url = reverse(spec.url_name)
    return redirect(f"{url}?{query.urlencode()}" if query else url)


def _bulk(request: HttpRequest, spec: ListSpec) -> HttpResponse:
    if not permissions.can_create(request.user):  # Marketing: read-only
        raise PermissionDenied("Your role may not change CRM records.")
    action = request.POST.get("action")
    # Companies use the same edit form; only its owner field applies to them.
    form = BulkForm(request.POST) if action == "delete" else ContactBulkEditForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return _after_post(request, spec)
    ids = form.cleaned_data["ids"]
    try:
        if action == "delete":
            if spec.entity == "contact":
                result = services.contact_bulk_delete(actor=request.user, contact_ids=ids)
            else:
                result = services.company_bulk_delete(actor=request.user, company_ids=ids)
            done = "deleted"
        else:
            changes = form.changes()
            if not changes:
                messages.info(request, "Nothing to change: pick an owner, a stage or tags.")
                return _after_post(request, spec)
            if spec.entity == "contact":
                result = services.contact_bulk_update(actor=request.user, contact_ids=ids, **changes)
            else:
                changes = {k: v for k, v in changes.items() if k == "owner"}
                result = services.company_bulk_update(actor=request.user, company_ids=ids, **changes)
            done = "updated"
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _after_post(request, spec)
    text = f"{result.changed} {spec.noun if result.changed == 1 else spec.plural} {done}."
    if result.skipped:
        text += f" {result.skipped} skipped: you may not change {'it' if result.skipped == 1 else 'them'}."
    (messages.warning if result.skipped else messages.success)(request, text)
    return _after_post(request, spec)


@require_POST
@domain_errors
def contact_bulk(request: HttpRequest) -> HttpResponse:
    return _bulk(request, CONTACTS)


@require_POST
@domain_errors
def company_bulk(request: HttpRequest) -> HttpResponse:
    return _bulk(request, COMPANIES)


def _columns(request: HttpRequest, spec: ListSpec) -> HttpResponse:
    definitions = selectors.custom_field_definitions(entity=spec.entity)
    known = [c.key for c in spec.all_columns(definitions, spec.extras())]
    chosen = [key for key in request.POST.getlist("columns") if key in known]
    services.list_columns_set(user=request.user, entity=spec.entity, columns=chosen or spec.default_columns)
    return _after_post(request, spec)


@require_POST
@domain_errors
def contact_columns(request: HttpRequest) -> HttpResponse:
    return _columns(request, CONTACTS)


@require_POST
@domain_errors
def company_columns(request: HttpRequest) -> HttpResponse:
    return _columns(request, COMPANIES)


def _saved_view_create(request: HttpRequest, spec: ListSpec) -> HttpResponse:
    form = SavedViewForm(request.POST)
    url = reverse(spec.url_name)
    if not form.is_valid():
        messages.error(request, "Give the view a name.")
        return redirect(url)
    query = QueryDict(form.cleaned_data["query"].lstrip("?"))
    try:
        view = services.saved_view_create(
            user=request.user,
            entity=spec.entity,
            name=form.cleaned_data["name"],
            query=_query_without(query, "cursor"),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(url)
    messages.success(request, f"Saved the view “{view.name}”.")
    return redirect(f"{url}?{view.query}" if view.query else url)


@require_POST
def contact_saved_view_create(request: HttpRequest) -> HttpResponse:
    return _saved_view_create(request, CONTACTS)


@require_POST
def company_saved_view_create(request: HttpRequest) -> HttpResponse:
    return _saved_view_create(request, COMPANIES)


@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    services.saved_view_delete(user=request.user, view_id=pk)
    return redirect("contacts:company_list" if request.POST.get("entity") == "company" else "contacts:list")


# --- CSV export


@require_GET
@domain_errors
def contact_export(request: HttpRequest) -> StreamingHttpResponse:
    definitions = selectors.custom_field_definitions(entity="contact")
    extras = selectors.contact_list_columns()
    filters = ContactFilterForm(request.GET, definitions=definitions, columns=extras).filters()
    contacts = selectors.contact_list(user=request.user, filters=filters).select_related("company", "owner")
    keys = [d.key for d in definitions]
    header = ["id", "first_name", "last_name", "email", "phone", "title", "company", "company_domain"]
    header += ["owner", "lifecycle_stage", "tags", "is_identified", "first_seen", "last_seen", "created_at"]

    @replica_reads  # a full export is heavy; the replica is chosen now, inside the request
    def rows() -> Iterator[list[Any]]:
        # iterator(): rows stream from a server-side cursor in chunks, never all in memory.
        for c in contacts.iterator(chunk_size=2000):
            yield [
                c.pk,
                c.first_name,
                c.last_name,
                c.email or "",
                c.phone,
                c.title,
                c.company.name if c.company_id else "",
                (c.company.domain or "") if c.company_id else "",
                c.owner.get_username() if c.owner_id else "",
                c.lifecycle_stage,
                ";".join(c.tags),
                "yes" if c.is_identified else "no",
                c.first_seen.isoformat() if c.first_seen else "",
                c.last_seen.isoformat() if c.last_seen else "",
                c.created_at.isoformat(),
            ] + [(c.custom_fields or {}).get(k, "") for k in keys]

    return stream_csv(filename="contacts.csv", header=header + [f"custom.{k}" for k in keys], rows=rows())


@require_GET
@domain_errors
def company_export(request: HttpRequest) -> StreamingHttpResponse:
    definitions = selectors.custom_field_definitions(entity="company")
    filters = CompanyFilterForm(request.GET, definitions=definitions).filters()
    companies = selectors.company_list(user=request.user, filters=filters).select_related("owner")
    keys = [d.key for d in definitions]
    header = ["id", "name", "domain", "industry", "size", "owner", "contacts", "created_at"]

    @replica_reads
    def rows() -> Iterator[list[Any]]:
        for c in companies.iterator(chunk_size=2000):
            yield [
                c.pk,
                c.name,
                c.domain or "",
                c.industry,
                c.size,
                c.owner.get_username() if c.owner_id else "",
                c.contact_count,
                c.created_at.isoformat(),
            ] + [(c.custom_fields or {}).get(k, "") for k in keys]

    return stream_csv(filename="companies.csv", header=header + [f"custom.{k}" for k in keys], rows=rows())


# --- inline cell edit


def _cell(request: HttpRequest, *, entity: str, pk: int, column_key: str) -> HttpResponse:
    user = request.user
    spec = SPECS[entity]
    form_class = spec.form_class
    record = spec.get(user=user, pk=pk)
    if getattr(record, "merged_into_id", None):  # a contact merged away (companies do not merge)
        raise Http404("This contact was merged into another.")
    definitions = selectors.custom_field_definitions(entity=entity)
    column = next((c for c in spec.all_columns(definitions) if c.key == column_key), None)
    if column is None:
        raise Http404("No such column.")
    by_key = {d.key: d for d in definitions}
    editable = permissions.can_change(user, record)
    template = "contacts/_cells.html"
    if request.method == "GET":
        cell = make_cell(record, column, entity=entity, editable=editable, definitions=by_key)
        if request.GET.get("edit") and cell.editable:
            cell.form = form_class(initial=form_class.initial_for(record), definitions=definitions)
            return render(request, template + "#cell-edit", {"cell": cell})
        return render(request, template + "#cell", {"cell": cell})
    if not editable or not column.fields:
        raise PermissionDenied("You may not change this record.")
    form = form_class(
        data=_with_initial(request.POST, form_class.initial_for(record), column.fields),
        definitions=definitions,
    )
    errors = None
    if form.is_valid():
        try:
            _update(entity, record, user, form.service_values(list(column.fields)))
        except (ValidationError, Conflict) as exc:
            form.add_service_error(exc)
            errors = True
    else:
        errors = True
    if errors:
        cell = make_cell(record, column, entity=entity, editable=True, definitions=by_key)
        cell.form = form
        cell.error = " ".join(form.non_field_errors())
        return render(request, template + "#cell-edit", {"cell": cell}, status=422)
    record = spec.get(user=user, pk=pk)
    cell = make_cell(record, column, entity=entity, editable=True, definitions=by_key)
    response = render(request, template + "#cell", {"cell": cell})
    # The detail page's history panel listens for this and reloads itself.
    return trigger_client_event(response, "record-changed")


def _with_initial(data: QueryDict, initial: dict, names: tuple[str, ...]) -> QueryDict:
    """The posted cell fields over the record's current values, so the whole form validates."""
    merged = QueryDict(mutable=True)
    for name, value in initial.items():
        if name not in names and value is not None:
            merged[name] = value
    for name in names:
        merged.setlist(name, data.getlist(name))
    return merged


def _update(entity: str, record, user, values: dict[str, Any]) -> None:
    SPECS[entity].update(record, actor=user, **values)


@require_http_methods(["GET", "POST"])
@domain_errors
def contact_cell(request: HttpRequest, pk: int, column: str) -> HttpResponse:
    return _cell(request, entity="contact", pk=pk, column_key=column)


@require_http_methods(["GET", "POST"])
@domain_errors
def company_cell(request: HttpRequest, pk: int, column: str) -> HttpResponse:
    return _cell(request, entity="company", pk=pk, column_key=column)


# --- detail pages


def _properties(record, *, entity: str, editable: bool, definitions: list[CustomField]) -> list[Cell]:
    spec = SPECS[entity]
    by_key = {d.key: d for d in definitions}
    hidden = {"name", "created", "contacts"}
    columns = [c for c in spec.all_columns(definitions) if c.key not in hidden]
    cells = [make_cell(record, c, entity=entity, editable=editable, definitions=by_key) for c in columns]
    if entity == "contact":
        name = Column("name", "Name", None, ("first_name", "last_name"))
        cells.insert(0, make_cell(record, name, entity=entity, editable=editable, definitions=by_key))
        cells[0].kind = "text"
    return cells


@dataclass
class HistoryRow:
    change: Any
    label: str
    old: str
    new: str


def _history(
    *, entity: str, object_id: int, definitions: list[CustomField] | None = None
) -> list[HistoryRow]:
    """Field history with owners and companies by name, not by id (two lookups at most)."""
    changes = selectors.field_history(entity=entity, object_id=object_id, limit=50)
    ids: dict[str, set] = {"owner": set(), "company": set()}
    for change in changes:
        if change.field in ids:
            ids[change.field].update(v for v in (change.old_value, change.new_value) if v is not None)
    names = {
        "owner": selectors.user_names(user_ids=ids["owner"]) if ids["owner"] else {},
        "company": selectors.company_names(company_ids=ids["company"]) if ids["company"] else {},
    }
    labels = {c.key: c.label for c in SPECS[entity].columns}
    labels.update({"first_name": "First name", "last_name": "Last name"})
    if definitions is None:
        definitions = selectors.custom_field_definitions(entity=entity)
    custom_labels = {d.key: d.label for d in definitions}

    def show(field_name: str, value: Any) -> str:
        if value is None or value == "" or value == []:
            return "—"
        if field_name in names:
            return names[field_name].get(value, f"#{value} (deleted)")
        if isinstance(value, list):
            return ", ".join(map(str, value))
        return str(value)

    rows = []
    for change in changes:
        label = labels.get(change.field) or custom_labels.get(change.field.removeprefix("custom_fields."))
        rows.append(
            HistoryRow(
                change=change,
                label=label or change.field,
                old=show(change.field, change.old_value),
                new=show(change.field, change.new_value),
            )
        )
    return rows


@require_GET
@domain_errors
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=pk)
    if contact.merged_into_id:
        survivor = selectors.contact_surviving(contact=contact)
        return redirect(survivor, permanent=True)
    recent.recent_view_record(user=request.user, kind="contact", object_id=contact.pk)
    editable = permissions.can_change(request.user, contact)
    definitions = selectors.custom_field_definitions(entity="contact")
    context = {
        "contact": contact,
        "editable": editable,
        "properties": _properties(contact, entity="contact", editable=editable, definitions=definitions),
        "history": _history(entity="contact", object_id=contact.pk, definitions=definitions),
        "history_url": reverse("contacts:contact_history", args=[contact.pk]),
    }
    return render(request, "contacts/contact_detail.html", context)


@require_GET
@domain_errors
def company_detail(request: HttpRequest, pk: int) -> HttpResponse:
    company = selectors.company_get(user=request.user, company_id=pk)
    recent.recent_view_record(user=request.user, kind="company", object_id=company.pk)
    editable = permissions.can_change(request.user, company)
    definitions = selectors.custom_field_definitions(entity="company")
    contacts = list(
        selectors.contact_list(user=request.user, filters={"company": company.pk}).select_related("owner")[
            :100
        ]
    )
    context = {
        "company": company,
        "editable": editable,
        "properties": _properties(company, entity="company", editable=editable, definitions=definitions),
        "contacts": contacts,
        "history": _history(entity="company", object_id=company.pk, definitions=definitions),
        "history_url": reverse("contacts:company_history", args=[company.pk]),
        "all_contacts_url": reverse("contacts:list") + "?" + urlencode({"company": company.pk}),
    }
    return render(request, "contacts/company_detail.html", context)


@require_GET
@domain_errors
def contact_history(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=pk)
    history = _history(entity="contact", object_id=contact.pk)
    return render(request, "contacts/_history.html", {"history": history})


@require_GET
@domain_errors
def company_history(request: HttpRequest, pk: int) -> HttpResponse:
    company = selectors.company_get(user=request.user, company_id=pk)
    history = _history(entity="company", object_id=company.pk)
    return render(request, "contacts/_history.html", {"history": history})


# --- create, edit, delete


def _form_page(
    request: HttpRequest,
    *,
    entity: str,
    record=None,
    quick: bool = False,
) -> HttpResponse:
    user = request.user
    form_class = SPECS[entity].form_class
    if record is None:
        if not permissions.can_create(user):
            raise PermissionDenied("Your role may not create CRM records.")
    elif not permissions.can_change(user, record):
        raise PermissionDenied("You may not change this record.")
    initial = form_class.initial_for(record) if record is not None else {"owner": str(user.pk)}
    if request.method == "POST":
        form = form_class(request.POST, initial=initial)
        if form.is_valid():
            values = form.service_values()
            try:
                if record is None:
                    record = SPECS[entity].create(actor=user, **values)
                else:
                    _update(entity, record, user, values)
            except (ValidationError, Conflict) as exc:
                form.add_service_error(exc)
            else:
                if quick and request.htmx:
                    # Close the modal and refresh the list the user is looking at.
                    response = HttpResponse(status=204)
                    return trigger_client_event(response, "records-changed", {"name": str(record)})
                messages.success(request, f"Saved {record}.")
                if request.htmx:
                    return HttpResponseClientRedirect(record.get_absolute_url())
                return redirect(record)
        status = 422
    else:
        form = form_class(initial=initial)
        status = 200
    context = {"form": form, "entity": entity, "record": record, "quick": quick}
    if quick:
        return render(request, "contacts/record_form.html#quick-form", context, status=status)
    return render(request, "contacts/record_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@domain_errors
def contact_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, entity="contact")


@require_http_methods(["GET", "POST"])
@domain_errors
def contact_quick_add(request: HttpRequest) -> HttpResponse:
    return _form_page(request, entity="contact", quick=True)


@require_http_methods(["GET", "POST"])
@domain_errors
def contact_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=pk)
    if contact.merged_into_id:
        return redirect("contacts:contact_edit", selectors.contact_surviving(contact=contact).pk)
    return _form_page(request, entity="contact", record=contact)


@require_http_methods(["GET", "POST"])
@domain_errors
def company_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, entity="company")


@require_http_methods(["GET", "POST"])
@domain_errors
def company_quick_add(request: HttpRequest) -> HttpResponse:
    return _form_page(request, entity="company", quick=True)


@require_http_methods(["GET", "POST"])
@domain_errors
def company_edit(request: HttpRequest, pk: int) -> HttpResponse:
    company = selectors.company_get(user=request.user, company_id=pk)
    return _form_page(request, entity="company", record=company)


@require_POST
@domain_errors
def contact_delete(request: HttpRequest, pk: int) -> HttpResponse:
    contact = selectors.contact_get(user=request.user, contact_id=pk)
    services.contact_delete(contact=contact, actor=request.user)
    messages.success(request, f"Deleted {contact}.")
    return redirect("contacts:list")


@require_POST
@domain_errors
def company_delete(request: HttpRequest, pk: int) -> HttpResponse:
    company = selectors.company_get(user=request.user, company_id=pk)
    services.company_delete(company=company, actor=request.user)
    messages.success(request, f"Deleted {company}.")
    return redirect("contacts:company_list")


@require_GET
@domain_errors
def company_options(request: HttpRequest) -> HttpResponse:
    """<option>s for the company picker's datalist, as the user types."""
    q = (request.GET.get("company") or request.GET.get("q") or "").strip()
    companies = selectors.company_options(user=request.user, q=q) if len(q) >= 2 else []
    html = render_to_string("contacts/_company_options.html", {"companies": companies}, request=request)
    return HttpResponse(html)
