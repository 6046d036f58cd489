import pytest

from contacts.models import Contact
from privacy import services
from privacy.models import ErasureRequest
from tests.browser.conftest import wait_until
from tests.browser.test_contacts import log_in
from tests.factories import make_admin, make_contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_erases_a_person_from_the_contact_page(page, live_server):
    # given an Admin on a contact's page
    make_admin(username="ines")
    contact = make_contact(first_name="Grace", last_name="Hopper", email="grace.q7@example.org")
    log_in(page, live_server, "ines")
    page.goto(live_server.url + contact.get_absolute_url())
    # when she chooses "Erase person" and first types the wrong name
    page.click("[data-testid=erase-person]")
    assert "cannot be undone" in page.inner_text("main")
    page.fill("input[name=confirm]", "Grace Kelly")
    page.click("[data-testid=confirm-erase]")
    page.wait_for_selector("text=not this person's email or full name")
    assert not ErasureRequest.objects.exists()
    # then the right email
    page.fill("input[name=confirm]", "GRACE.q7@example.org")
    page.click("[data-testid=confirm-erase]")
    page.wait_for_selector("[data-testid=erasure-status]")
    request = ErasureRequest.objects.get()
    # and once the task has run, the page (polling) says done, with the counts
    services.person_erase(request_id=request.pk)
    wait_until(page, "document.querySelector('[data-testid=erasure-status]').textContent.trim() === 'Done'")
    assert "contacts.Contact" in page.inner_text("[data-testid=erasure-counts]")
    assert not Contact.objects.filter(pk=contact.pk).exists()
    # and the log under Settings lists it, without the person's name
    page.goto(live_server.url + "/settings/")
    page.click("#privacy >> text=Erasure log")
    page.wait_for_selector("[data-testid=erasure-row]")
    assert request.reference in page.inner_text("main")
    assert "Grace" not in page.inner_text("main")
