"""Read models for pages that span apps. cdp_crm is the composition root: it may read every app."""

from contacts.selectors import company_list, contact_counts, contact_list
from events.selectors import source_counts
from pipeline.selectors import deal_search, open_deals_summary


def home_stats(*, user) -> dict:
    return {"contacts": contact_counts(), "deals": open_deals_summary(), "sources": source_counts()}


def global_search(*, user, q: str, limit: int = 5) -> dict:
    """The first few contacts, companies and deals matching `q` (each list at most `limit`)."""
    contacts = list(
        contact_list(user=user, filters={"q": q}).select_related(None).select_related("company")[:limit]
    )
    companies = list(company_list(user=user, filters={"q": q}, with_counts=False)[:limit])
    return {"contacts": contacts, "companies": companies, "deals": deal_search(user=user, q=q, limit=limit)}
