"""The reports page's figures, each one SQL aggregate query.

What the date range applies to, per report (each report's natural date):
- pipeline by stage: open deals created in the range;
- forecast: open deals expected to close in the range;
- win rate and sales cycle: deals closed (won or lost) in the range;
- activities per rep: activities that occurred in the range.
The owner filter means the deal's owner, or the activity's author.

Each report may read the read replica (core.replica.replica_reads): heavy aggregates, for which
being up to DATABASE_REPLICA_MAX_LAG_SECONDS behind is acceptable.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Avg, Count, DecimalField, ExpressionWrapper, F, FloatField, Q, Sum
from django.db.models.functions import Cast, Coalesce, NullIf, TruncMonth, TruncWeek
from django.utils import timezone

from contacts.permissions import ensure_can_read
from core.replica import replica_reads
from pipeline.models import Activity, Deal, DealStatus, Stage

ZERO = Decimal("0")
MONEY = DecimalField(max_digits=16, decimal_places=2)


@dataclass(frozen=True)
class ReportFilters:
    date_from: date | None = None
    date_to: date | None = None
    owner_id: int | None = None

    def range_q(self, field: str, *, dates: bool = False) -> Q:
        """`field` within [date_from, date_to], both days included, in the current time zone."""
        q = Q()
        if self.date_from:
            q &= Q(**{f"{field}__gte": self.date_from if dates else _start_of(self.date_from)})
        if self.date_to:
            if dates:
                q &= Q(**{f"{field}__lte": self.date_to})
            else:
                q &= Q(**{f"{field}__lt": _start_of(self.date_to + timedelta(days=1))})
        return q


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _owner_q(filters: ReportFilters, field: str = "owner_id") -> Q:
    return Q(**{field: filters.owner_id}) if filters.owner_id else Q()


@replica_reads
def pipeline_by_stage(*, user: AbstractBaseUser, filters: ReportFilters) -> list[dict]:
    """Per stage (empty stages included), open deals' count, value and probability-weighted value."""
    ensure_can_read(user)
    open_deals = Q(deals__status=DealStatus.OPEN) & _prefixed(filters.range_q("created_at"), "deals__")
    if filters.owner_id:
        open_deals &= Q(deals__owner_id=filters.owner_id)
    weighted = ExpressionWrapper(F("deals__amount") * F("probability") / 100, output_field=MONEY)
    return list(
        Stage.objects.values("pk", "name", "probability", pipeline_name=F("pipeline__name"))
        .annotate(
            count=Count("deals", filter=open_deals),
            value=Coalesce(Sum("deals__amount", filter=open_deals), ZERO, output_field=MONEY),
            weighted=Coalesce(Sum(weighted, filter=open_deals), ZERO, output_field=MONEY),
        )
        .order_by("pipeline__position", "pipeline_id", "position", "pk")
    )


def _prefixed(q: Q, prefix: str) -> Q:
    """The same conditions on a related model (`created_at__gte` -> `deals__created_at__gte`)."""
    prefixed = Q()
    prefixed.connector, prefixed.negated = q.connector, q.negated
    prefixed.children = [(prefix + key, value) for key, value in q.children]
    return prefixed


@replica_reads
def forecast_by_month(*, user: AbstractBaseUser, filters: ReportFilters) -> list[dict]:
    """Open deals by expected close month: count, value and weighted value."""
    ensure_can_read(user)
    weighted = ExpressionWrapper(F("amount") * F("stage__probability") / 100, output_field=MONEY)
    return list(
        Deal.objects.filter(
            filters.range_q("expected_close_date", dates=True),
            _owner_q(filters),
            status=DealStatus.OPEN,
            expected_close_date__isnull=False,
        )
        .annotate(month=TruncMonth("expected_close_date"))
        .values("month")
        .annotate(
            count=Count("pk"),
            value=Coalesce(Sum("amount"), ZERO, output_field=MONEY),
            weighted=Coalesce(Sum(weighted), ZERO, output_field=MONEY),
        )
        .order_by("month")
    )


@replica_reads
def win_rate_by_owner(*, user: AbstractBaseUser, filters: ReportFilters) -> list[dict]:
    """Per owner, of deals closed in the range: won, lost, win rate (%) and the average days from
    creation to winning (the sales cycle counts won deals: a lost deal's cycle says little)."""
    ensure_can_read(user)
    won, lost = Q(status=DealStatus.WON), Q(status=DealStatus.LOST)
    rows = list(
        Deal.objects.filter(
            filters.range_q("closed_at"), _owner_q(filters), status__in=[DealStatus.WON, DealStatus.LOST]
        )
        .values("owner_id", owner_name=F("owner__username"))
        .annotate(
            won=Count("pk", filter=won),
            lost=Count("pk", filter=lost),
            won_value=Coalesce(Sum("amount", filter=won), ZERO, output_field=MONEY),
            win_rate=Cast(Count("pk", filter=won), FloatField()) * 100 / NullIf(Count("pk"), 0),
            avg_cycle=Avg(F("closed_at") - F("created_at"), filter=won),
        )
        .order_by("owner__username", "owner_id")
    )
    for row in rows:
        cycle = row.pop("avg_cycle")
        row["avg_cycle_days"] = round(cycle.total_seconds() / 86400, 1) if cycle is not None else None
        row["win_rate"] = round(row["win_rate"], 1)
    return rows


@replica_reads
def activities_per_rep_week(*, user: AbstractBaseUser, filters: ReportFilters) -> list[dict]:
    """Activities per author per week (weeks start on Monday), oldest week first."""
    ensure_can_read(user)
    return list(
        Activity.objects.filter(filters.range_q("occurred_at"), _owner_q(filters, "author_id"))
        .annotate(week=TruncWeek("occurred_at"))
        .values("week", "author_id", author_name=F("author__username"))
        .annotate(count=Count("pk"))
        .order_by("week", "author__username", "author_id")
    )
