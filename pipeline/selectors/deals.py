from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from accounts.models import Role
from accounts.roles import has_role
from contacts.permissions import ensure_can_read
from core.errors import NotFound
from core.params import parse_id
from pipeline.models import Deal, DealStatus, LostReason, Pipeline, Stage, StageChange


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


# --- the board

CARDS_PER_PAGE = 20
ZERO = Decimal("0")


def next_activity_badge(next_activity_at: datetime | None, *, now: datetime) -> str:
    """The card's next-activity colour, by calendar day in the site's time zone (as Pipedrive):
    "overdue" (red), "today" (green), "future" (grey), or "none" (yellow: nothing scheduled)."""
    if next_activity_at is None:
        return "none"
    due = timezone.localdate(next_activity_at)
    today = timezone.localdate(now)
    if due < today:
        return "overdue"
    if due == today:
        return "today"
    return "future"


def rotting_days(
    *,
    stage_entered_at: datetime | None,
    last_activity_at: datetime | None,
    rot_after: int | None,
    now: datetime,
) -> int | None:
    """Days a deal has been rotting: idle (since it entered its stage or its last activity,
    whichever is later) longer than the stage allows. None when fresh or the stage never rots."""
    if not rot_after:
        return None
    touched = max((t for t in (stage_entered_at, last_activity_at) if t is not None), default=None)
    if touched is None:
        return None
    idle = (now - touched).days
    return idle - rot_after if idle > rot_after else None


def board_order(*, now: datetime | None = None) -> list:
    """Urgency first (overdue, due today, nothing scheduled, future), then the rep's own order
    from drag and drop, then newest first."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(today, time.min))
    end = start + timedelta(days=1)
    urgency = Case(
        When(next_activity_at__isnull=True, then=Value(2)),
        When(next_activity_at__lt=start, then=Value(0)),
        When(next_activity_at__lt=end, then=Value(1)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return [urgency, "position", "-created_at", "-pk"]


@dataclass
class BoardFilters:
    owner: str = "all"  # "mine", "all", "none" or a user id
    close_from: date | None = None
    close_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None

    def q(self, user: AbstractBaseUser) -> Q:
        q = Q()
        if self.owner == "mine":
            q &= Q(owner_id=user.pk)
        elif self.owner == "none":
            q &= Q(owner__isnull=True)
        elif (owner_id := parse_id(self.owner)) is not None:
            q &= Q(owner_id=owner_id)
        if self.close_from:
            q &= Q(expected_close_date__gte=self.close_from)
        if self.close_to:
            q &= Q(expected_close_date__lte=self.close_to)
        if self.amount_min is not None:
            q &= Q(amount__gte=self.amount_min)
        if self.amount_max is not None:
            q &= Q(amount__lte=self.amount_max)
        return q


def default_owner_filter(user: AbstractBaseUser) -> str:
    """A rep starts on their own deals; Admin and Marketing on the team's."""
    return "mine" if has_role(user, Role.SALES) and not has_role(user, Role.ADMIN) else "all"


@dataclass
class Column:
    stage: Stage
    count: int = 0
    value: Decimal = ZERO
    weighted: Decimal = ZERO
    cards: list[Deal] = field(default_factory=list)
    has_more: bool = False


@dataclass
class Board:
    pipeline: Pipeline
    columns: list[Column]

    @property
    def count(self) -> int:
        return sum(c.count for c in self.columns)

    @property
    def value(self) -> Decimal:
        return sum((c.value for c in self.columns), ZERO)

    @property
    def weighted(self) -> Decimal:
        return sum((c.weighted for c in self.columns), ZERO)


def pipeline_list(*, user: AbstractBaseUser, with_deal_counts: bool = False) -> list[Pipeline]:
    """Every pipeline with its stages; `with_deal_counts` sets each stage's `deal_count` (deals of
    any status: a stage that holds one cannot go without a place to move them). One query more."""
    ensure_can_read(user)
    pipelines = list(Pipeline.objects.prefetch_related("stages"))
    if with_deal_counts:
        counts = dict(
            Deal.objects.filter(stage__pipeline__in=pipelines)
            .values("stage")
            .annotate(n=Count("pk"))
            .values_list("stage", "n")
        )
        for pipeline in pipelines:
            for stage in pipeline.stages.all():
                stage.deal_count = counts.get(stage.pk, 0)
    return pipelines


