from decimal import Decimal

from django.db.models import Case, Count, DecimalField, ExpressionWrapper, F, Sum, When
from django.db.models.functions import Coalesce

from contacts.permissions import ensure_can_read
from pipeline.models import Deal, DealStatus


def open_deals_summary() -> dict:
    """Count, total value and probability-weighted value of open deals."""
    zero = Decimal("0")
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability") / 100,
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )
    return Deal.objects.filter(status=DealStatus.OPEN).aggregate(
        count=Count("pk"),
        value=Coalesce(Sum("amount"), zero, output_field=DecimalField()),
        weighted=Coalesce(Sum(weighted), zero, output_field=DecimalField()),
    )


def deals_for_contact(*, user, contact_id: int, limit: int = 20) -> list[Deal]:
    """A contact's deals for its detail page: open ones first, then the newest."""
    ensure_can_read(user)
    return list(_deals_panel(Deal.objects.filter(contact_id=contact_id))[:limit])


def deals_for_company(*, user, company_id: int, limit: int = 20) -> list[Deal]:
    ensure_can_read(user)
    return list(_deals_panel(Deal.objects.filter(company_id=company_id))[:limit])


def _deals_panel(deals):
    open_first = Case(When(status=DealStatus.OPEN, then=0), default=1)
    return deals.select_related("stage", "owner").order_by(open_first, "-created_at", "-pk")


def deal_search(*, user, q: str, limit: int = 5) -> list[Deal]:
    """Deals whose title contains `q`, for the global search box (open deals first)."""
    ensure_can_read(user)
    q = q.strip()
    if not q:
        return []
    deals = Deal.objects.filter(title__icontains=q).select_related("stage", "contact", "company")
    return list(_deals_panel(deals)[:limit])
