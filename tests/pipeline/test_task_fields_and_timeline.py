"""Issue 19.12: "+ Task" on My day; task type, priority and notes; call outcome and duration; task
created / completed on the timelines; deal titles as links in task lists."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError
from pipeline.models import Activity, Task
from pipeline.services import activities
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = '<script>alert("x")</script>'


def _json(client, method, url, data=None):
    return getattr(client, method)(url, data, content_type="application/json")


# --- "+ Task" on My day


def test_my_day_adds_a_task_with_type_priority_notes_contact_and_deal(sales_client, sales_user, deal):
    ada = make_contact(first_name="Ada", email="ada@example.com")
    page = sales_client.get("/tasks/").content.decode()
    assert 'data-testid="my-day-task-form"' in page and "+ Task" in page
    due = timezone.localtime() + timedelta(hours=2)
    response = sales_client.post(
        "/tasks/new/",
        {
            "title": "Call Ada back",
            "due_at": due.strftime("%Y-%m-%dT%H:%M"),
            "kind": "call",
            "priority": "high",
            "notes": f"About pricing {XSS}",
            "contact": f"{ada} (#{ada.pk})",
            "deal": f"{deal.title} (#{deal.pk})",
        },
        **HTMX,
    )
    # the composer and the sections come back (not a whole page), the task in them
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="my-day-body"' in html
    task = Task.objects.get()
    assert (task.title, task.kind, task.priority, task.assignee, task.contact, task.deal) == (
        "Call Ada back",
        "call",
        "high",
        sales_user,
        ada,
        deal,
    )
    assert task.notes.startswith("About pricing")
    assert 'data-testid="task-priority">High' in html and "About pricing" in html
    assert XSS not in html and "&lt;script&gt;" in html


def test_my_day_task_errors_come_back_in_the_form(sales_client):
    response = sales_client.post("/tasks/new/", {"title": "", "kind": "nap", "deal": "No such deal"}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert "This field is required." in html and "Pick a deal from the list." in html
    assert "<html" not in html and not Task.objects.exists()


def test_without_htmx_my_day_task_lands_back_on_my_day(sales_client):
    response = sales_client.post("/tasks/new/", {"title": "Plain post"})
    assert response.status_code == 302 and response.url == "/tasks/"
    assert Task.objects.get().kind == "todo" and Task.objects.get().priority == "normal"


def test_marketing_may_not_add_tasks_on_my_day(client, marketing_user):
    client.force_login(marketing_user)
    assert 'data-testid="my-day-task-form"' not in client.get("/tasks/").content.decode()
    assert client.post("/tasks/new/", {"title": "x"}).status_code == 403
    assert not Task.objects.exists()


def test_deal_picker_lists_open_deals_by_title(sales_client, deal):
    html = sales_client.get("/tasks/deal-options/", {"deal": "acme"}).content.decode()
    assert f'value="Acme pilot (#{deal.pk})"' in html
    assert "Acme" not in sales_client.get("/tasks/deal-options/", {"deal": "zzz"}).content.decode()


# --- type, priority, notes: shown and editable


def test_task_type_priority_and_notes_are_validated_by_the_service(sales_user):
    with pytest.raises(DomainError) as excinfo:
        activities.task_create(actor=sales_user, title="x", kind="nap", contact=make_contact())
    assert "kind" in excinfo.value.fields
    task = activities.task_create(actor=sales_user, title="x", priority="low", contact=make_contact())
    with pytest.raises(DomainError) as excinfo:
        activities.task_update(task=task, actor=sales_user, priority="urgent")
    assert "priority" in excinfo.value.fields
    task.refresh_from_db()
    assert task.priority == "low"


def test_a_task_is_edited_in_place(sales_client, sales_user):
    contact = make_contact(first_name="Ada")
    task = activities.task_create(actor=sales_user, title="Follow up", contact=contact)
    form = sales_client.get(f"/tasks/{task.pk}/edit/?show_record=0", **HTMX)
    assert form.status_code == 200 and 'data-testid="task-edit"' in form.content.decode()
    response = sales_client.post(
        f"/tasks/{task.pk}/edit/",
        {
            "title": "Send the deck",
            "kind": "email",
            "priority": "high",
            "notes": "v2 deck",
            "show_record": "0",
        },
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="task-row"' in html and "Send the deck" in html and "v2 deck" in html
    task.refresh_from_db()
    assert (task.title, task.kind, task.priority, task.notes) == ("Send the deck", "email", "high", "v2 deck")
    bad = sales_client.post(
        f"/tasks/{task.pk}/edit/", {"title": "", "kind": "email", "priority": "x"}, **HTMX
    )
    assert bad.status_code == 422 and 'data-testid="task-edit"' in bad.content.decode()


def test_only_the_assignee_creator_or_an_admin_edits_a_task(sales_client):
    other = make_user(role="Sales")
    task = activities.task_create(actor=other, title="Theirs", contact=make_contact())
    assert sales_client.get(f"/tasks/{task.pk}/edit/").status_code == 403
    assert (
        sales_client.post(
            f"/tasks/{task.pk}/edit/", {"title": "Mine", "kind": "todo", "priority": "normal"}
        ).status_code
        == 403
    )
    assert Task.objects.get(pk=task.pk).title == "Theirs"


def test_task_fields_in_the_api(client, sales_user):
    client.force_login(sales_user)
    contact = make_contact()
    created = _json(
        client,
        "post",
        "/api/v1/tasks/",
        {"title": "Demo", "kind": "meeting", "priority": "high", "notes": "Zoom", "contact": contact.pk},
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["kind"], body["priority"], body["notes"]) == ("meeting", "high", "Zoom")
    patched = _json(client, "patch", f"/api/v1/tasks/{body['id']}/", {"priority": "low", "kind": "call"})
    assert (patched.json()["priority"], patched.json()["kind"]) == ("low", "call")
    bad = _json(client, "patch", f"/api/v1/tasks/{body['id']}/", {"priority": "urgent"})
    assert bad.status_code == 400 and "priority" in bad.json()["fields"]


# --- call outcome and duration


def test_a_call_is_logged_with_outcome_and_duration_and_shown(sales_client):
    contact = make_contact(first_name="Ada")
    response = sales_client.post(
        f"/contacts/{contact.pk}/activities/log/",
        {
            "kind": "call",
            "subject": "",
            "body": "",
            "call_outcome": "left_voicemail",
            "duration_minutes": "3",
        },
        **HTMX,
    )
    assert response.status_code == 200
    call = Activity.objects.get()
    assert (call.kind, call.call_outcome, call.duration_minutes) == ("call", "left_voicemail", 3)
    html = response.content.decode()
    assert "Left voicemail" in html and "3 min" in html


def test_a_note_drops_call_fields_the_form_still_carried(sales_client):
    contact = make_contact()
    sales_client.post(
        f"/contacts/{contact.pk}/activities/log/",
        {"kind": "note", "body": "Just a note", "call_outcome": "busy", "duration_minutes": "9"},
        **HTMX,
    )
    note = Activity.objects.get()
    assert (note.call_outcome, note.duration_minutes) == ("", None)


def test_call_fields_are_refused_on_other_kinds_and_out_of_range(sales_user):
    contact = make_contact()
    with pytest.raises(DomainError, match="Only calls"):
        activities.activity_log(actor=sales_user, kind="note", body="x", call_outcome="busy", contact=contact)
    with pytest.raises(DomainError, match="0 to 1440"):
        activities.activity_log(
            actor=sales_user, kind="call", body="x", duration_minutes=5000, contact=contact
        )
    with pytest.raises(DomainError, match="Unknown call outcome"):
        activities.activity_log(
            actor=sales_user, kind="call", body="x", call_outcome="great", contact=contact
        )
    # a call turned into a note loses its outcome and duration
    call = activities.activity_log(
        actor=sales_user,
        kind="call",
        body="x",
        call_outcome="connected",
        duration_minutes=12,
        contact=contact,
    )
    activities.activity_update(activity=call, actor=sales_user, kind="note")
    call.refresh_from_db()
    assert (call.kind, call.call_outcome, call.duration_minutes) == ("note", "", None)


def test_call_outcome_and_duration_in_the_api(client, sales_user):
    client.force_login(sales_user)
    contact = make_contact()
    created = _json(
        client,
        "post",
        "/api/v1/activities/",
        {"kind": "call", "call_outcome": "no_answer", "duration_minutes": 0, "contact": contact.pk},
    )
    assert created.status_code == 201, created.json()
    assert (created.json()["call_outcome"], created.json()["duration_minutes"]) == ("no_answer", 0)
    bad = _json(
        client,
        "post",
        "/api/v1/activities/",
        {"kind": "email", "body": "hi", "call_outcome": "busy", "contact": contact.pk},
    )
    assert bad.status_code == 400 and "call_outcome" in bad.json()["fields"]


# --- timelines and links


def test_task_created_and_completed_show_on_the_contact_timeline(sales_client, sales_user):
    ada = make_contact(first_name="Ada")
    task = activities.task_create(actor=sales_user, title=f"Send {XSS}", contact=ada)
    activities.task_complete(task=task, actor=sales_user)
    html = sales_client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    assert 'data-testid="timeline-taskcreated"' in html and 'data-testid="timeline-taskdone"' in html
    assert html.index("timeline-taskdone") < html.index("timeline-taskcreated")  # newest first
    assert XSS not in html and "Send &lt;script&gt;" in html
    # reopened, the completion is no longer true, so it leaves the timeline
    activities.task_reopen(task=task, actor=sales_user)
    html = sales_client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    assert "timeline-taskdone" not in html and "timeline-taskcreated" in html


def test_a_task_the_system_created_shows_on_the_timeline(sales_client, sales_user):
    ada = make_contact(first_name="Ada")
    activities.task_create(actor=None, title="Welcome call", assignee=sales_user, contact=ada)
    response = sales_client.get(f"/contacts/{ada.pk}/timeline/", **HTMX)
    assert response.status_code == 200
    assert "Welcome call" in response.content.decode() and "system" in response.content.decode()


def test_an_activity_without_an_author_renders_as_the_systems(sales_client):
    # the author is empty for what the system logged, or once the author's user row is deleted;
    # a filter argument that cannot be looked up (author.username on None) raised a 500
    ada = make_contact(first_name="Ada")
    activities.activity_log(actor=None, kind="note", body="System note", contact=ada)
    for url in (f"/contacts/{ada.pk}/timeline/", f"/contacts/{ada.pk}/activities/"):
        response = sales_client.get(url, **HTMX)
        assert response.status_code == 200
        assert "System note" in response.content.decode() and "system" in response.content.decode()


def test_task_events_page_through_the_contact_timeline(sales_client, sales_user):
    ada = make_contact(first_name="Ada")
    for i in range(25):
        activities.task_create(actor=sales_user, title=f"T{i:02}", contact=ada)
    first = sales_client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    assert first.count("timeline-taskcreated") == 20 and 'data-testid="timeline-more"' in first
    cursor = re.search(r'\?cursor=([^"&]+)"', first).group(1)
    rest = sales_client.get(f"/contacts/{ada.pk}/timeline/?cursor={cursor}", **HTMX).content.decode()
    assert rest.count("timeline-taskcreated") == 5


def test_task_created_and_completed_show_on_the_deal_feed(sales_client, sales_user, deal):
    task = activities.task_create(actor=sales_user, title="Send the contract", deal=deal)
    activities.task_complete(task=task, actor=sales_user)
    html = sales_client.get(f"/deals/{deal.pk}/activities/").content.decode()
    assert "Task created" in html and "Completed task" in html and "Send the contract" in html


def test_deal_titles_in_task_lists_link_to_the_deal(sales_client, sales_user, deal):
    activities.task_create(actor=sales_user, title="Prepare pilot", deal=deal, due_at=timezone.now())
    html = sales_client.get("/tasks/").content.decode()
    assert f'href="/deals/{deal.pk}/" data-testid="task-deal">· Acme pilot</a>' in html


def test_editing_a_call_starts_from_its_outcome_and_duration_and_saves_them(sales_client, sales_user):
    contact = make_contact()
    call = activities.activity_log(
        actor=sales_user, kind="call", body="Intro", call_outcome="busy", duration_minutes=4, contact=contact
    )
    form = sales_client.get(f"/activities/{call.pk}/edit/", **HTMX).content.decode()
    assert '<option value="busy" selected>' in form and 'value="4"' in form
    response = sales_client.post(
        f"/activities/{call.pk}/edit/",
        {"kind": "call", "body": "Intro", "call_outcome": "connected", "duration_minutes": "25"},
        **HTMX,
    )
    assert response.status_code == 200 and "Connected" in response.content.decode()
    call.refresh_from_db()
    assert (call.call_outcome, call.duration_minutes) == ("connected", 25)
    # out of range is the form's error, in place
    bad = sales_client.post(
        f"/activities/{call.pk}/edit/", {"kind": "call", "body": "Intro", "duration_minutes": "5000"}, **HTMX
    )
    assert bad.status_code == 422 and "1440" in bad.content.decode()
