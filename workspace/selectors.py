"""Read models for pages that span apps. workspace is the top app: it may read every other one."""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from accounts.models import Role
from accounts.roles import has_role
from accounts.selectors import recent_view_list
from contacts.selectors import company_list, contact_counts, contact_list, records_by_ids
from events.selectors import source_counts, source_health
from identity.selectors import hot_deals_owned, hot_leads_owned
from pipeline.selectors import deal_search, deals_by_ids, open_deals_summary
from pipeline.selectors.activities import activities_on_owned_records, tasks_due
from segments.selectors import segment_movements

HOME_LIMIT = 8


def home_stats(*, user) -> dict:
    return {"contacts": contact_counts(), "deals": open_deals_summary(), "sources": source_counts()}


@dataclass
class Viewed:
    kind: str  # "contact", "company" or "deal"
    record: object
    viewed_at: datetime


@dataclass
class Home:
    stats: dict
    sales: bool = False
    marketing: bool = False
    tasks: list = field(default_factory=list)
    tasks_total: int = 0
    hot_deals: list = field(default_factory=list)
    hot_leads: list = field(default_factory=list)
    activities: list = field(default_factory=list)
    viewed: list[Viewed] = field(default_factory=list)
    movements: list = field(default_factory=list)
    sources: list = field(default_factory=list)


def home(*, user, now: datetime | None = None) -> Home:
    """The start page: a rep's day (Sales, Admin) and the audience and data health (Marketing,
    Admin), besides the counters everyone sees. A fixed number of queries per panel, whatever the
    data: nothing here loops over rows to query."""
    now = now or timezone.now()
    page = Home(
        stats=home_stats(user=user),
        sales=has_role(user, Role.ADMIN, Role.SALES),
        marketing=has_role(user, Role.ADMIN, Role.MARKETING),
    )
    if page.sales:
        page.tasks, page.tasks_total = tasks_due(user=user, now=now, limit=HOME_LIMIT)
        page.hot_deals = hot_deals_owned(user=user, now=now, limit=HOME_LIMIT)
        page.hot_leads = hot_leads_owned(user=user, now=now, limit=HOME_LIMIT)
        page.activities = activities_on_owned_records(user=user, now=now, limit=HOME_LIMIT)
    if page.sales or page.marketing:
        page.viewed = recently_viewed(user=user, limit=HOME_LIMIT)
    if page.marketing:
        page.movements = segment_movements(user=user, now=now, limit=HOME_LIMIT)
        page.sources = source_health(now=now)
    return page


def recently_viewed(*, user, limit: int = 8) -> list[Viewed]:
    """The records the user opened last, newest first; deleted or merged-away ones drop out.
    Four queries at most: the views, then one per kind of record."""
    views = recent_view_list(user=user, limit=limit)
    ids = {kind: {v.object_id for v in views if v.kind == kind} for kind in ("contact", "company", "deal")}
    contacts, companies = records_by_ids(user=user, contact_ids=ids["contact"], company_ids=ids["company"])
    deals = deals_by_ids(user=user, deal_ids=ids["deal"]) if ids["deal"] else {}
    found = {"contact": contacts, "company": companies, "deal": deals}
    return [
        Viewed(kind=v.kind, record=found[v.kind][v.object_id], viewed_at=v.viewed_at)
        for v in views
        if v.object_id in found.get(v.kind, {})
    ]


def global_search(*, user, q: str, limit: int = 5) -> dict:
    """The first few contacts, companies and deals matching `q` (each list at most `limit`)."""
    contacts = list(
        contact_list(user=user, filters={"q": q}).select_related(None).select_related("company")[:limit]
    )
    companies = list(company_list(user=user, filters={"q": q}, with_counts=False)[:limit])
    return {"contacts": contacts, "companies": companies, "deals": deal_search(user=user, q=q, limit=limit)}
