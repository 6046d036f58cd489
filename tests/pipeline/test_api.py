import pytest

from pipeline import services
from pipeline.models import Deal, StageChange
from tests.contacts.test_api import as_json
from tests.factories import make_contact, make_pipeline, make_reason, make_user, stages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stages():
    return stages_of(make_pipeline())


@pytest.fixture
def api(client, sales_user):
    client.force_login(sales_user)
    return as_json(client)


def test_pipelines_list_their_stages_in_order(api, stages):
    body = api.get("/api/v1/pipelines/").json()
    assert [(p["name"], [s["name"] for s in p["stages"]]) for p in body] == [
        ("Sales", ["Lead in", "Demo", "Proposal"])
    ]
    assert body[0]["stages"][1] == {
        "id": stages[1].pk,
        "pipeline": stages[1].pipeline_id,
        "name": "Demo",
        "position": 1,
        "probability": 40,
        "rotting_days": 7,
    }


def test_create_a_deal_makes_the_contact_an_opportunity(api, sales_user, stages):
    ada = make_contact(email="ada@example.com", lifecycle_stage="lead")
    response = api.post_json(
        "/api/v1/deals/",
        {"title": "Ada pilot", "stage": stages[0].pk, "amount": "1200.50", "contact": ada.pk},
    )
    body = response.json()
    assert response.status_code == 201, body
    assert (body["owner"], body["amount"], body["pipeline"], body["status"]) == (
        sales_user.pk,
        "1200.50",
        stages[0].pipeline_id,
        "open",
    )
    ada.refresh_from_db()
    assert ada.lifecycle_stage == "opportunity"
    missing = api.post_json("/api/v1/deals/", {"title": "No stage"})
    assert missing.status_code == 400 and "stage" in missing.json()["fields"]


def test_list_filters_by_pipeline_stage_owner_and_status(
    api, sales_user, stages, django_assert_max_num_queries
):
    other = make_user(role="Sales")
    for i in range(5):
        services.deal_create(actor=sales_user, title=f"Mine {i}", stage=stages[i % 2])
    services.deal_create(actor=other, title="Theirs", stage=stages[1])
    with django_assert_max_num_queries(8):
        body = api.get(f"/api/v1/deals/?stage={stages[1].pk}&owner=me").json()
    assert sorted(d["title"] for d in body["results"]) == ["Mine 1", "Mine 3"]
    assert api.get(f"/api/v1/deals/?owner={other.pk}").json()["count"] == 1
    assert api.get(f"/api/v1/deals/?pipeline={stages[0].pipeline_id}&status=won").json()["count"] == 0
    assert api.get("/api/v1/deals/?status=bogus").status_code == 400


def test_patching_the_stage_records_a_stage_change_like_a_drag(api, sales_user, stages):
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    body = api.patch_json(f"/api/v1/deals/{deal.pk}/", {"stage": stages[2].pk, "amount": "99"}).json()
    assert (body["stage"], body["stage_name"], body["amount"]) == (stages[2].pk, "Proposal", "99.00")
    assert StageChange.objects.filter(
        deal=deal, from_stage=stages[0], to_stage=stages[2], actor=sales_user
    ).exists()


def test_patching_status_wins_loses_with_a_reason_and_reopens(api, sales_user, stages):
    make_reason("Price")
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    refused = api.patch_json(f"/api/v1/deals/{deal.pk}/", {"status": "lost", "title": "Renamed"})
    assert refused.status_code == 400 and "lost_reason" in refused.json()["fields"]
    assert Deal.objects.get(pk=deal.pk).title == "Acme"  # all or nothing
    lost = api.patch_json(f"/api/v1/deals/{deal.pk}/", {"status": "lost", "lost_reason": "Price"}).json()
    assert (lost["status"], lost["lost_reason"]) == ("lost", "Price") and lost["closed_at"]
    reopened = api.patch_json(f"/api/v1/deals/{deal.pk}/", {"status": "open"}).json()
    assert (reopened["status"], reopened["lost_reason"]) == ("open", "")
    assert api.patch_json(f"/api/v1/deals/{deal.pk}/", {"status": "won"}).json()["status"] == "won"


def test_another_reps_deal_is_read_only_and_marketing_cannot_write(
    client, sales_user, marketing_user, stages
):
    theirs = services.deal_create(actor=make_user(role="Sales"), title="Theirs", stage=stages[0])
    api = as_json(client)
    client.force_login(sales_user)
    assert api.get(f"/api/v1/deals/{theirs.pk}/").json()["title"] == "Theirs"
    denied = api.patch_json(f"/api/v1/deals/{theirs.pk}/", {"stage": stages[1].pk})
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    client.force_login(marketing_user)
    assert api.post_json("/api/v1/deals/", {"title": "x", "stage": stages[0].pk}).status_code == 403
    assert api.get("/api/v1/deals/404404/").status_code == 404
    assert Deal.objects.get(pk=theirs.pk).stage == stages[0]


def test_api_root_lists_pipelines_and_deals(api):
    resources = api.get("/api/v1/").json()["resources"]
    assert resources["pipelines"].endswith("/api/v1/pipelines/") and resources["deals"].endswith(
        "/api/v1/deals/"
    )
