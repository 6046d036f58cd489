import pytest

from contacts.models import Contact
from tests.browser.conftest import wait_until
from tests.factories import PASSWORD, make_company, make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username):
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_search_then_inline_edit_a_cell_saves_it(page, live_server):
    # given a rep with her contacts
    rita = make_user(role="Sales", username="rita")
    make_company(name="Acme", domain="acme.com")
    ada = make_contact(first_name="Ada", last_name="Lovelace", email="ada@acme.com", owner=rita)
    make_contact(first_name="Grace", last_name="Hopper", email="grace@navy.mil", owner=rita)
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/contacts/")
    assert page.locator("#contact-table tbody tr").count() == 2
    # when she searches, the table swaps in place and the URL follows
    page.fill("[data-testid=list-search]", "lovel")
    page.wait_for_url(live_server.url + "/contacts/?sort=-created&q=lovel")  # empty filters left out
    wait_until(page, "document.querySelectorAll('#contact-table tbody tr').length === 1")
    assert "Ada Lovelace" in page.inner_text("#contact-table")
    # and edits the lifecycle cell inline
    cell = page.locator(f"#cell-contact-{ada.pk}-lifecycle_stage")
    cell.click()
    # htmx has wired the new form up when it puts the cursor in its first field
    wait_until(page, "document.activeElement && document.activeElement.name === 'lifecycle_stage'")
    select = page.locator(f"#cell-contact-{ada.pk}-lifecycle_stage select[name=lifecycle_stage]")
    select.select_option("customer")
    page.locator(f"#cell-contact-{ada.pk}-lifecycle_stage button[type=submit]").click()
    # then the cell shows the new value and the database has it
    page.wait_for_selector(f"#cell-contact-{ada.pk}-lifecycle_stage select", state="detached")
    assert page.inner_text(f"#cell-contact-{ada.pk}-lifecycle_stage").strip() == "Customer"
    ada.refresh_from_db()
    assert ada.lifecycle_stage == "customer"
    # a bad email is refused in place, and Escape cancels the edit
    page.locator(f"#cell-contact-{ada.pk}-email").click()
    wait_until(page, "document.activeElement && document.activeElement.name === 'email'")
    page.fill(f"#cell-contact-{ada.pk}-email input[name=email]", "not-an-email")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#cell-contact-{ada.pk}-email [data-testid=cell-error]")
    # the cursor is back in the input, so she can fix it or press Escape
    wait_until(page, "document.activeElement && document.activeElement.name === 'email'")
    page.keyboard.press("Escape")
    wait_until(page, f"!document.querySelector('#cell-contact-{ada.pk}-email input')")
    assert Contact.objects.get(pk=ada.pk).email == "ada@acme.com"
    # the page reloaded from its URL renders the same state
    page.reload()
    assert page.locator("#contact-table tbody tr").count() == 1


def test_global_search_with_the_keyboard(page, live_server):
    make_user(role="Sales", username="rita")
    ada = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    log_in(page, live_server, "rita")
    # "/" focuses the search box, results come as she types, Enter opens the first one
    page.keyboard.press("/")
    page.keyboard.type("lovelace")
    page.wait_for_selector("#global-search-results.show [role=option]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/contacts/{ada.pk}/")
    assert page.inner_text("[data-testid=record-title]") == "Ada Lovelace"
    # Ctrl-K focuses it from anywhere
    page.keyboard.press("Control+k")
    assert page.evaluate("document.activeElement.id") == "global-search"


def test_quick_add_from_the_list_without_a_reload(page, live_server):
    make_user(role="Sales", username="rita")
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/contacts/")
    page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
    page.click("[data-testid=quick-add]")
    page.wait_for_selector("#app-modal.show [data-testid=quick-add-form]")
    assert page.url == live_server.url + "/contacts/"  # the modal does not change the address
    page.fill("#app-modal input[name=first_name]", "Katherine")
    page.fill("#app-modal input[name=email]", "kj@nasa.gov")
    page.click("#app-modal button[type=submit]")
    wait_until(page, "document.querySelector('#contact-table').innerText.includes('Katherine')")
    assert page.evaluate("window.__marker") == 1
    assert Contact.objects.get().email == "kj@nasa.gov"