def pipeline_get(*, user: AbstractBaseUser, pipeline_id: int | None) -> Pipeline:
    """The pipeline asked for, or the first one."""
    ensure_can_read(user)
    pipelines = Pipeline.objects.all()
    asked = pipeline_id is not None
    pipeline = pipelines.filter(pk=pipeline_id).first() if asked else pipelines.first()
    if pipeline is None:
        raise NotFound("No such pipeline." if asked else "No pipeline yet: an Admin creates one in Settings.")
    return pipeline


def board_totals(*, user: AbstractBaseUser, pipeline: Pipeline, filters: BoardFilters) -> Board:
    """Columns with count, value and weighted value of the open deals that pass the filters,
    in one grouped query (no cards)."""
    ensure_can_read(user)
    stages = list(pipeline.stages.all())
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability") / 100,
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )
    rows = (
        _open(pipeline, filters, user)
        .order_by()
        .values("stage_id")
        .annotate(count=Count("pk"), value=Sum("amount"), weighted=Sum(weighted))
    )
    by_stage = {row["stage_id"]: row for row in rows}
    columns = []
    for stage in stages:
        row = by_stage.get(stage.pk, {})
        columns.append(
            Column(
                stage=stage,
                count=row.get("count", 0),
                value=row.get("value") or ZERO,
                weighted=(row.get("weighted") or ZERO).quantize(Decimal("0.01")),
            )
        )
    return Board(pipeline=pipeline, columns=columns)


def board_get(*, user: AbstractBaseUser, pipeline: Pipeline, filters: BoardFilters) -> Board:
    """The whole board: totals, and the first page of cards of every column in one query (a
    window per stage), so the page costs the same with 50 deals or 5,000."""
    board = board_totals(user=user, pipeline=pipeline, filters=filters)
    order = board_order()
    # Rank the bare deal rows first and join contact, company and owner only for the ~20 per
    # column that survive: joining all 5,000 before the window filter cost twice as much.
    first_pages = (
        _open(pipeline, filters, user)
        .annotate(rank=Window(RowNumber(), partition_by=[F("stage_id")], order_by=order))
        .filter(rank__lte=CARDS_PER_PAGE + 1)
        .values("pk")
    )
    ranked = _cards(Deal.objects.filter(pk__in=first_pages)).order_by("stage_id", *order)
    by_stage: dict[int, list[Deal]] = {}
    for deal in ranked:
        by_stage.setdefault(deal.stage_id, []).append(deal)
    for column in board.columns:
        cards = by_stage.get(column.stage.pk, [])
        column.cards, column.has_more = cards[:CARDS_PER_PAGE], len(cards) > CARDS_PER_PAGE
    return board


def column_cards(
    *, user: AbstractBaseUser, stage: Stage, filters: BoardFilters, offset: int = 0
) -> tuple[list[Deal], bool]:
    """One page of a column's cards (infinite scroll), and whether more follow."""
    ensure_can_read(user)
    deals = _cards(_open(stage.pipeline, filters, user).filter(stage=stage)).order_by(*board_order())
    page = list(deals[offset : offset + CARDS_PER_PAGE + 1])
    return page[:CARDS_PER_PAGE], len(page) > CARDS_PER_PAGE


def _open(pipeline: Pipeline, filters: BoardFilters, user: AbstractBaseUser) -> QuerySet[Deal]:
    return Deal.objects.filter(filters.q(user), pipeline=pipeline, status=DealStatus.OPEN)


def _cards(deals: QuerySet[Deal]) -> QuerySet[Deal]:
    return deals.select_related("contact", "company", "owner", "stage")


def stage_get(*, user: AbstractBaseUser, stage_id: int) -> Stage:
    ensure_can_read(user)
    stage = Stage.objects.select_related("pipeline").filter(pk=stage_id).first()
    if stage is None:
        raise NotFound("No such stage.")
    return stage


# --- deals


