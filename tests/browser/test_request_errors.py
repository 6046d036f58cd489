"""A refused or failed htmx request tells the user (static/js/app.js): htmx swaps nothing for a
4xx/5xx, so before this a click the server refused looked like nothing happened."""

import pytest

from pipeline.models import Task
from pipeline.services import activities
from tests.browser.conftest import wait_until
from tests.browser.test_contacts import log_in
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_refused_tick_says_why_and_a_vanished_task_says_it_is_gone(page, live_server):
    # given a rep on a contact's page with two of her tasks
    rita = make_user(role="Sales", username="rita")
    bob = make_user(role="Sales", username="bob")
    ada = make_contact(first_name="Ada")
    taken = activities.task_create(actor=rita, title="Send the deck", contact=ada)
    gone = activities.task_create(actor=rita, title="Book the demo", contact=ada)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/contacts/{ada.pk}/")
    page.wait_for_selector("[data-testid=record-tasks] >> text=Book the demo")
    page.evaluate("window.__noReload = true")
    # when, behind her back, the first task becomes Bob's and the second is deleted
    Task.objects.filter(pk=taken.pk).update(assignee=bob, created_by=bob)
    Task.objects.filter(pk=gone.pk).delete()
    # and she ticks the first: the server refuses (403) and the page says why, as text
    row = page.locator("[data-testid=record-tasks] li", has_text="Send the deck")
    row.locator("[data-testid=task-done]").check()
    notice = page.locator("[data-testid=request-error]")
    notice.first.wait_for()
    assert "Only the assignee, the creator or an Admin may change this task." in notice.first.inner_text()
    assert Task.objects.get(pk=taken.pk).done is False
    # when she ticks the deleted one: a 404, said in words
    page.locator("[data-testid=record-tasks] li", has_text="Book the demo").locator(
        "[data-testid=task-done]"
    ).check()
    wait_until(page, "document.querySelectorAll('[data-testid=request-error]').length === 2")
    assert "no longer exists" in notice.nth(1).inner_text()
    # the notices close, and nothing reloaded the page
    notice.first.locator(".btn-close").click()
    wait_until(page, "document.querySelectorAll('[data-testid=request-error]').length === 1")
    assert page.evaluate("window.__noReload") is True
