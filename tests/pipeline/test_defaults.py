import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from pipeline.models import Deal, LostReason, Pipeline, Stage
from pipeline.services.defaults import install_defaults
from tests.conftest import MIGRATED_DEFAULTS
from tests.contacts.test_api import as_json
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

MIGRATION = "0003_default_sales_pipeline"
STAGES = [
    ("Qualified", 10),
    ("Contact made", 20),
    ("Demo scheduled", 40),
    ("Proposal made", 60),
    ("Negotiation", 80),
]
REASONS = ["Price", "Competitor", "No budget", "No decision", "Timing", "Other"]


def test_migrating_a_new_database_installs_the_sales_pipeline_and_lost_reasons(request):
    if request.config.getvalue("reuse_db") and not request.config.getvalue("create_db"):
        pytest.skip("--reuse-db: this session did not migrate the test database")
    # what the test database held right after `migrate` (tests/conftest.py took it out again)
    assert MIGRATED_DEFAULTS == {"pipelines": [("Sales pipeline", STAGES)], "lost_reasons": REASONS}


def test_on_a_fresh_install_a_rep_lists_the_pipeline_and_creates_a_deal_with_no_setup(
    client, sales_user, fresh_install
):
    client.force_login(sales_user)
    api = as_json(client)
    pipelines = api.get("/api/v1/pipelines/").json()
    assert [(p["name"], [(s["name"], s["probability"]) for s in p["stages"]]) for p in pipelines] == [
        ("Sales pipeline", STAGES)
    ]
    ada = make_contact(email="ada@example.com")
    first_stage = pipelines[0]["stages"][0]["id"]
    response = api.post_json(
        "/api/v1/deals/", {"title": "Ada pilot", "stage": first_stage, "contact": ada.pk}
    )
    assert response.status_code == 201, response.json()
    # and the deal can be lost for one of the shipped reasons
    lost = api.patch_json(
        f"/api/v1/deals/{response.json()['id']}/", {"status": "lost", "lost_reason": "Timing"}
    )
    assert lost.status_code == 200 and lost.json()["lost_reason"] == "Timing"


def _migration_function():
    """The migration's own function, with the models as they were at that migration."""
    loader = MigrationLoader(connection)
    state = loader.project_state(("pipeline", MIGRATION))
    module = importlib.import_module(f"pipeline.migrations.{MIGRATION}")
    return lambda: module.install(state.apps, None)


def test_running_the_migration_twice_creates_nothing_more():
    run = _migration_function()
    run()
    counts = (Pipeline.objects.count(), Stage.objects.count(), LostReason.objects.count())
    assert counts == (1, 5, 6)
    run()
    assert (Pipeline.objects.count(), Stage.objects.count(), LostReason.objects.count()) == counts
    assert install_defaults(apps) == {"pipelines": 0, "stages": 0, "lost_reasons": 0}


def test_an_existing_setup_is_kept_and_only_missing_reasons_are_added():
    # given an installation whose Admin already has a pipeline and two reasons of their own
    own = Pipeline.objects.create(name="Partners")
    Stage.objects.create(pipeline=own, name="Intro")
    LostReason.objects.create(name="price", position=0)  # a default, in another case
    LostReason.objects.create(name="Went dark", position=1)
    # when the migration runs
    _migration_function()()
    # then no second pipeline appears, and only the reasons not already there are added, after theirs
    assert list(Pipeline.objects.values_list("name", flat=True)) == ["Partners"]
    assert list(LostReason.objects.values_list("name", flat=True)) == [
        "price",
        "Went dark",
        *[name for name in REASONS if name != "Price"],
    ]
    assert not Deal.objects.exists()
