import pytest

from pipeline.models import Deal
from tests.browser.test_contacts import log_in
from tests.factories import make_company, make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_plus_deal_on_a_contact_page_creates_the_deal_on_the_contact(page, live_server, fresh_install):
    # given a fresh install (its default pipeline, nothing configured) and a rep's contact
    rita = make_user(role="Sales", username="rita")
    acme = make_company(name="Acme", domain="acme.test")
    ada = make_contact(
        first_name="Ada", last_name="Lovelace", email="ada@acme.test", company=acme, owner=rita
    )
    log_in(page, live_server, "rita")
    page.goto(live_server.url + f"/contacts/{ada.pk}/")
    # when she clicks "+ Deal" in the deals panel, the form opens filled in with Ada and Acme
    page.click("[data-testid=deals-panel] [data-testid=add-deal]")
    form = page.locator("#app-modal [data-testid=deal-form]")
    form.wait_for()
    assert form.locator("input[name=contact]").input_value() == f"Ada Lovelace (#{ada.pk})"
    assert form.locator("input[name=company]").input_value() == f"Acme (#{acme.pk})"
    form.locator("input[name=title]").fill("Ada's pilot")
    form.locator("input[name=amount]").fill("1200")
    form.locator("button[type=submit]").click()
    # then she lands on the new deal, linked to Ada
    page.wait_for_url(f"{live_server.url}/deals/*/")
    deal = Deal.objects.get()
    assert page.url == f"{live_server.url}/deals/{deal.pk}/"
    assert (deal.title, deal.contact_id, deal.company_id, deal.owner_id) == (
        "Ada's pilot",
        ada.pk,
        acme.pk,
        rita.pk,
    )
    assert page.inner_text("[data-testid=deal-title]") == "Ada's pilot"
    assert "Ada Lovelace" in page.inner_text("[data-testid=deal-contacts]")
    # and Ada's page lists it
    page.goto(live_server.url + f"/contacts/{ada.pk}/")
    page.wait_for_selector("[data-testid=deals-panel] >> text=Ada's pilot")
