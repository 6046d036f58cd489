"""Deal signal slots, identity warnings, and the identity settings (hot rules, blocked values)."""

import pytest
from django.utils import timezone

from identity.models import BlockedValue, HotRule, IdentityWarning, WarningKind
from pipeline import services as pipeline_services
from pipeline.models import Deal
from tests.factories import add_rollup, default_hot_rule, make_contact, make_pipeline, make_user, stages_of

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def pricing_rule(db):
    return default_hot_rule()


@pytest.fixture
def stage():
    return stages_of(make_pipeline())[0]


# --- deal signals


def test_board_cards_and_deal_page_carry_an_empty_signal_slot(sales_client, sales_user, stage):
    deal = pipeline_services.deal_create(actor=sales_user, title="Acme", stage=stage)
    board = sales_client.get(f"/pipeline/?pipeline={stage.pipeline_id}").content.decode()
    page = sales_client.get(f"/deals/{deal.pk}/").content.decode()
    slot = f'<div id="deal-signals-{deal.pk}" class="deal-signals" data-deal-signals="{deal.pk}"></div>'
    assert slot in board and slot in page
    assert 'id="deal-signals-sink"' in board and 'data-url="/deals/signals/"' in board


def test_signals_answer_one_out_of_band_slot_per_deal(
    sales_client, stage, django_assert_max_num_queries, settings
):
    settings.DEAL_SIGNAL_HOOKS = []  # identity's own queries; tests/scoring pins the scores' hook
    ada = make_contact(first_name="Ada")
    add_rollup(ada, day=timezone.localdate(), key="/pricing", count=3)
    hot_deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Hot", contact=ada)
    cold_deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Cold")
    with django_assert_max_num_queries(9):  # session, user, roles + the selector's six
        response = sales_client.get(f"/deals/signals/?deals={hot_deal.pk},{cold_deal.pk}", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('hx-swap-oob="true"') == 2
    hot_slot = html.split(f'id="deal-signals-{hot_deal.pk}"')[1].split("</div>")[0]
    assert "Viewed pricing 3\N{MULTIPLICATION SIGN} this week" in hot_slot
    cold_slot = html.split(f'id="deal-signals-{cold_deal.pk}"')[1].split("</div>")[0]
    assert "signal-" not in cold_slot and "data-signals-loaded" in cold_slot


def test_signals_escape_the_rule_name_and_refuse_bad_ids(client, stage):
    client.force_login(make_user(role="Marketing"))
    HotRule.objects.filter(name="pricing").update(name="<b>pricing</b>")
    ada = make_contact(first_name="Ada")
    add_rollup(ada, day=timezone.localdate(), key="/pricing", count=1)
    deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Hot", contact=ada)
    html = client.get(f"/deals/signals/?deals={deal.pk}").content.decode()
    assert "&lt;b&gt;pricing&lt;/b&gt;" in html and "<b>" not in html
    assert client.get("/deals/signals/?deals=1,abc").status_code == 400
    assert client.get("/deals/signals/?deals=" + ",".join(["1"] * 501)).status_code == 400
    nobody = make_user(username="nobody")
    nobody.groups.clear()
    client.force_login(nobody)
    assert client.get(f"/deals/signals/?deals={deal.pk}").status_code == 403


# --- warnings


def test_warnings_page_lists_and_filters_with_links_to_contacts(sales_client):
    ada, bob = make_contact(first_name="Ada"), make_contact(first_name="Bob")
    IdentityWarning.objects.create(
        kind=WarningKind.REFUSED_MERGE,
        detail="Different user ids on one device",
        contact=ada,
        other_contact=bob,
        identity_kind="anonymous_id",
        identity_value="<img src=x onerror=alert(1)>",
    )
    IdentityWarning.objects.create(kind=WarningKind.BLOCKED_VALUE, detail="Ignored user_id “null”")
    html = sales_client.get("/identity/warnings/").content.decode()
    assert html.count('data-testid="warning"') == 2
    assert f'href="/contacts/{ada.pk}/"' in html and f'href="/contacts/{bob.pk}/"' in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    filtered = sales_client.get(
        "/identity/warnings/?kind=blocked_value", HTTP_HX_TARGET="warning-table", **HTMX
    )
    body = filtered.content.decode()
    assert body.count('data-testid="warning"') == 1 and "Ignored user_id" in body and "<html" not in body
    nobody = make_user(username="nobody")
    nobody.groups.clear()
    sales_client.force_login(nobody)
    assert sales_client.get("/identity/warnings/").status_code == 403


# --- settings: hot rules and blocked values


def test_only_admins_open_identity_settings(client, admin_user, sales_user, marketing_user):
    for user, status in ((admin_user, 200), (sales_user, 403), (marketing_user, 403)):
        client.force_login(user)
        assert client.get("/settings/identity/").status_code == status
    client.force_login(sales_user)
    assert client.post("/settings/identity/blocked-values/", {"value": "x"}).status_code == 403
    assert client.post("/settings/identity/hot-rules/", {"new-name": "x"}).status_code == 403
    assert not BlockedValue.objects.filter(value="x").exists()


def test_admin_adds_edits_and_deletes_a_hot_rule(admin_client):
    html = admin_client.get("/settings/identity/").content.decode()
    assert html.count('data-testid="hot-rule"') == 1 and 'value="/pricing"' in html  # the default
    response = admin_client.post(
        "/settings/identity/hot-rules/",
        {
            "new-name": "demo",
            "new-path_contains": "/demo",
            "new-min_views": "1",
            "new-window_hours": "2",
            "new-enabled": "on",
        },
    )
    assert response.status_code == 302
    rule = HotRule.objects.get(name="demo")
    assert (rule.path_contains, rule.min_views, rule.window_hours, rule.enabled) == ("/demo", 1, 2, True)
    prefix = f"rule{rule.pk}-"
    data = {
        prefix + "name": "demo",
        prefix + "path_contains": "/book",
        prefix + "min_views": "3",
        prefix + "window_hours": "48",
    }
    assert admin_client.post(f"/settings/identity/hot-rules/{rule.pk}/", data).status_code == 302
    rule.refresh_from_db()
    assert (rule.path_contains, rule.min_views, rule.window_hours, rule.enabled) == ("/book", 3, 48, False)
    assert admin_client.post(f"/settings/identity/hot-rules/{rule.pk}/delete/").status_code == 302
    assert not HotRule.objects.filter(pk=rule.pk).exists()


def test_invalid_rules_show_errors_and_change_nothing(admin_client):
    bad = admin_client.post(
        "/settings/identity/hot-rules/",
        {"new-name": "Pricing", "new-path_contains": "/x", "new-min_views": "0", "new-window_hours": "1000"},
    )
    assert bad.status_code == 422
    html = bad.content.decode()
    assert "Ensure this value is greater than or equal to 1" in html
    duplicate = admin_client.post(
        "/settings/identity/hot-rules/",
        {"new-name": "PRICING", "new-path_contains": "/x", "new-min_views": "2", "new-window_hours": "24"},
    )
    assert duplicate.status_code == 422 and "A rule with this name exists." in duplicate.content.decode()
    assert HotRule.objects.count() == 1


def test_admin_blocks_and_unblocks_values(admin_client, admin_user):
    response = admin_client.post(
        "/settings/identity/blocked-values/", {"value": "  Test-User ", "kind": "user_id"}
    )
    assert response.status_code == 302
    blocked = BlockedValue.objects.get(value="test-user")
    assert (blocked.kind, blocked.created_by) == ("user_id", admin_user)
    again = admin_client.post("/settings/identity/blocked-values/", {"value": "TEST-USER", "kind": "user_id"})
    assert again.status_code == 422 and "already blocked" in again.content.decode()
    any_kind = admin_client.post("/settings/identity/blocked-values/", {"value": "test-user", "kind": ""})
    assert any_kind.status_code == 302 and BlockedValue.objects.filter(value="test-user", kind="").exists()
    assert (
        admin_client.post("/settings/identity/blocked-values/", {"value": "x", "kind": "bogus"}).status_code
        == 422
    )
    assert admin_client.post(f"/settings/identity/blocked-values/{blocked.pk}/delete/").status_code == 302
    assert not BlockedValue.objects.filter(pk=blocked.pk).exists()
    assert admin_client.post(f"/settings/identity/blocked-values/{blocked.pk}/delete/").status_code == 404
