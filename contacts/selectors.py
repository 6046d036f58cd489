import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Concat, Lower
from django.utils.module_loading import import_string

from accounts.models import Role
from contacts.models import (
    Company,
    Contact,
    CustomField,
    CustomFieldType,
    FieldChange,
    ListColumns,
    SavedView,
    company_search_text,
    contact_search_text,
)
from contacts.permissions import ensure_can_read
from core.errors import NotFound
from core.normalize import normalize_domain, normalize_email
from core.pagination import KeysetPage, SplitKey, keyset_page, keyset_page_split

# A merge chain longer than this is a bug (merges point at live winners); stop rather than loop.
MAX_MERGE_HOPS = 20


def contact_counts() -> dict[str, int]:
    """Live (not merged) contacts: identified people, anonymous visitors; and companies."""
    counts = Contact.objects.filter(merged_into__isnull=True).aggregate(
        identified=Count("pk", filter=Q(is_identified=True)),
        anonymous=Count("pk", filter=Q(is_identified=False)),
    )
    counts["companies"] = Company.objects.count()
    return counts


def contact_list(*, user: AbstractBaseUser, filters: dict[str, Any] | None = None) -> QuerySet[Contact]:
    """Live contacts, newest first; identified people only unless `include_anonymous` is set.

    Filters: q (name, email, phone or company name contains), email (exact, normalised), owner
    (a user id, "me" or "none"), tag, lifecycle_stage, company (id), include_anonymous,
    created_from / created_to and last_seen_from / last_seen_to (aware datetimes, from inclusive,
    to exclusive), custom_fields ({key: value}; text contains, other types equal), columns
    ([(ListColumn, cleaned value)]: a higher app's column filters, see contact_list_columns).
    """
    ensure_can_read(user)
    filters = filters or {}
    contacts = Contact.objects.filter(merged_into__isnull=True).select_related("company")
    if not filters.get("include_anonymous"):
        contacts = contacts.filter(is_identified=True)
    if q := (filters.get("q") or "").strip():
        contacts = _contact_search(contacts, q)
    if "email" in filters:
        # Lower(email) matches the expression of the unique index, so this is an index lookup.
        contacts = contacts.alias(email_lower=Lower("email")).filter(
            email_lower=normalize_email(filters["email"]) or ""
        )
    if "owner" in filters:
        contacts = contacts.filter(_owner_q(filters["owner"], user))
    if tag := (filters.get("tag") or "").strip().lower():
        contacts = contacts.filter(tags__contains=[tag])
    if stage := filters.get("lifecycle_stage"):
        contacts = contacts.filter(lifecycle_stage=stage)
    if "company" in filters:
        contacts = contacts.filter(company_id=filters["company"])
    for name, lookup in _RANGES.items():
        if filters.get(name) is not None:
            contacts = contacts.filter(**{lookup: filters[name]})
    if custom := filters.get("custom_fields"):
        contacts = contacts.filter(_custom_fields_q(custom, entity="contact"))
    for column, value in filters.get("columns") or ():
        contacts = column.filter(column.annotate(contacts), value)
    # The pk breaks created_at ties, so limit/offset pages neither repeat nor skip rows.
    return contacts.order_by("-created_at", "-pk")


def contact_get(*, user: AbstractBaseUser, contact_id: int) -> Contact:
    """Any contact by id, tombstones included (see contact_surviving)."""
    ensure_can_read(user)
    contact = Contact.objects.select_related("company").filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"Contact {contact_id} does not exist.")
    return contact


def contact_surviving(*, contact: Contact) -> Contact:
    """The live contact a tombstone was merged into, following the chain; a live contact itself."""
    seen = {contact.pk}
    while contact.merged_into_id is not None:
        if contact.merged_into_id in seen or len(seen) > MAX_MERGE_HOPS:
            raise NotFound(f"Contact {contact.pk} was merged, but its merge chain does not end.")
        seen.add(contact.merged_into_id)
        survivor = Contact.objects.select_related("company").filter(pk=contact.merged_into_id).first()
        if survivor is None:
            raise NotFound(f"Contact {contact.pk} was merged into a contact that no longer exists.")
        contact = survivor
    return contact


