"""The app shell's own behaviour in a real browser: confirmations and layout that holds."""

import pytest

from contacts.models import Contact
from tests.browser.test_contacts import log_in
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _answer_dialogs(page, *, accept: bool) -> list[str]:
    """Answer every dialog the page opens; the list records each one's message."""
    seen: list[str] = []

    def answer(dialog):
        seen.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.on("dialog", answer)
    return seen


def test_a_delete_form_asks_once_and_deletes_when_accepted(page, live_server):
    # given a rep on the page of her contact
    make_user(role="Sales", username="rita")
    contact = make_contact(first_name="Ada", email="ada@example.com")
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    dialogs = _answer_dialogs(page, accept=True)
    # when she deletes it and says yes
    page.click("[data-testid=delete-record]")
    page.wait_for_url(live_server.url + "/contacts/")
    # then she was asked exactly once, and the contact is gone
    assert dialogs == ["Delete this contact? This cannot be undone."]
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_a_delete_form_asks_once_and_keeps_the_record_when_dismissed(page, live_server):
    make_user(role="Sales", username="rita")
    contact = make_contact(first_name="Ada", email="ada@example.com")
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    dialogs = _answer_dialogs(page, accept=False)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    # when she deletes it and says no
    page.click("[data-testid=delete-record]")
    # a round trip through the page: its submit handlers have all run by now
    page.evaluate("1")
    # then she was asked once, nothing was sent, and the contact is still there
    assert dialogs == ["Delete this contact? This cannot be undone."]
    assert posts == []
    assert page.url == f"{live_server.url}/contacts/{contact.pk}/"
    assert Contact.objects.filter(pk=contact.pk).exists()
