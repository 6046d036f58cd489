"""A new deal from a contact or a company page: "+ Deal" opens the form filled in with the record."""

import html

import pytest

from contacts.services import merging
from pipeline.models import Deal
from tests.factories import make_company, make_contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(fresh_install):
    acme = make_company(name="Acme & Sons", domain="acme.test")
    return make_contact(first_name="Ada", last_name="Lovelace", email="ada@acme.test", company=acme)


def _form(client, query: str, **headers) -> str:
    response = client.get(f"/deals/new/?{query}", headers=headers)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def _value(page: str, name: str) -> str:
    start = page.index(f'name="{name}"')
    tag = page[page.rindex("<", 0, start) : page.index(">", start)]
    return tag.split('value="', 1)[1].split('"', 1)[0] if 'value="' in tag else ""


def test_the_deals_panels_offer_a_new_deal_for_the_record_to_those_who_may_create_one(
    client, sales_user, marketing_user, ada
):
    client.force_login(sales_user)
    panel = client.get(f"/pipeline/contacts/{ada.pk}/deals/", headers={"HX-Request": "true"}).content.decode()
    assert f'href="/deals/new/?contact={ada.pk}"' in panel and 'data-testid="add-deal"' in panel
    panel = client.get(f"/pipeline/companies/{ada.company_id}/deals/").content.decode()
    assert f'href="/deals/new/?company={ada.company_id}"' in panel
    client.force_login(marketing_user)
    panel = client.get(f"/pipeline/contacts/{ada.pk}/deals/").content.decode()
    assert 'data-testid="add-deal"' not in panel
    assert client.get(f"/deals/new/?contact={ada.pk}").status_code == 403


def test_the_form_is_filled_in_with_the_contact_and_its_company(client, sales_user, ada):
    client.force_login(sales_user)
    page = _form(client, f"contact={ada.pk}", **{"HX-Request": "true"})
    assert _value(page, "contact") == f"Ada Lovelace (#{ada.pk})"
    assert _value(page, "company") == f"Acme & Sons (#{ada.company_id})"
    assert _value(page, "title") == "Acme & Sons deal"
    assert "New deal in Sales pipeline / Qualified" in page
    company_page = _form(client, f"company={ada.company_id}")
    assert (_value(company_page, "contact"), _value(company_page, "company")) == (
        "",
        f"Acme & Sons (#{ada.company_id})",
    )


def test_a_merged_away_contact_fills_in_the_one_it_was_merged_into(client, sales_user, admin_user, ada):
    twin = make_contact(first_name="Ada", email="ada.l@example.com")
    merging.contact_merge(winner=ada, loser=twin, field_choices={}, actor=admin_user)
    client.force_login(sales_user)
    assert _value(_form(client, f"contact={twin.pk}"), "contact") == f"Ada Lovelace (#{ada.pk})"


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "²", "9" * 20, "9" * 5000, "404404", ""])
def test_an_id_that_names_nothing_fills_nothing_in(client, sales_user, ada, value):
    client.force_login(sales_user)
    company = f"Acme & Sons (#{ada.company_id})"
    page = _form(client, f"contact={value}&company={ada.company_id}")
    assert (_value(page, "contact"), _value(page, "company")) == ("", company)
    page = _form(client, f"contact={ada.pk}&company={value}")
    assert (_value(page, "contact"), _value(page, "company")) == (f"Ada Lovelace (#{ada.pk})", company)


def test_saving_the_page_form_creates_the_deal_on_the_contact(client, sales_user, ada):
    client.force_login(sales_user)
    page = _form(client, f"contact={ada.pk}")  # opened as a page of its own, without htmx
    assert "hx-post" not in page.split('data-testid="deal-form"')[0].rsplit("<form", 1)[1]
    stage = _value(page, "stage")
    response = client.post(
        "/deals/new/",
        {
            "stage": stage,
            "title": _value(page, "title"),
            "currency": "USD",
            "contact": _value(page, "contact"),
            "company": _value(page, "company"),
        },
    )
    deal = Deal.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/deals/{deal.pk}/"
    assert (deal.title, deal.contact_id, deal.company_id, deal.owner_id) == (
        "Acme & Sons deal",
        ada.pk,
        ada.company_id,
        sales_user.pk,
    )
    # a bad value comes back as an error on the page, not in a modal that is not there
    refused = client.post("/deals/new/", {"stage": stage, "title": "", "currency": "USD"})
    assert refused.status_code == 422 and 'class="invalid-feedback"' in refused.content.decode()
