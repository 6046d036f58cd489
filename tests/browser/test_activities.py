import pytest

from pipeline.models import Activity, Task
from tests.browser.conftest import wait_until
from tests.browser.test_contacts import log_in
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_a_call_and_tick_a_task_on_the_contact_page_without_a_reload(page, live_server):
    # given a rep on a contact's page, with the activity panel loaded
    make_user(role="Sales", username="rita")
    ada = make_contact(first_name="Ada", last_name="Lovelace")
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/contacts/{ada.pk}/")
    page.wait_for_selector("[data-testid=activity-composer]")
    page.evaluate("window.__noReload = true")
    # when she logs a call whose subject carries markup
    page.locator("[data-testid=activity-composer] label", has_text="Call").click()
    page.fill("[data-testid=activity-composer] [name=subject]", "<b>Intro</b> call")
    page.fill("[data-testid=activity-composer] [name=body]", "Wants a demo")
    # the call's outcome and duration appear once "Call" is picked
    page.select_option("[data-testid=activity-composer] [name=call_outcome]", "connected")
    page.fill("[data-testid=activity-composer] [name=duration_minutes]", "12")
    page.click("[data-testid=log-activity]")
    # then it tops the feed as text, the composer is empty again, and the page did not reload
    page.wait_for_selector("[data-testid=activity] >> text=Wants a demo")
    assert page.locator("[data-testid=activity]").first.inner_text().startswith("<b>Intro</b> call")
    assert page.input_value("[data-testid=activity-composer] [name=subject]") == ""
    assert page.evaluate("window.__noReload") is True
    call = Activity.objects.get()
    assert (call.kind, call.call_outcome, call.duration_minutes) == ("call", "connected", 12)
    assert "Connected" in page.locator("[data-testid=activity]").first.inner_text()
    # when she adds a task and ticks it
    page.click("[data-testid=activities-panel] summary")
    page.fill("[data-testid=task-form] [name=title]", "Send the deck")
    page.click("[data-testid=add-task]")
    page.wait_for_selector("[data-testid=record-tasks] >> text=Send the deck")
    page.check("[data-testid=record-tasks] [data-testid=task-done]")
    page.wait_for_selector("[data-testid=record-tasks] .text-decoration-line-through")
    # then the task is done in the database, still without a reload
    assert Task.objects.get().done is True
    assert page.evaluate("window.__noReload") is True


def test_my_day_and_reports_render_in_a_browser(page, live_server):
    rita = make_user(role="Sales", username="rita")
    from pipeline.services import activities

    activities.task_create(actor=rita, title="Call Grace", contact=make_contact(first_name="Grace"))
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/tasks/")
    page.check("[data-testid=section-someday] [data-testid=task-done]")
    page.wait_for_selector("[data-testid=section-someday] .text-decoration-line-through")
    assert Task.objects.get().done is True
    page.goto(f"{live_server.url}/reports/")
    # Chart.js drew each chart from the embedded numbers
    wait_until(page, "window.Chart && Chart.getChart('chart-stages') && Chart.getChart('chart-activities')")


def test_add_a_task_from_my_day_and_complete_it(page, live_server):
    # given a rep on My day, with a contact to link the task to
    rita = make_user(role="Sales", username="rita")
    ada = make_contact(first_name="Ada", email="ada@example.com")
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/tasks/")
    page.evaluate("window.__noReload = true")
    # when she opens "+ Task" and fills in a high-priority call on Ada, due in an hour
    page.click("[data-testid=my-day-add-task]")
    form = page.locator("[data-testid=my-day-task-form]")
    form.locator("[name=title]").fill("Call Ada about the pilot")
    form.locator("[name=kind]").select_option("call")
    form.locator("[name=priority]").select_option("high")
    form.locator("[name=notes]").fill("Ask about seats")
    form.locator("[name=contact]").fill(f"Ada (#{ada.pk})")
    form.locator("[name=due_at]").fill("")  # no due date: the task lands under "No due date"
    page.click("[data-testid=my-day-save-task]")
    # then it shows in its section with its priority and notes, without a page reload
    row = page.locator(
        "[data-testid=section-someday] [data-testid=task-row]", has_text="Call Ada about the pilot"
    )
    row.wait_for()
    assert "High" in row.inner_text() and "Ask about seats" in row.inner_text()
    assert page.evaluate("window.__noReload") is True
    task = Task.objects.get()
    assert (task.kind, task.priority, task.contact_id, task.assignee_id) == ("call", "high", ada.pk, rita.pk)
    # when she ticks it done
    row.locator("[data-testid=task-done]").check()
    page.wait_for_selector("[data-testid=section-someday] .task-row.text-decoration-line-through")
    # then it is done in the database, and Ada's timeline says so
    task.refresh_from_db()
    assert task.done is True
    page.goto(f"{live_server.url}/contacts/{ada.pk}/")
    page.wait_for_selector("[data-testid=timeline-taskdone] >> text=Call Ada about the pilot")
