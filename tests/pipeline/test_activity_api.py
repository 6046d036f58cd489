import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from pipeline.models import Activity, Deal, Task
from pipeline.services import activities
from tests.conftest import ROOT
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

ACTIVITIES = "/api/v1/activities/"
TASKS = "/api/v1/tasks/"


def _json(client, method, url, data=None):
    return getattr(client, method)(url, data, content_type="application/json")


@pytest.fixture
def api(client, sales_user):
    client.force_login(sales_user)
    return client


def test_create_and_list_activities_filtered_by_record_and_kind(api, sales_user, deal):
    # given a call logged through the API on a deal, and a note on a contact
    contact = make_contact()
    response = _json(api, "post", ACTIVITIES, {"kind": "call", "subject": "Intro", "deal": deal.pk})
    assert response.status_code == 201
    created = response.json()
    assert (created["kind"], created["deal"], created["author"], created["contact"]) == (
        "call",
        deal.pk,
        sales_user.pk,
        None,
    )
    _json(api, "post", ACTIVITIES, {"kind": "note", "body": "Met", "contact": contact.pk})
    # then the list filters by record and kind
    assert [a["subject"] for a in api.get(ACTIVITIES, {"deal": deal.pk}).json()["results"]] == ["Intro"]
    assert [a["body"] for a in api.get(ACTIVITIES, {"kind": "note"}).json()["results"]] == ["Met"]
    assert api.get(ACTIVITIES, {"contact": contact.pk}).json()["count"] == 1
    # and the deal's last activity follows
    assert Deal.objects.get(pk=deal.pk).last_activity_at is not None


def test_activity_without_a_record_is_a_400_that_says_why(api):
    response = _json(api, "post", ACTIVITIES, {"kind": "note", "body": "floating"})
    assert response.status_code == 400 and "contact, a deal or a company" in response.json()["detail"]


def test_activity_detail_get_patch_delete_and_permissions(client, sales_user):
    contact = make_contact()
    mine = activities.activity_log(actor=sales_user, kind="note", body="mine", contact=contact)
    theirs = activities.activity_log(actor=make_user(), kind="note", body="theirs", contact=contact)
    client.force_login(sales_user)
    assert client.get(f"{ACTIVITIES}{mine.pk}/").json()["body"] == "mine"
    assert _json(client, "patch", f"{ACTIVITIES}{mine.pk}/", {"body": "edited"}).json()["body"] == "edited"
    denied = _json(client, "patch", f"{ACTIVITIES}{theirs.pk}/", {"body": "hijack"})
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert client.delete(f"{ACTIVITIES}{theirs.pk}/").status_code == 403
    assert client.delete(f"{ACTIVITIES}{mine.pk}/").status_code == 204
    assert list(Activity.objects.values_list("body", flat=True)) == ["theirs"]
    assert client.get(f"{ACTIVITIES}999999/").status_code == 404


def test_marketing_reads_but_cannot_create_activities(client, marketing_user, sales_user):
    contact = make_contact()
    activities.activity_log(actor=sales_user, kind="note", body="x", contact=contact)
    client.force_login(marketing_user)
    assert client.get(ACTIVITIES).json()["count"] == 1
    assert (
        _json(client, "post", ACTIVITIES, {"kind": "note", "body": "y", "contact": contact.pk}).status_code
        == 403
    )


def test_tasks_create_defaults_to_me_and_list_filters(api, sales_user):
    now = timezone.now()
    company = make_company()
    created = _json(
        api,
        "post",
        TASKS,
        {"title": "Send deck", "due_at": (now - timedelta(hours=1)).isoformat(), "company": company.pk},
    )
    assert created.status_code == 201 and created.json()["assignee"] == sales_user.pk
    other = make_user()
    activities.task_create(
        actor=other, title="Other's", due_at=now + timedelta(days=3), contact=make_contact()
    )
    done = activities.task_create(actor=sales_user, title="Finished", contact=make_contact())
    activities.task_complete(task=done, actor=sales_user)
    assert {t["title"] for t in api.get(TASKS, {"assignee": "me"}).json()["results"]} == {
        "Send deck",
        "Finished",
    }
    assert [t["title"] for t in api.get(TASKS, {"assignee": "me", "done": "false"}).json()["results"]] == [
        "Send deck"
    ]
    assert [t["title"] for t in api.get(TASKS, {"due": "overdue"}).json()["results"]] == ["Send deck"]
    assert [t["title"] for t in api.get(TASKS, {"due": "upcoming"}).json()["results"]] == ["Other's"]
    assert [t["title"] for t in api.get(TASKS, {"assignee": other.pk}).json()["results"]] == ["Other's"]
    assert api.get(TASKS, {"assignee": "nobody"}).status_code == 400


def test_task_patch_done_updates_the_deals_next_activity(api, sales_user, deal):
    due = timezone.now() + timedelta(days=1)
    task = activities.task_create(actor=sales_user, title="Call", due_at=due, deal=deal)
    assert Deal.objects.get(pk=deal.pk).next_activity_at == due
    body = _json(api, "patch", f"{TASKS}{task.pk}/", {"done": True}).json()
    assert body["done"] is True and body["done_at"] is not None
    assert Deal.objects.get(pk=deal.pk).next_activity_at is None
    assert api.get(f"{TASKS}{task.pk}/").json()["title"] == "Call"
    assert api.delete(f"{TASKS}{task.pk}/").status_code == 204 and not Task.objects.exists()


def test_another_reps_task_is_read_only_for_a_rep(api):
    task = activities.task_create(actor=make_user(), title="Theirs", contact=make_contact())
    assert _json(api, "patch", f"{TASKS}{task.pk}/", {"done": True}).status_code == 403
    assert api.delete(f"{TASKS}{task.pk}/").status_code == 403


def test_task_list_query_count(api, sales_user, django_assert_max_num_queries):
    for i in range(30):
        activities.task_create(actor=sales_user, title=f"T{i}", contact=make_contact())
    with django_assert_max_num_queries(5):
        assert api.get(TASKS, {"assignee": "me"}).json()["count"] == 30


def test_api_root_lists_activities_and_tasks(api):
    resources = api.get("/api/v1/").json()["resources"]
    assert resources["activities"].endswith("/api/v1/activities/") and resources["tasks"].endswith(
        "/api/v1/tasks/"
    )


def test_schema_has_the_endpoints_and_no_spectacular_warnings(tmp_path):
    # given the schema generator run with warnings as failures
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then it warns about nothing, and documents all four endpoints
    assert result.returncode == 0, result.stdout + result.stderr
    schema = out.read_text()
    for path in (
        "/api/v1/activities/:",
        "/api/v1/activities/{id}/:",
        "/api/v1/tasks/:",
        "/api/v1/tasks/{id}/:",
    ):
        assert path in schema
    assert "ActivityKindEnum" in schema


def test_an_activity_body_over_the_limit_is_a_400_naming_the_field(api):
    contact = make_contact()
    response = _json(api, "post", ACTIVITIES, {"kind": "note", "body": "W" * 50_001, "contact": contact.pk})
    assert response.status_code == 400
    assert "50000" in str(response.json()) and "body" in str(response.json())
    assert not Activity.objects.exists()
    note = _json(api, "post", ACTIVITIES, {"kind": "note", "body": "ok", "contact": contact.pk}).json()
    response = _json(api, "patch", f"{ACTIVITIES}{note['id']}/", {"body": "W" * 50_001})
    assert response.status_code == 400 and "body" in str(response.json())
    assert Activity.objects.get().body == "ok"
