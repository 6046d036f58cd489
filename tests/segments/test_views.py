import pytest

from contacts.models import Contact
from segments import services
from segments.models import Segment, Webhook
from tests.factories import make_contact, stored_page, stored_track
from tests.segments.helpers import members

pytestmark = pytest.mark.django_db


PRICING = {
    "op": "and",
    "conditions": [
        {"type": "page", "where": [{"property": "path", "operator": "contains", "value": "/pricing"}]},
        {"type": "event", "name": "Order Completed", "count": {"operator": "eq", "value": 0}},
    ],
}


def test_builder_adds_conditions_and_saves(marketing_client):
    curious = make_contact(email="c@x.io")
    stored_page(curious, "/pricing")
    # add a page condition (what the "+ page" button posts)
    response = marketing_client.post(
        "/segments/new/", {"name": "Pricing", "kind": "dynamic", "r.op": "and", "action": "add:r:page"}
    )
    assert response.status_code == 200
    assert b'name="r.0.where_property"' in response.content
    # fill it in and save
    form = {
        "name": "Pricing",
        "kind": "dynamic",
        "r.op": "and",
        "r.0.type": "page",
        "r.0.where_property": "path",
        "r.0.where_operator": "contains",
        "r.0.where_value": "/pricing",
        "r.0.count_operator": "gte",
        "r.0.count_value": "1",
        "r.0.within_days": "7",
        "action": "save",
    }
    response = marketing_client.post("/segments/new/", form)
    segment = Segment.objects.get()
    assert response.status_code == 302 and response["Location"] == segment.get_absolute_url()
    assert segment.definition["conditions"][0] == {
        "type": "page",
        "where": [{"property": "path", "operator": "contains", "value": "/pricing"}],
        "count": {"operator": "gte", "value": 1},
        "within_days": 7,
    }


def test_builder_nested_group_and_remove(marketing_client):
    base = {
        "name": "x",
        "kind": "dynamic",
        "r.op": "and",
        "r.0.op": "or",
        "r.0.0.type": "tag",
        "r.0.0.operator": "has",
        "r.0.0.value": "vip",
    }
    response = marketing_client.post(
        "/segments/new/", {**base, "action": "remove:r.0.0"}, HTTP_HX_REQUEST="true"
    )
    assert b'name="r.0.0.type"' not in response.content and b'name="r.0.op"' in response.content
    response = marketing_client.post(
        "/segments/new/", {**base, "action": "group:r.0"}, HTTP_HX_REQUEST="true"
    )
    assert b'name="r.0.1.op"' in response.content
    assert b"<html" not in response.content  # htmx gets only the builder


def test_invalid_rules_show_the_error_and_keep_the_form(marketing_client):
    form = {
        "name": "x",
        "kind": "dynamic",
        "r.op": "and",
        "r.0.type": "event",
        "r.0.name": "",
        "action": "save",
    }
    response = marketing_client.post("/segments/new/", form)
    assert response.status_code == 422
    assert b"definition.conditions[0].name" in response.content
    assert not Segment.objects.exists()


def test_json_mode_saves_any_definition(marketing_client):
    import json

    form = {
        "name": "j",
        "kind": "dynamic",
        "mode": "json",
        "definition_json": json.dumps(PRICING),
        "action": "save",
    }
    marketing_client.post("/segments/new/", form)
    assert Segment.objects.get().definition == PRICING


