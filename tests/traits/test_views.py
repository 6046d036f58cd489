"""Settings → Traits and the trait panels: roles, form errors, escaping."""

import pytest

from tests.factories import make_company, make_contact, stored_track
from tests.traits.helpers import make_trait
from traits import services
from traits.models import TraitDefinition

pytestmark = pytest.mark.django_db


def test_only_admin_and_marketing_manage_traits(client, admin_user, marketing_user, sales_user):
    for user, allowed in ((admin_user, True), (marketing_user, True), (sales_user, False)):
        client.force_login(user)
        assert client.get("/settings/traits/").status_code == (200 if allowed else 403)
        assert (client.post("/settings/traits/new/", {"name": "x"}).status_code == 403) is not allowed


def test_creating_a_trait_queues_its_recompute(marketing_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketing_client.post(
            "/settings/traits/new/",
            {
                "name": "Orders (30 days)",
                "key": "orders_30d",
                "kind": "count",
                "event_type": "track",
                "event_name": "Order Completed",
                "window_days": "30",
                "conditions": '[{"property": "total", "operator": "gt", "value": 0}]',
            },
        )
    assert response.status_code == 302
    trait = TraitDefinition.objects.get(key="orders_30d")
    assert trait.window_days == 30 and trait.conditions == [
        {"property": "total", "operator": "gt", "value": 0}
    ]
    assert len(callbacks) == 1  # the recompute task


def test_recompute_now_queues_after_commit_and_only_for_managers(
    client, marketing_user, sales_user, django_capture_on_commit_callbacks
):
    trait = make_trait(key="orders", kind="count")
    client.force_login(sales_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(f"/settings/traits/{trait.pk}/recompute/").status_code == 403
    assert callbacks == []  # a refused request sends nothing
    client.force_login(marketing_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(f"/settings/traits/{trait.pk}/recompute/").status_code == 302
    assert len(callbacks) == 1  # the recompute task, sent once the request commits


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"key": "Bad Key"}, "key", "Lower-case letters"),
        ({"kind": "sum"}, "property", "Name the event property"),
        ({"window_days": "0"}, None, None),  # 0 means ever: accepted
        ({"window_days": "9999"}, "window_days", "from 1 to 3650"),
        ({"conditions": "[{"}, "conditions", "Not valid JSON"),
        (
            {"conditions": '[{"property": "x", "operator": "gt", "value": "a"}]'},
            "conditions",
            "compares with a number",
        ),
        (
            {"conditions": '[{"property": "x", "operator": "like", "value": "a"}]'},
            "conditions",
            "operator is one of",
        ),
        ({"kind": "account_sum"}, "source", "Choose the contact trait"),
    ],
)
def test_bad_definitions_are_form_errors(admin_client, data, field, message):
    post = {"name": "T", "key": "t", "kind": "count", **data}
    response = admin_client.post("/settings/traits/new/", post)
    if field is None:
        assert response.status_code == 302
        return
    assert response.status_code == 422
    assert message in response.content.decode()
    assert f'data-testid="error-{field}"' in response.content.decode()


def test_duplicate_keys_and_rolled_up_traits_are_refused(admin_client):
    source = make_trait("revenue", "sum", property="total")
    make_trait("acme", "account_sum", source=source)
    response = admin_client.post("/settings/traits/new/", {"name": "T", "key": "revenue", "kind": "count"})
    assert "Another trait has this key." in response.content.decode()
    admin_client.post(f"/settings/traits/{source.pk}/delete/")
    assert TraitDefinition.objects.filter(pk=source.pk).exists()  # company traits roll it up


def test_the_contact_panel_shows_values_escaped(sales_client):
    contact = make_contact()
    stored_track(contact, "Signed Up", properties={"plan": "<script>alert(1)</script>"})
    make_trait("plan", "last", property="plan")
    make_trait("signups", "count", event_name="Signed Up")
    services.traits_recompute()
    page = sales_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f"/traits/contact/{contact.pk}/" in page  # the lazy slot
    html = sales_client.get(f"/traits/contact/{contact.pk}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert 'data-testid="trait-signups" title="1">1<' in html


def test_the_company_panel_shows_rollups(sales_client):
    acme = make_company(name="Acme")
    for total in (10, 5):
        stored_track(make_contact(company=acme), "Order Completed", properties={"total": total})
    revenue = make_trait("revenue", "sum", property="total")
    make_trait("acme_revenue", "account_sum", source=revenue, name="Account revenue")
    services.traits_recompute()
    assert f"/traits/company/{acme.pk}/" in sales_client.get(f"/companies/{acme.pk}/").content.decode()
    html = sales_client.get(f"/traits/company/{acme.pk}/").content.decode()
    assert "Account revenue" in html and 'data-testid="trait-acme_revenue" title="15">15<' in html


def test_trait_columns_on_the_contact_list_show_sort_and_filter(sales_client, sales_user):
    from contacts.models import ListColumns

    few, many = make_contact(first_name="Few"), make_contact(first_name="Many")
    make_contact(first_name="None")
    stored_track(few, "Order Completed")
    for _ in range(3):
        stored_track(many, "Order Completed")
    make_trait("orders", "count", event_name="Order Completed", name="Orders")
    services.traits_recompute()
    ListColumns.objects.create(user=sales_user, entity="contact", columns=["name", "trait_orders"])
    import re

    def names(response):
        return re.findall(
            r'data-column="name"[^>]*>\s*<a href="[^"]+">([^<]+)</a>', response.content.decode()
        )

    assert names(sales_client.get("/contacts/?sort=-trait_orders")) == ["Many", "Few", "None"]
    assert names(sales_client.get("/contacts/?sort=trait_orders")) == ["None", "Few", "Many"]
    assert names(sales_client.get("/contacts/?col_trait_orders=>=1&sort=-trait_orders")) == ["Many", "Few"]
    assert names(sales_client.get("/contacts/?col_trait_orders=<1")) == ["None"]
    bad = sales_client.get("/contacts/?col_trait_orders=lots")
    assert "Orders: expected a number" in bad.content.decode()
    assert (
        'data-column="trait_orders">3<' in sales_client.get("/contacts/?sort=-trait_orders").content.decode()
    )
