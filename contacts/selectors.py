from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower

from cdp_crm.errors import NotFound
from contacts.models import Company, Contact, CustomField, FieldChange
from contacts.normalize import normalize_domain, normalize_email
from contacts.permissions import ensure_can_read

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
    (a user id, "me" or "none"), tag, lifecycle_stage, company (id), include_anonymous.
    """
    ensure_can_read(user)
    filters = filters or {}
    contacts = Contact.objects.filter(merged_into__isnull=True).select_related("company")
    if not filters.get("include_anonymous"):
        contacts = contacts.filter(is_identified=True)
    if q := (filters.get("q") or "").strip():
        # icontains scans the table; a trigram or full-text index replaces it when lists grow.
        contacts = contacts.filter(
            Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
            | Q(email__icontains=q)
            | Q(phone__icontains=q)
            | Q(company__name__icontains=q)
        )
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


def company_list(*, user: AbstractBaseUser, filters: dict[str, Any] | None = None) -> QuerySet[Company]:
    """Companies by name, each with its number of live contacts.

    Filters: q (name or domain contains), domain (exact, normalised), owner (id, "me", "none").
    """
    ensure_can_read(user)
    filters = filters or {}
    companies = _companies_with_counts()
    if q := (filters.get("q") or "").strip():
        companies = companies.filter(Q(name__icontains=q) | Q(domain__icontains=q))
    if "domain" in filters:
        companies = companies.filter(domain=normalize_domain(filters["domain"]) or "")
    if "owner" in filters:
        companies = companies.filter(_owner_q(filters["owner"], user))
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
