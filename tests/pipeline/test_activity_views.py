from datetime import timedelta

import pytest
from django.utils import timezone

from pipeline.models import Activity, Deal, Task
from pipeline.services import activities
from tests.factories import make_admin, make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_contact_and_company_pages_lazy_load_the_activity_panel(sales_client):
    acme = make_company(name="Acme")
    contact = make_contact(first_name="Ada", company=acme)
    contact_html = sales_client.get(f"/contacts/{contact.pk}/").content.decode()
    company_html = sales_client.get(f"/companies/{acme.pk}/").content.decode()
    # the contact page's timeline (served by identity) holds the panel, without its own feed
    assert f'hx-get="/contacts/{contact.pk}/timeline/" hx-trigger="load"' in contact_html
    timeline_html = sales_client.get(f"/contacts/{contact.pk}/timeline/").content.decode()
    assert f'hx-get="/contacts/{contact.pk}/activities/?feed=0" hx-trigger="load"' in timeline_html
    assert f'hx-get="/companies/{acme.pk}/activities/" hx-trigger="load"' in company_html
    assert f'href="/companies/{acme.pk}/activities/"' in company_html  # works without JS too


def test_feed_is_newest_first_with_author_and_relative_time(sales_client, sales_user):
    # given two activities on a contact, logged by different people
    contact = make_contact(first_name="Ada")
    now = timezone.now()
    grace = make_user(username="grace")
    activities.activity_log(
        actor=grace, kind="call", subject="First call", contact=contact, occurred_at=now - timedelta(days=2)
    )
    activities.activity_log(
        actor=sales_user,
        kind="note",
        subject="Latest note",
        contact=contact,
        occurred_at=now - timedelta(hours=3),
    )
    # when the panel loads
    html = sales_client.get(f"/contacts/{contact.pk}/activities/", **HTMX).content.decode()
    # then the newest comes first, with its author and a relative time
    assert html.index("Latest note") < html.index("First call")
    assert "sales-user" in html and "grace" in html
    assert "3\xa0hours ago" in html and "2\xa0days ago" in html
    assert "<html" not in html and 'data-testid="activity-composer"' in html


def test_logging_a_note_returns_the_fresh_panel_without_a_reload(sales_client, sales_user):
    # given a contact's panel
    contact = make_contact(first_name="Ada")
    # when a rep posts a call through htmx
    response = sales_client.post(
        f"/contacts/{contact.pk}/activities/log/",
        {"kind": "call", "subject": "Discovery call", "body": "Needs SSO", "occurred_at": ""},
        **HTMX,
    )
    # then the panel comes back with the call in the feed and an empty composer
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Discovery call" in html and "Needs SSO" in html
    assert 'name="subject" value=' not in html
    activity = Activity.objects.get()
    assert (activity.kind, activity.contact_id, activity.author_id) == ("call", contact.pk, sales_user.pk)


