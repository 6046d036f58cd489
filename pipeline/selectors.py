from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Sum
from django.db.models.functions import Coalesce

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