def test_live_preview_counts(marketing_client):
    for i in range(2):
        stored_page(make_contact(email=f"p{i}@x.io"), "/pricing")
    form = {
        "r.op": "and",
        "r.0.type": "page",
        "r.0.where_property": "path",
        "r.0.where_operator": "contains",
        "r.0.where_value": "pricing",
        "r.0.count_operator": "gte",
        "r.0.count_value": "1",
    }
    response = marketing_client.post("/segments/preview/", form, HTTP_HX_REQUEST="true")
    assert b'data-testid="preview-count">2<' in response.content
    response = marketing_client.post(
        "/segments/preview/", {**form, "r.0.count_value": "x"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and b"count.value" in response.content


def test_detail_members_export_and_contact_panel(marketing_client):
    buyer = make_contact(email="b@x.io")
    curious = make_contact(email="c@x.io", first_name="=HYPERLINK(1)")
    for contact in (buyer, curious):
        stored_page(contact, "/pricing")
    stored_track(buyer, "Order Completed")
    segment = services.segment_create(actor=None, name="Pricing", definition=PRICING)
    services.segment_refresh(segment=segment)
    response = marketing_client.get(segment.get_absolute_url())
    assert response.status_code == 200
    assert b"segment-size-data" in response.content and b"Last computed" in response.content
    assert curious.get_absolute_url().encode() in response.content  # recent entries
    response = marketing_client.get(f"/segments/{segment.pk}/members/")
    assert b"c@x.io" in response.content and b"b@x.io" not in response.content
    csv_body = b"".join(marketing_client.get(f"/segments/{segment.pk}/export.csv").streaming_content).decode()
    assert "c@x.io" in csv_body and "'=HYPERLINK(1)" in csv_body and "b@x.io" not in csv_body
    # the contact page's panel says why, condition by condition
    panel = marketing_client.get(f"/segments/contact/{curious.pk}/").content.decode()
    assert "Pricing" in panel and panel.count("holds") == 2
    detail = marketing_client.get(curious.get_absolute_url()).content.decode()
    assert f"/segments/contact/{curious.pk}/" in detail


def test_static_members_from_the_contact_list_selection(marketing_client, admin_client):
    segment = services.segment_create(actor=None, name="Hand-picked", kind="static")
    a = make_contact(email="a@x.io")
    b = make_contact(email="b@x.io")
    slot = admin_client.get("/segments/contact-list-slot/").content.decode()
    assert f"/segments/{segment.pk}/members/change/" in slot
    assert "/segments/contact-list-slot/" in admin_client.get("/contacts/").content.decode()
    response = marketing_client.post(
        f"/segments/{segment.pk}/members/change/",
        {"action": "add", "ids": [a.pk, b.pk]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and response["HX-Redirect"].endswith(
        f"/segments/{segment.pk}/members/"
    )
    assert members(segment) == {a.pk, b.pk}
    marketing_client.post(f"/segments/{segment.pk}/members/change/", {"action": "remove", "ids": [a.pk]})
    marketing_client.post(f"/segments/{segment.pk}/members/change/", {"action": "add", "entries": "a@x.io\n"})
    assert members(segment) == {a.pk, b.pk}


def test_sales_reads_but_does_not_change(client, sales_user):
    segment = services.segment_create(actor=None, name="S", definition={})
    Webhook.objects.create(segment=segment, url="https://hooks.example.com/T0/B0/token-in-path", secret="s")
    client.force_login(sales_user)
    assert client.get("/segments/").status_code == 200
    detail = client.get(segment.get_absolute_url())
    assert detail.status_code == 200
    assert b"token-in-path" not in detail.content  # a webhook URL can be a credential
    assert client.get(f"/api/v1/segments/{segment.pk}/webhooks/").status_code == 403
    assert client.get(f"/api/v1/segments/{segment.pk}/deliveries/").status_code == 403
    assert client.get("/segments/new/").status_code == 403
    assert client.post(f"/segments/{segment.pk}/delete/").status_code == 403
    assert (
        client.post(f"/segments/{segment.pk}/webhooks/", {"url": "https://example.com/x"}).status_code == 403
    )


def test_marketing_cannot_allow_private_webhooks(marketing_client):
    segment = services.segment_create(actor=None, name="S", definition={})
    response = marketing_client.post(
        f"/segments/{segment.pk}/webhooks/", {"url": "http://127.0.0.1/x", "allow_private": "on"}
    )
    assert response.status_code == 403
    response = marketing_client.post(
        f"/segments/{segment.pk}/webhooks/", {"url": "http://127.0.0.1/x"}, follow=True
    )
    assert b"private" in response.content and not segment.webhooks.exists()


def test_untrusted_values_are_escaped(marketing_client):
    contact = make_contact(email="x@x.io")
    Contact.objects.filter(pk=contact.pk).update(first_name="<script>alert(1)</script>")
    segment = services.segment_create(
        actor=None,
        name="<b>bold</b>",
        definition={
            "op": "and",
            "conditions": [{"type": "trait", "trait": "<img src=x>", "operator": "is_not_set"}],
        },
    )
    services.segment_refresh(segment=segment)
    for url in (
        segment.get_absolute_url(),
        f"/segments/{segment.pk}/members/",
        f"/segments/contact/{contact.pk}/",
    ):
        body = marketing_client.get(url).content
        assert b"<script>alert(1)" not in body and b"<img src=x>" not in body and b"<b>bold" not in body


def test_list_pages_run_a_fixed_number_of_queries(marketing_client, django_assert_max_num_queries):
    for i in range(15):
        segment = services.segment_create(actor=None, name=f"S{i}", definition={})
    for i in range(30):
        make_contact(email=f"q{i}@x.io")
    services.segment_refresh(segment=segment)
    with django_assert_max_num_queries(8):
        assert marketing_client.get("/segments/").status_code == 200
    with django_assert_max_num_queries(8):
        assert marketing_client.get(f"/segments/{segment.pk}/members/").status_code == 200
    with django_assert_max_num_queries(8):
        response = marketing_client.get(f"/api/v1/segments/{segment.pk}/members/?limit=50")
    assert response.json()["count"] == 30


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

form_keys = st.one_of(
    st.sampled_from(
        ["r.op", "r.0.type", "r.0.op", "r.0.0.type", "r.1.type", "mode", "action", "definition_json"]
    ),
    st.builds(
        lambda path, part: f"r.{path}.{part}",
        st.sampled_from(["0", "1", "0.0", "99999999999999999999", "-1", "x", "", "²", "\u0661", "①"]),
        st.sampled_from(
            [
                "type",
                "op",
                "name",
                "field",
                "trait",
                "operator",
                "value",
                "where_property",
                "where_operator",
                "where_value",
                "count_operator",
                "count_value",
                "within_days",
                "segment_id",
                "value_picked",
                "where_value_picked",
            ]
        ),
    ),
)
form_values = st.one_of(
    st.sampled_from(
        [
            "page",
            "event",
            "field",
            "trait",
            "tag",
            "deal",
            "segment",
            "and",
            "or",
            "in",
            "gt",
            "within_last_days",
            "add:r:page",
            "add:r.0:event",
            "group:r",
            "group:r.5",
            "remove:r.0",
            "remove:r",
            "remove:r.0.0",
            "remove:r.²",
            "remove:r.①.0",
            "add:r.²:page",
            "group:r.\u0661",
            "²",
            "١٢",
            "①",
            "mode:json",
            "mode:builder",
            "refresh",
            "lifecycle_stage",
            "owner",
            "stage",
            "save",
            "json",
            "builder",
            "1e400",
            "NaN",
            "-0",
            "99999999999999999999",
        ]
    ),
    st.text(max_size=40),
    st.just("a\x00b"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(form_keys, form_values, max_size=12))
def test_hostile_builder_posts_never_give_a_5xx(marketing_client, data):
    data.setdefault("name", "fuzz")
    for url in ("/segments/new/", "/segments/preview/"):
        response = marketing_client.post(url, data, HTTP_HX_REQUEST="true")
        assert response.status_code in (200, 302, 422), (url, data, response.status_code)