def test_activity_text_is_escaped(sales_client):
    # given an activity whose subject and body carry markup
    contact = make_contact(first_name="Ada")
    sales_client.post(
        f"/contacts/{contact.pk}/activities/log/",
        {"kind": "note", "subject": XSS, "body": XSS + "\nline 2"},
        **HTMX,
    )
    # when the feed renders, then the markup is shown as text, never run
    html = sales_client.get(f"/contacts/{contact.pk}/activities/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;<br>line 2" in html


def test_an_empty_activity_comes_back_with_its_error_as_422(sales_client):
    contact = make_contact()
    response = sales_client.post(
        f"/contacts/{contact.pk}/activities/log/", {"kind": "note", "body": " "}, **HTMX
    )
    assert response.status_code == 422 and "Write a subject or a few words." in response.content.decode()
    assert not Activity.objects.exists()


def test_without_htmx_a_post_redirects_back_to_the_record(sales_client):
    contact = make_contact()
    response = sales_client.post(
        f"/contacts/{contact.pk}/activities/log/", {"kind": "note", "body": "Met at expo"}
    )
    assert response.status_code == 302 and response.url == f"/contacts/{contact.pk}/"


def test_marketing_reads_the_feed_but_cannot_log(client, marketing_user, sales_user):
    contact = make_contact()
    activities.activity_log(actor=sales_user, kind="note", body="Rep's note", contact=contact)
    client.force_login(marketing_user)
    html = client.get(f"/contacts/{contact.pk}/activities/").content.decode()
    assert "Rep&#x27;s note" in html and "activity-composer" not in html and "task-form" not in html
    response = client.post(f"/contacts/{contact.pk}/activities/log/", {"kind": "note", "body": "x"}, **HTMX)
    assert response.status_code == 403 and Activity.objects.count() == 1


def test_only_the_author_or_an_admin_deletes_an_activity(client, sales_user):
    contact = make_contact()
    mine = activities.activity_log(actor=sales_user, kind="note", body="mine", contact=contact)
    other = make_user()
    theirs = activities.activity_log(actor=other, kind="note", body="theirs", contact=contact)
    client.force_login(sales_user)
    html = client.get(f"/contacts/{contact.pk}/activities/").content.decode()
    # the delete button shows on the rep's own activity only
    assert f"/activities/{mine.pk}/delete/" in html and f"/activities/{theirs.pk}/delete/" not in html
    assert client.post(f"/activities/{theirs.pk}/delete/", **HTMX).status_code == 403
    assert client.post(f"/activities/{mine.pk}/delete/", **HTMX).content == b""
    client.force_login(make_admin())
    client.post(f"/activities/{theirs.pk}/delete/", **HTMX)
    assert not Activity.objects.exists()


def test_deal_panel_logs_on_the_deal_and_updates_last_activity(sales_client, deal):
    assert "No activity yet." in sales_client.get(f"/deals/{deal.pk}/activities/").content.decode()
    sales_client.post(
        f"/deals/{deal.pk}/activities/log/",
        {"kind": "meeting", "subject": "Kick-off", "occurred_at": "2026-03-02T10:30"},
        **HTMX,
    )
    deal = Deal.objects.get(pk=deal.pk)
    assert (
        deal.last_activity_at is not None
        and timezone.localtime(deal.last_activity_at).strftime("%Y-%m-%d %H:%M") == "2026-03-02 10:30"
    )


def test_task_from_a_company_page_defaults_to_me_and_shows_in_the_panel(sales_client, sales_user):
    acme = make_company(name="Acme")
    response = sales_client.post(
        f"/companies/{acme.pk}/tasks/new/",
        {"title": "Send proposal", "due_at": "2026-12-01T09:00", "assignee": ""},
        **HTMX,
    )
    assert response.status_code == 200 and "Send proposal" in response.content.decode()
    task = Task.objects.get()
    assert (task.assignee_id, task.company_id, task.created_by_id) == (sales_user.pk, acme.pk, sales_user.pk)


def test_a_task_needs_a_title(sales_client):
    contact = make_contact()
    response = sales_client.post(f"/contacts/{contact.pk}/tasks/new/", {"title": "", "due_at": ""}, **HTMX)
    assert response.status_code == 422 and "This field is required." in response.content.decode()


def test_a_task_on_a_deal_sets_its_next_activity(sales_client, sales_user, deal):
    sales_client.post(
        f"/deals/{deal.pk}/tasks/new/",
        {"title": "Call back", "due_at": "2026-12-01T09:00", "assignee": sales_user.pk},
        **HTMX,
    )
    assert Deal.objects.get(pk=deal.pk).next_activity_at == Task.objects.get().due_at


def test_done_checkbox_toggles_without_a_reload(sales_client, sales_user, deal):
    task = activities.task_create(
        actor=sales_user, title="Call back", due_at=timezone.now() + timedelta(hours=1), deal=deal
    )
    # when ticked, the row comes back struck through and the deal loses its next activity
    html = sales_client.post(
        f"/tasks/{task.pk}/toggle/", {"done": "on", "show_record": "1"}, **HTMX
    ).content.decode()
    assert "text-decoration-line-through" in html and "checked" in html and "<html" not in html
    assert Task.objects.get(pk=task.pk).done and Deal.objects.get(pk=deal.pk).next_activity_at is None
    # when unticked, it is open again
    html = sales_client.post(f"/tasks/{task.pk}/toggle/", {"show_record": "1"}, **HTMX).content.decode()
    assert "checked" not in html and not Task.objects.get(pk=task.pk).done


def test_another_reps_task_cannot_be_ticked(sales_client):
    task = activities.task_create(actor=make_user(), title="Theirs", contact=make_contact())
    assert sales_client.post(f"/tasks/{task.pk}/toggle/", {"done": "on"}, **HTMX).status_code == 403
    assert not Task.objects.get(pk=task.pk).done


# --- My day


def _tasks_for(user, now):
    contact = make_contact(first_name="Ada")
    activities.task_create(actor=user, title="Overdue call", due_at=now - timedelta(days=1), contact=contact)
    activities.task_create(actor=user, title="Undated", contact=contact)
    activities.task_create(actor=user, title="Next week", due_at=now + timedelta(days=7), contact=contact)
    done = activities.task_create(
        actor=user, title="Finished", due_at=now - timedelta(days=3), contact=contact
    )
    activities.task_complete(task=done, actor=user)


def test_my_day_splits_overdue_today_upcoming(sales_client, sales_user):
    now = timezone.now()
    _tasks_for(sales_user, now)
    end_of_today = timezone.localtime(now).replace(hour=23, minute=59)
    if end_of_today > now + timedelta(minutes=1):
        activities.task_create(
            actor=sales_user, title="Later today", due_at=end_of_today, contact=make_contact()
        )
    activities.task_create(actor=make_user(), title="Someone else's", due_at=now, contact=make_contact())
    html = sales_client.get("/tasks/").content.decode()

    def section(key):
        start = html.index(f'data-testid="section-{key}"')
        return html[start : html.index("</section>", start)]

    assert "Overdue call" in section("overdue") and "Next week" in section("upcoming")
    assert "Undated" in section("someday") and "Someone else" not in html
    if end_of_today > now + timedelta(minutes=1):
        assert "Later today" in section("today")
    # a task done today stays visible (struck through) so the tick does not make it vanish
    assert "Finished" in section("done")


def test_my_day_filters_by_text_and_only_admin_switches_user(client, sales_user):
    now = timezone.now()
    _tasks_for(sales_user, now)
    other = make_user(username="other-rep")
    activities.task_create(actor=other, title="Other's task", due_at=now, contact=make_contact())
    client.force_login(sales_user)
    html = client.get(
        "/tasks/", {"q": "call"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="task-sections"
    ).content.decode()
    assert "Overdue call" in html and "Next week" not in html and "<html" not in html
    # a rep asking for another user's day still gets their own
    assert "Other's task" not in client.get("/tasks/", {"user": other.pk}).content.decode()
    client.force_login(make_admin())
    assert "Other&#x27;s task" in client.get("/tasks/", {"user": other.pk}).content.decode()


def test_my_day_query_count_does_not_grow_with_tasks(
    sales_client, sales_user, deal, django_assert_max_num_queries
):
    now = timezone.now()
    for i in range(30):
        activities.task_create(
            actor=sales_user,
            title=f"Task {i}",
            due_at=now + timedelta(hours=i - 10),
            contact=make_contact(first_name=f"C{i}"),
            deal=deal if i % 2 else None,
            company=make_company() if i % 3 == 0 else None,
        )
    # session, user, roles, tasks with their records in one join, the "+ Task" assignee choices
    with django_assert_max_num_queries(5):
        html = sales_client.get("/tasks/").content.decode()
    assert html.count('data-testid="task-row"') == 30


def test_activity_panel_query_count_is_pinned(sales_client, sales_user, django_assert_max_num_queries):
    contact = make_contact()
    for i in range(25):
        activities.activity_log(actor=make_user(), kind="note", body=f"Note {i}", contact=contact)
        activities.task_create(actor=sales_user, title=f"T{i}", contact=contact, assignee=make_user())
    # session, user, roles, contact, feed, tasks created and done (for the feed), open tasks,
    # assignee choices, and the record's email links (settings.TIMELINE_SOURCE_HOOKS: mail)
    with django_assert_max_num_queries(10):
        html = sales_client.get(f"/contacts/{contact.pk}/activities/").content.decode()
    assert html.count('data-testid="activity"') == 25 and html.count('data-testid="task-row"') == 25


def test_without_htmx_the_done_checkbox_returns_to_a_safe_page(sales_client, sales_user):
    contact = make_contact()
    task = activities.task_create(actor=sales_user, title="Call", contact=contact)
    # the panel's checkbox points back at the contact page, not at the fragment
    panel = sales_client.get(f"/contacts/{contact.pk}/activities/").content.decode()
    assert f'name="next" value="/contacts/{contact.pk}/"' in panel
    response = sales_client.post(
        f"/tasks/{task.pk}/toggle/", {"done": "on", "next": f"/contacts/{contact.pk}/"}
    )
    assert response.status_code == 302 and response.url == f"/contacts/{contact.pk}/"
    # and an off-site target is replaced by My day
    response = sales_client.post(f"/tasks/{task.pk}/toggle/", {"next": "https://evil.example/"})
    assert response.url == "/tasks/" and not Task.objects.get(pk=task.pk).done


def test_the_author_edits_an_activity_in_place(sales_client, sales_user, deal):
    # given a note the rep wrote on a deal
    activity = activities.activity_log(actor=sales_user, kind="note", subject="Draft", body="old", deal=deal)
    # when she opens the edit form, it is prefilled
    form = sales_client.get(f"/activities/{activity.pk}/edit/", **HTMX).content.decode()
    assert 'value="Draft"' in form and "\nold</textarea>" in form and 'data-testid="activity-edit"' in form
    # and saving swaps the item back with the new text (escaped) and keeps the time
    html = sales_client.post(
        f"/activities/{activity.pk}/edit/", {"kind": "call", "subject": "Final", "body": "<i>new</i>"}, **HTMX
    ).content.decode()
    assert "Final" in html and "&lt;i&gt;new&lt;/i&gt;" in html and 'data-testid="activity"' in html
    fresh = Activity.objects.get(pk=activity.pk)
    assert (fresh.kind, fresh.body, fresh.occurred_at) == ("call", "<i>new</i>", activity.occurred_at)
    # an empty edit comes back with its error
    response = sales_client.post(
        f"/activities/{activity.pk}/edit/", {"kind": "note", "subject": "", "body": ""}, **HTMX
    )
    assert response.status_code == 422 and "Write a subject" in response.content.decode()
    # cancel swaps the display item back
    assert "Final" in sales_client.get(f"/activities/{activity.pk}/", **HTMX).content.decode()


def test_another_rep_cannot_open_or_post_the_edit_form(sales_client):
    activity = activities.activity_log(actor=make_user(), kind="note", body="theirs", contact=make_contact())
    assert sales_client.get(f"/activities/{activity.pk}/edit/", **HTMX).status_code == 403
    response = sales_client.post(
        f"/activities/{activity.pk}/edit/", {"kind": "note", "body": "mine now"}, **HTMX
    )
    assert response.status_code == 403 and Activity.objects.get().body == "theirs"


def test_my_day_caps_a_huge_backlog_with_a_note(sales_client, sales_user):
    now = timezone.now()
    Task.objects.bulk_create(
        Task(title=f"Backlog {i}", assignee=sales_user, due_at=now + timedelta(hours=i)) for i in range(205)
    )
    html = sales_client.get("/tasks/").content.decode()
    assert html.count('data-testid="task-row"') == 200 and 'data-testid="tasks-truncated"' in html
    assert "Backlog 199<" in html and "Backlog 200<" not in html


def test_a_note_over_the_length_limit_comes_back_with_the_reason_as_422(sales_client, sales_user):
    contact = make_contact()
    url = f"/contacts/{contact.pk}/activities/log/"
    response = sales_client.post(url, {"kind": "note", "body": "W" * 50_001}, **HTMX)
    assert response.status_code == 422
    assert "at most 50,000 characters; this one has 50,001" in response.content.decode()
    assert not Activity.objects.exists()
    # and editing a note past the limit is refused in the edit form, not with a 500
    note = activities.activity_log(actor=sales_user, kind="note", body="short", contact=contact)
    response = sales_client.post(
        f"/activities/{note.pk}/edit/", {"kind": "note", "body": "W" * 50_001}, **HTMX
    )
    assert response.status_code == 422 and "this one has 50,001" in response.content.decode()
    assert Activity.objects.get().body == "short"


def test_an_edit_that_empties_a_note_is_a_form_error_not_a_500(sales_client, sales_user):
    contact = make_contact()
    note = activities.activity_log(
        actor=sales_user, kind="note", subject="Call", body="notes", contact=contact
    )
    response = sales_client.post(
        f"/activities/{note.pk}/edit/", {"kind": "note", "subject": " ", "body": " "}, **HTMX
    )
    assert response.status_code == 422
    assert Activity.objects.get().body == "notes"