def company_list(
    *, user: AbstractBaseUser, filters: dict[str, Any] | None = None, with_counts: bool = True
) -> QuerySet[Company]:
    """Companies by name, each with its number of live contacts (unless `with_counts` is off:
    counting joins every contact, so pages count only their own rows, see company_contact_counts).

    Filters: q (name or domain contains), domain (exact, normalised), owner (id, "me", "none"),
    custom_fields ({key: value}).
    """
    ensure_can_read(user)
    filters = filters or {}
    companies = _companies_with_counts() if with_counts else Company.objects.all()
    if q := (filters.get("q") or "").strip():
        companies = companies.filter(_company_search_q(q))
    if "domain" in filters:
        companies = companies.filter(domain=normalize_domain(filters["domain"]) or "")
    if "owner" in filters:
        companies = companies.filter(_owner_q(filters["owner"], user))
    if custom := filters.get("custom_fields"):
        companies = companies.filter(_custom_fields_q(custom, entity="company"))
    return companies.order_by("name", "pk")


def company_get(*, user: AbstractBaseUser, company_id: int) -> Company:
    ensure_can_read(user)
    company = _companies_with_counts().filter(pk=company_id).first()
    if company is None:
        raise NotFound(f"Company {company_id} does not exist.")
    return company


def _companies_with_counts() -> QuerySet[Company]:
    return Company.objects.annotate(
        contact_count=Count("contacts", filter=Q(contacts__merged_into__isnull=True))
    )


def _owner_q(owner: int | str, user: AbstractBaseUser) -> Q:
    if owner == "me":
        return Q(owner_id=user.pk)
    if owner == "none":
        return Q(owner__isnull=True)
    return Q(owner_id=int(owner))


def custom_field_definitions(*, entity: str) -> list[CustomField]:
    """The Admin-defined fields of contacts or companies, in display order."""
    return list(CustomField.objects.filter(entity=entity))


def field_history(*, entity: str, object_id: int, limit: int = 100) -> list[FieldChange]:
    return list(
        FieldChange.objects.filter(entity=entity, object_id=object_id).select_related("actor")[:limit]
    )


# --- search

# Below three characters a trigram index cannot narrow `LIKE '%q%'`; the search still works, as a
# scan (measured in docs/benchmarks.md).


# Up to this many matching companies, their ids go into the query as a list; past it, a subquery.
COMPANY_MATCH_LIST_MAX = 2000


def _contact_search(contacts: QuerySet[Contact], q: str) -> QuerySet[Contact]:
    """Contacts whose name, email or phone contains `q`, or whose company's name or domain does.

    The matching companies are looked up first (their trigram index, usually a handful of ids),
    so the contact condition is `search LIKE … OR company_id IN (ids)`: Postgres answers it with
    a BitmapOr of the trigram index and the company_id index. An `OR` over a join or an `IN
    (subquery)` makes it scan every contact instead (measured in docs/benchmarks.md).
    """
    needle = q.lower()
    companies = Company.objects.alias(search=company_search_text()).filter(search__contains=needle)
    company_ids = list(companies.values_list("pk", flat=True)[: COMPANY_MATCH_LIST_MAX + 1])
    contacts = contacts.alias(search=contact_search_text())
    if len(company_ids) > COMPANY_MATCH_LIST_MAX:  # a very broad term: correct, if slower
        return contacts.filter(Q(search__contains=needle) | Q(company__in=companies.values("pk")))
    if company_ids:
        return contacts.filter(Q(search__contains=needle) | Q(company_id__in=company_ids))
    return contacts.filter(search__contains=needle)


def _company_search_q(q: str) -> Q:
    companies = Company.objects.alias(search=company_search_text()).filter(search__contains=q.lower())
    return Q(pk__in=companies.values("pk"))


_RANGES = {
    "created_from": "created_at__gte",
    "created_to": "created_at__lt",
    "last_seen_from": "last_seen__gte",
    "last_seen_to": "last_seen__lt",
}


def _custom_fields_q(values: dict[str, Any], *, entity: str) -> Q:
    """Text fields match on contains (case-insensitive); the others on their stored JSON value."""
    kinds = {d.key: d.field_type for d in custom_field_definitions(entity=entity)}
    condition = Q()
    for key, value in values.items():
        kind = kinds.get(key)
        if kind is None or value is None or value == "":
            continue
        if kind == CustomFieldType.TEXT:
            condition &= Q(**{f"custom_fields__{key}__icontains": str(value)})
        else:
            condition &= Q(custom_fields__contains={key: value})
    return condition


