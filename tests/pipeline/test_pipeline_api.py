"""Pipelines and stages through the REST API: Admin configures, everyone reads."""

import pytest

from pipeline import services
from pipeline.models import Deal, DealStatus, Pipeline, Stage
from tests.contacts.test_api import as_json
from tests.factories import make_contact, make_pipeline, make_reason, stages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, admin_user):
    client.force_login(admin_user)
    return as_json(client)


def _put_json(client, url, data):
    return client.put(url, data, content_type="application/json")


def _stages(body) -> list[tuple[str, int]]:
    return [(s["name"], s["probability"]) for s in body["stages"]]


def test_an_admin_creates_a_pipeline_with_its_stages_or_the_default_five(api):
    created = api.post_json(
        "/api/v1/pipelines/",
        {
            "name": "Partners",
            "stages": [{"name": "Intro", "probability": 5}, {"name": "Signed", "rotting_days": 9}],
        },
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], _stages(body)) == ("Partners", [("Intro", 5), ("Signed", 0)])
    assert body["stages"][1]["rotting_days"] == 9 and body["stages"][1]["pipeline"] == body["id"]
    default = api.post_json("/api/v1/pipelines/", {"name": "Renewals"}).json()
    assert _stages(default) == [
        ("Qualified", 10),
        ("Contact made", 20),
        ("Demo scheduled", 40),
        ("Proposal made", 60),
        ("Negotiation", 80),
    ]
    assert [p["name"] for p in api.get("/api/v1/pipelines/").json()] == ["Partners", "Renewals"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "partners"}, "name"),  # taken, in another case
        ({"name": ""}, "name"),
        ({"name": "New", "stages": []}, "stages"),
        ({"name": "New", "stages": [{"name": "A", "probability": 101}]}, "stages"),
        ({"name": "New", "stages": [{"name": "A"}, {"name": "a"}]}, "stages"),
        ({"name": "New", "stages": [{"name": "A", "rotting_days": 10**30}]}, "stages"),
        ({"name": "New", "stages": [{"probability": 5}]}, "stages"),
        ({"name": "New", "stages": "Lead"}, "stages"),
    ],
)
def test_a_bad_pipeline_is_refused_with_the_reason_and_creates_nothing(api, payload, field):
    make_pipeline(name="Partners")
    response = api.post_json("/api/v1/pipelines/", payload)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert list(Pipeline.objects.values_list("name", flat=True)) == ["Partners"]
    assert Stage.objects.count() == 3


def test_an_admin_renames_adds_changes_and_reorders_stages(api):
    pipeline = make_pipeline()
    lead, demo, proposal = stages_of(pipeline)
    renamed = api.patch_json(f"/api/v1/pipelines/{pipeline.pk}/", {"name": "New business"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "New business"
    added = api.post_json(f"/api/v1/pipelines/{pipeline.pk}/stages/", {"name": "Signed", "probability": 95})
    assert added.status_code == 201 and (added.json()["name"], added.json()["position"]) == ("Signed", 3)
    # a PATCH changes what it names and keeps the rest
    changed = api.patch_json(f"/api/v1/stages/{demo.pk}/", {"probability": 45})
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["probability"], changed.json()["rotting_days"]) == (
        "Demo",
        45,
        7,
    )
    assert api.patch_json(f"/api/v1/stages/{demo.pk}/", {"name": "lead in"}).status_code == 400  # taken
    assert api.patch_json(f"/api/v1/stages/{demo.pk}/", {"probability": -1}).status_code == 400
    order = [added.json()["id"], proposal.pk, lead.pk, demo.pk]
    reordered = _put_json(api, f"/api/v1/pipelines/{pipeline.pk}/stage-order/", {"stages": order})
    assert reordered.status_code == 200, reordered.json()
    assert [s["id"] for s in reordered.json()["stages"]] == order
    listed = api.get(f"/api/v1/pipelines/{pipeline.pk}/stages/").json()
    assert [s["name"] for s in listed] == ["Signed", "Proposal", "Lead in", "Demo"]
    assert api.get(f"/api/v1/stages/{demo.pk}/").json()["probability"] == 45


def test_a_reorder_must_name_exactly_the_pipelines_stages(api):
    pipeline = make_pipeline()
    lead, demo, proposal = stages_of(pipeline)
    foreign = stages_of(make_pipeline(name="Other"))[0]
    url = f"/api/v1/pipelines/{pipeline.pk}/stage-order/"
    for wrong in (
        [lead.pk, demo.pk],  # one missing
        [lead.pk, demo.pk, proposal.pk, proposal.pk],  # one twice
        [lead.pk, demo.pk, foreign.pk],  # another pipeline's
        [lead.pk, demo.pk, proposal.pk, 10**30],
        [],
    ):
        response = _put_json(api, url, {"stages": wrong})
        assert response.status_code == 400, (wrong, response.json())
        assert "stages" in response.json()["fields"]
    assert _put_json(api, url, {"stages": "1,2,3"}).status_code == 400
    assert [s.name for s in pipeline.stages.all()] == ["Lead in", "Demo", "Proposal"]


def test_a_stage_with_deals_is_deleted_only_with_a_stage_to_move_them_to(api, admin_user):
    pipeline = make_pipeline()
    lead, demo, proposal = stages_of(pipeline)
    other_pipeline_stage = stages_of(make_pipeline(name="Other"))[0]
    make_reason("Price")
    ada = make_contact(email="ada@example.com")
    open_deal = services.deal_create(actor=admin_user, title="Open", stage=demo, contact=ada)
    lost = services.deal_create(actor=admin_user, title="Lost", stage=demo)
    services.deal_mark_lost(deal=lost, actor=admin_user, reason="Price")
    url = f"/api/v1/stages/{demo.pk}/"
    refused = api.delete(url)
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "Stage 'Demo' holds 2 deals; move them to another stage before deleting it.",
        "code": "stage_has_deals",
        "deal_count": 2,
    }
    for target in ("x", "-1", "²", "9" * 30, str(demo.pk), str(other_pipeline_stage.pk), "404404"):
        response = api.delete(f"{url}?move_deals_to={target}")
        assert response.status_code == 400, (target, response.json())
        assert "move_deals_to" in response.json()["fields"]
    assert Stage.objects.filter(pk=demo.pk).exists()
    # with a target, the deals of every status move and the stage goes
    assert api.delete(f"{url}?move_deals_to={proposal.pk}").status_code == 204
    assert not Stage.objects.filter(pk=demo.pk).exists()
    assert {d.title: (d.stage_id, d.status) for d in Deal.objects.all()} == {
        "Open": (proposal.pk, DealStatus.OPEN),
        "Lost": (proposal.pk, DealStatus.LOST),
    }
    assert Deal.objects.get(pk=open_deal.pk).stage_entered_at == open_deal.stage_entered_at
    # an empty stage needs no target
    assert api.delete(f"/api/v1/stages/{lead.pk}/").status_code == 204
    assert [s.name for s in pipeline.stages.all()] == ["Proposal"]
    assert api.delete("/api/v1/stages/404404/").status_code == 404