def deal_get(*, user: AbstractBaseUser, deal_id: int) -> Deal:
    ensure_can_read(user)
    deal = (
        Deal.objects.select_related("pipeline", "stage", "contact", "company", "owner")
        .filter(pk=deal_id)
        .first()
    )
    if deal is None:
        raise NotFound(f"No deal {deal_id}.")
    return deal


def deal_list(*, user: AbstractBaseUser, filters: dict) -> QuerySet[Deal]:
    """Deals for the API: filter by pipeline, stage, owner ("me", "none" or an id) and status."""
    ensure_can_read(user)
    deals = (
        Deal.objects.select_related("stage").prefetch_related("participants").order_by("-created_at", "-pk")
    )
    for name in ("pipeline", "stage", "status"):
        if filters.get(name) not in (None, ""):
            deals = deals.filter(**{name: filters[name]})
    owner = filters.get("owner")
    if owner == "me":
        deals = deals.filter(owner_id=user.pk)
    elif owner == "none":
        deals = deals.filter(owner__isnull=True)
    elif owner is not None:
        deals = deals.filter(owner_id=owner)
    return deals


def deal_stage_history(*, user: AbstractBaseUser, deal: Deal, limit: int = 100) -> list[StageChange]:
    ensure_can_read(user)
    return list(
        StageChange.objects.filter(deal=deal).select_related("from_stage", "to_stage", "actor")[:limit]
    )


def lost_reasons(*, active_only: bool = True) -> list[LostReason]:
    reasons = LostReason.objects.all()
    return list(reasons.filter(active=True) if active_only else reasons)


# --- for the identity app's CRM views (contact timeline, deal signals, hot-deal alerts)


def _deals_of_contacts(contact_ids: Collection[int]) -> Q:
    """Deals a contact is on, as the primary contact or as a participant."""
    participating = Deal.participants.through.objects.filter(contact_id__in=contact_ids).values("deal_id")
    return Q(contact_id__in=contact_ids) | Q(pk__in=participating)


def stage_changes_for_contact(
    *, user: AbstractBaseUser, contact_id: int, until: datetime | None = None, limit: int = 20
) -> list[StageChange]:
    """Stage changes of the deals a contact is on, newest first, at or before `until`."""
    ensure_can_read(user)
    changes = StageChange.objects.filter(deal__in=Deal.objects.filter(_deals_of_contacts([contact_id])))
    if until is not None:
        changes = changes.filter(changed_at__lte=until)
    return list(
        changes.select_related("deal", "from_stage", "to_stage", "actor").order_by("-changed_at", "-pk")[
            :limit
        ]
    )


def deal_contact_ids(*, deal_ids: Collection[int]) -> dict[int, list[int]]:
    """Each deal's people: the primary contact first, then participants (two queries in all)."""
    people: dict[int, list[int]] = {}
    for deal_id, contact_id in Deal.objects.filter(pk__in=deal_ids).values_list("pk", "contact_id"):
        people[deal_id] = [contact_id] if contact_id else []
    through = Deal.participants.through.objects.filter(deal_id__in=deal_ids).order_by("pk")
    for deal_id, contact_id in through.values_list("deal_id", "contact_id"):
        if contact_id not in people.setdefault(deal_id, []):
            people[deal_id].append(contact_id)
    return people


def open_deals_for_contacts(*, contact_ids: Collection[int]) -> list[Deal]:
    """Open deals any of these contacts is on, with their owners, oldest first."""
    if not contact_ids:
        return []
    return list(
        Deal.objects.filter(_deals_of_contacts(contact_ids), status=DealStatus.OPEN)
        .select_related("owner")
        .order_by("pk")
    )


def deals_of_contacts(*, contact_ids: Collection[int]) -> QuerySet[Deal]:
    """Deals with these contacts as primary contact or participant (privacy's export and erasure)."""
    return Deal.objects.filter(_deals_of_contacts(contact_ids)).distinct().order_by("pk")


def deals_by_ids(*, user: AbstractBaseUser, deal_ids: Collection[int]) -> dict[int, Deal]:
    """Deals by id (the home page's recently viewed); missing ids are left out."""
    ensure_can_read(user)
    return {d.pk: d for d in Deal.objects.filter(pk__in=deal_ids).select_related("stage")}