# --- list pages: sorting and keyset pages

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Sort keys are NOT NULL (keyset pagination compares them); nullable columns sort as "" or 1970.
CONTACT_SORTS = {
    "created": F("created_at"),
    "updated": F("updated_at"),
    "name": Lower(Concat("first_name", Value(" "), "last_name")),
    "email": Coalesce("email", Value("")),
    "phone": F("phone"),
    "title": Lower("title"),
    "company": Coalesce(Lower("company__name"), Value("")),
    "owner": Coalesce(Lower("owner__username"), Value("")),
    "lifecycle_stage": F("lifecycle_stage"),
    "last_seen": Coalesce("last_seen", Value(_EPOCH)),
}
COMPANY_SORTS = {
    "name": Lower("name"),
    "domain": Coalesce("domain", Value("")),
    "industry": Lower("industry"),
    "size": F("size"),
    "owner": Coalesce(Lower("owner__username"), Value("")),
    "created": F("created_at"),
    "updated": F("updated_at"),
}


def parse_sort(sort: str | None, *, sorts: dict, default: str) -> tuple[str, bool]:
    """'-name' -> ('name', descending); unknown keys fall back to the default."""
    sort = sort or default
    name = sort.removeprefix("-")
    if name not in sorts:
        return parse_sort(default, sorts=sorts, default=default)
    return name, sort.startswith("-")


def contact_page(
    *,
    user: AbstractBaseUser,
    filters: dict[str, Any],
    sort: str | None,
    cursor: str | None,
    size: int = 50,
    columns: list["ListColumn"] = (),
) -> KeysetPage:
    """One page of contact_list for the HTML list, owner and company loaded with it; `columns`
    (higher apps' list columns) put their values on the rows, and may be sorted on by key."""
    sorts = CONTACT_SORTS | {c.key: c.sort for c in columns if c.sort is not None}
    name, descending = parse_sort(sort, sorts=sorts, default="-created")
    contacts = contact_list(user=user, filters=filters).select_related("company", "owner")
    for column in columns:
        contacts = column.annotate(contacts)
    split = next((c.split for c in columns if c.key == name and c.split is not None), None)
    if split is not None:
        return keyset_page_split(contacts, key=split, descending=descending, cursor=cursor, size=size)
    return keyset_page(contacts, key=sorts[name], descending=descending, cursor=cursor, size=size)


# --- list columns contributed by higher apps

# A key goes into URLs (?sort=, the filter's field name, DOM ids) and must not shadow a built-in
# column or a custom field's "cf_" key: lower-case, starting with a letter, with an app prefix.
LIST_COLUMN_KEY = re.compile(r"^[a-z][a-z0-9]*_[a-z0-9_]{1,60}$")


def _as_text(value: Any) -> str:
    return str(value)


@dataclass(frozen=True)
class ListColumn:
    """A contact-list column a higher app contributes (settings.CONTACT_LIST_COLUMN_HOOKS).

    - `annotate(queryset) -> queryset` adds the column's value to the contacts query under the
      name `key` (an annotation: a Subquery, or a FilteredRelation join and an F). It is applied
      to the page's query, to the sort's key query and, when filtering, to the filter's query.
    - `sort`: a NOT NULL expression over what `annotate` added (keyset pages compare it; Coalesce
      a nullable value), or None for a column that does not sort. Make it index-friendly: a value
      in one indexed column of the joined table, not a computation per contact.
    - `split`: for a value read from a joined table, the same order as `sort` in an index-driven
      form (core.pagination.SplitKey): the list pages it with keyset_page_split.
    - `render(value) -> str`: the cell's text for a non-NULL value; the list escapes it (HTML in
      it is shown as text). NULL shows "—".
    - `filter_field() -> forms.Field` and `filter(queryset, cleaned value) -> queryset`: the
      column's box in the list's filter panel (its errors are the form's errors); both or neither.
    """

    key: str
    label: str
    annotate: Callable[[QuerySet], QuerySet]
    sort: Any = None
    split: SplitKey | None = None
    render: Callable[[Any], str] = _as_text
    filter_field: Callable[[], Any] | None = None
    filter: Callable[[QuerySet, Any], QuerySet] | None = None


