import pytest

from pipeline.models import DealStatus
from pipeline.selectors import deal_search, deals_for_contact
from tests.factories import make_company, make_contact, make_deal, make_user

pytestmark = pytest.mark.django_db


def test_contact_deals_panel_lists_open_deals_first(client, sales_user, stage):
    contact = make_contact(first_name="Ada")
    make_deal(stage, title="Lost one", contact=contact, status=DealStatus.LOST, lost_reason="Price", amount=5)
    make_deal(stage, title="Big one", contact=contact, amount=12000)
    make_deal(stage, title="Someone else's", contact=make_contact(first_name="Grace"))
    client.force_login(sales_user)
    html = client.get(f"/pipeline/contacts/{contact.pk}/deals/", HTTP_HX_REQUEST="true").content.decode()
    assert html.index("Big one") < html.index("Lost one")
    assert "12,000 USD" in html and "Someone else" not in html and "<html" not in html


def test_company_deals_panel_and_empty_state(client, sales_user, stage):
    acme = make_company(name="Acme")
    client.force_login(sales_user)
    assert "No deals yet." in client.get(f"/pipeline/companies/{acme.pk}/deals/").content.decode()
    make_deal(stage, title="Acme pilot", company=acme)
    assert "Acme pilot" in client.get(f"/pipeline/companies/{acme.pk}/deals/").content.decode()


def test_deal_selectors_refuse_users_without_a_role(stage):
    from django.contrib.auth import get_user_model

    from core.errors import Forbidden

    roleless = get_user_model().objects.create_user(username="r", password="x-1234567890")
    with pytest.raises(Forbidden):
        deals_for_contact(user=roleless, contact_id=1)
    with pytest.raises(Forbidden):
        deal_search(user=roleless, q="x")


def test_deal_search_matches_titles(stage):
    rep = make_user(role="Sales")
    make_deal(stage, title="Acme renewal")
    make_deal(stage, title="Globex pilot")
    assert [d.title for d in deal_search(user=rep, q="RENEW")] == ["Acme renewal"]
    assert deal_search(user=rep, q="  ") == []


def test_deal_page_shows_first_touch_tags_not_the_touch_timestamp_key(client, sales_user, stage):
    deal = make_deal(
        stage,
        title="Attributed",
        owner=sales_user,
        attribution={"utm_source": "<b>news</b>", "touched_at": "2026-11-01T10:00:00+00:00"},
    )
    client.force_login(sales_user)
    html = client.get(f"/deals/{deal.pk}/").content.decode()
    assert "utm_source: &lt;b&gt;news&lt;/b&gt;" in html
    assert "touched_at" not in html


def test_an_unowned_deal_page_says_nobody_owns_it(client, sales_user, stage):
    # A filter argument that cannot be looked up (deal.owner is None) raised instead of defaulting.
    deal = make_deal(stage, title="Orphan")
    client.force_login(sales_user)
    response = client.get(f"/deals/{deal.pk}/")
    assert response.status_code == 200
    assert "Nobody" in response.content.decode()
