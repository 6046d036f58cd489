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
    page.click("[data-testid=log-activity]")
    # then it tops the feed as text, the composer is empty again, and the page did not reload
    page.wait_for_selector("[data-testid=activity] >> text=Wants a demo")
    assert page.locator("[data-testid=activity]").first.inner_text().startswith("<b>Intro</b> call")
    assert page.input_value("[data-testid=activity-composer] [name=subject]") == ""
    assert page.evaluate("window.__noReload") is True
    assert Activity.objects.get().kind == "call"
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
    from pipeline import activities

    activities.task_create(actor=rita, title="Call Grace", contact=make_contact(first_name="Grace"))
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/tasks/")
    page.check("[data-testid=section-someday] [data-testid=task-done]")
    page.wait_for_selector("[data-testid=section-someday] .text-decoration-line-through")
    assert Task.objects.get().done is True
    page.goto(f"{live_server.url}/reports/")
    # Chart.js drew each chart from the embedded numbers
    wait_until(page, "window.Chart && Chart.getChart('chart-stages') && Chart.getChart('chart-activities')")
