"""Read models for pages that span apps. cdp_crm is the composition root: it may read every app."""

from contacts.selectors import contact_counts
from events.selectors import source_counts
from pipeline.selectors import open_deals_summary


def home_stats(*, user) -> dict:
    return {"contacts": contact_counts(), "deals": open_deals_summary(), "sources": source_counts()}
