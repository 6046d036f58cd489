import pytest

from contacts.models import Contact
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_through_the_real_login_page_and_see_home(page, live_server):
    # given a sales rep and a contact in the database
    make_user(role="Sales", username="rita", first_name="Rita")
    Contact.objects.create(first_name="Ada", email="ada@example.com")
    # when she opens the app, is sent to the login page and logs in
    page.goto(live_server.url + "/contacts/")
    assert "/login/" in page.url
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    # then she lands where she was going, and Home shows the real count
    page.wait_for_url(live_server.url + "/contacts/")
    page.click("text=Home")
    page.wait_for_url(live_server.url + "/")
    assert page.inner_text("h1") == "Welcome back, Rita"
    assert page.inner_text("[data-testid=stat-contacts]") == "1"
    assert page.inner_text("[data-testid=user-menu]").strip().endswith("Sales")


def test_wrong_password_stays_on_the_login_page_with_an_error(page, live_server):
    make_user(role="Sales", username="rita")
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".alert-danger").inner_text().startswith("Please enter a correct username")
    assert "/login/" in page.url


def test_log_out_from_the_user_menu(page, live_server):
    make_user(role="Marketing", username="mo")
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "mo")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.click("[data-testid=user-menu]")
    page.click("text=Log out")
    page.wait_for_url("**/login/")
    page.goto(live_server.url + "/")
    assert "/login/" in page.url