def test_the_last_stage_and_the_last_pipeline_stay(api):
    only = make_pipeline(stages=(("Lead in", 10, None),))
    stage = stages_of(only)[0]
    response = api.delete(f"/api/v1/stages/{stage.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "last_stage"
    response = api.delete(f"/api/v1/pipelines/{only.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "last_pipeline"
    assert Stage.objects.filter(pk=stage.pk).exists() and Pipeline.objects.filter(pk=only.pk).exists()


def test_a_pipeline_with_deals_stays_and_an_empty_one_is_deleted_with_its_stages(api, admin_user):
    busy = make_pipeline()
    empty = make_pipeline(name="Empty")
    services.deal_create(actor=admin_user, title="Acme", stage=stages_of(busy)[0])
    refused = api.delete(f"/api/v1/pipelines/{busy.pk}/")
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["deal_count"]) == ("pipeline_has_deals", 1)
    assert "holds 1 deal;" in refused.json()["detail"]
    assert api.delete(f"/api/v1/pipelines/{empty.pk}/").status_code == 204
    assert list(Pipeline.objects.values_list("name", flat=True)) == ["Sales"]
    assert Stage.objects.filter(pipeline_id=empty.pk).count() == 0
    assert api.get(f"/api/v1/pipelines/{empty.pk}/").status_code == 404
    assert api.get("/api/v1/pipelines/0/").status_code == 404


def test_only_an_admin_changes_pipelines_and_stages(client, sales_user, marketing_user):
    pipeline = make_pipeline()
    lead, demo, proposal = stages_of(pipeline)
    api = as_json(client)
    for user in (sales_user, marketing_user):
        client.force_login(user)
        writes = [
            api.post_json("/api/v1/pipelines/", {"name": "Mine"}),
            api.patch_json(f"/api/v1/pipelines/{pipeline.pk}/", {"name": "Mine"}),
            api.delete(f"/api/v1/pipelines/{pipeline.pk}/"),
            api.post_json(f"/api/v1/pipelines/{pipeline.pk}/stages/", {"name": "Mine"}),
            _put_json(api, f"/api/v1/pipelines/{pipeline.pk}/stage-order/", {"stages": [demo.pk]}),
            api.patch_json(f"/api/v1/stages/{lead.pk}/", {"name": "Mine"}),
            api.delete(f"/api/v1/stages/{proposal.pk}/?move_deals_to=x"),
        ]
        assert [r.status_code for r in writes] == [403] * len(writes)
        assert writes[0].json()["detail"] == "Only an Admin may change pipelines, stages and lost reasons."
        assert api.get(f"/api/v1/pipelines/{pipeline.pk}/").json()["name"] == "Sales"
    assert [s.name for s in pipeline.stages.all()] == ["Lead in", "Demo", "Proposal"]


def test_the_pipeline_and_stage_operations_are_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert schema["components"]["schemas"]["Error"]["properties"]["deal_count"]["type"] == "integer"
    assert {method for method in paths["/api/v1/pipelines/"]} >= {"get", "post"}
    assert set(paths["/api/v1/pipelines/{id}/"]) >= {"get", "patch", "delete"}
    assert set(paths["/api/v1/pipelines/{id}/stages/"]) >= {"get", "post"}
    assert "put" in paths["/api/v1/pipelines/{id}/stage-order/"]
    stage = paths["/api/v1/stages/{id}/"]
    assert set(stage) >= {"get", "patch", "delete"}
    assert [p["name"] for p in stage["delete"]["parameters"] if p["in"] == "query"] == ["move_deals_to"]
    assert {"204", "409"} <= set(stage["delete"]["responses"])