def contact_list_columns() -> list[ListColumn]:
    """Every column the CONTACT_LIST_COLUMN_HOOKS providers offer now (each provider is called
    with no arguments and returns a list of ListColumn; one query each, per list request)."""
    # settings.CONTACT_LIST_COLUMN_HOOKS wires this; traits (computed traits) provides one.
    columns: list[ListColumn] = []
    seen = set(CONTACT_SORTS) | {"tags"}
    for path in getattr(settings, "CONTACT_LIST_COLUMN_HOOKS", []):
        for column in import_string(path)():
            if not LIST_COLUMN_KEY.match(column.key) or column.key in seen or column.key.startswith("cf_"):
                raise ValueError(f"{path}: bad or duplicate list column key {column.key!r}")
            if (column.filter is None) != (column.filter_field is None):
                raise ValueError(f"{path}: column {column.key!r} needs both filter and filter_field")
            seen.add(column.key)
            columns.append(column)
    return columns


def company_page(
    *, user: AbstractBaseUser, filters: dict[str, Any], sort: str | None, cursor: str | None, size: int = 50
) -> KeysetPage:
    name, descending = parse_sort(sort, sorts=COMPANY_SORTS, default="name")
    companies = company_list(user=user, filters=filters, with_counts=False).select_related("owner")
    page = keyset_page(companies, key=COMPANY_SORTS[name], descending=descending, cursor=cursor, size=size)
    counts = company_contact_counts(company_ids=[c.pk for c in page.rows])
    for company in page.rows:
        company.contact_count = counts.get(company.pk, 0)
    return page


def company_contact_counts(*, company_ids: list[int]) -> dict[int, int]:
    """Live contacts per company, for the given companies only (one grouped index scan)."""
    if not company_ids:
        return {}
    rows = (
        Contact.objects.filter(company_id__in=company_ids, merged_into__isnull=True)
        .values("company_id")
        .annotate(n=Count("pk"))
    )
    return {row["company_id"]: row["n"] for row in rows}


def count_capped(queryset: QuerySet, *, cap: int = 10_000) -> tuple[int, bool]:
    """How many rows, counting at most `cap` + 1: an exact total of 100k rows costs a full scan,
    and "10,000+" tells a rep what they need to know."""
    n = queryset.select_related(None).order_by().values("pk")[: cap + 1].count()
    return min(n, cap), n > cap


# --- per-user list settings


def saved_views(*, user: AbstractBaseUser, entity: str) -> list[SavedView]:
    return list(SavedView.objects.filter(user=user, entity=entity))


def list_columns(*, user: AbstractBaseUser, entity: str) -> list[str] | None:
    """The columns the user chose for a list, or None when they never chose."""
    row = ListColumns.objects.filter(user=user, entity=entity).values_list("columns", flat=True).first()
    return row


def owner_choices() -> list:
    """Active users who may own CRM records (Admins and Sales), by username."""
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name__in=[Role.ADMIN, Role.SALES]) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


def user_names(*, user_ids: set[int]) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))


def company_names(*, company_ids: set[int]) -> dict[int, str]:
    return dict(Company.objects.filter(pk__in=company_ids).values_list("pk", "name"))


def company_options(*, user: AbstractBaseUser, q: str, limit: int = 10) -> list[Company]:
    """Companies for a picker: name or domain contains `q`."""
    return list(company_list(user=user, filters={"q": q}, with_counts=False)[:limit])


def contact_person_ids(*, contact: Contact) -> list[int]:
    """The contact and every tombstone merged into it, recursively: one person's rows."""
    person = frontier = {contact.pk}
    while frontier:
        frontier = set(Contact.objects.filter(merged_into__in=frontier).values_list("pk", flat=True)) - person
        person = person | frontier
    return sorted(person)


def records_by_ids(
    *, user: AbstractBaseUser, contact_ids: set[int], company_ids: set[int]
) -> tuple[dict[int, Contact], dict[int, Company]]:
    """Live contacts and companies by id (the home page's recently viewed); merged-away contacts
    and deleted records are left out. Two queries at most."""
    ensure_can_read(user)
    contacts = (
        {c.pk: c for c in Contact.objects.filter(pk__in=contact_ids, merged_into__isnull=True)}
        if contact_ids
        else {}
    )
    companies = {c.pk: c for c in Company.objects.filter(pk__in=company_ids)} if company_ids else {}
    return contacts, companies
