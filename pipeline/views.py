"""Pipeline pages. The contact and company pages lazy-load their deals panel from here: contacts
may not import pipeline, so the app that knows deals renders them."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cdp_crm.errors import domain_errors
from pipeline import selectors


@require_GET
@domain_errors
def contact_deals(request: HttpRequest, pk: int) -> HttpResponse:
    deals = selectors.deals_for_contact(user=request.user, contact_id=pk)
    return render(request, "pipeline/related_deals.html", {"deals": deals})


@require_GET
@domain_errors
def company_deals(request: HttpRequest, pk: int) -> HttpResponse:
    deals = selectors.deals_for_company(user=request.user, company_id=pk)
    return render(request, "pipeline/related_deals.html", {"deals": deals})
