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
    # the header's lazy actions (privacy) swap in beside the button and move it: let them land
    page.wait_for_load_state("networkidle")
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
    # the header's lazy actions (privacy) swap in beside the button and move it: let them land
    page.wait_for_load_state("networkidle")
    page.click("[data-testid=delete-record]")
    # a round trip through the page: its submit handlers have all run by now
    page.evaluate("1")
    # then she was asked once, nothing was sent, and the contact is still there
    assert dialogs == ["Delete this contact? This cannot be undone."]
    assert posts == []
    assert page.url == f"{live_server.url}/contacts/{contact.pk}/"
    assert Contact.objects.filter(pk=contact.pk).exists()


# A little slack for sub-pixel rounding; a layout pushed wide by text is off by thousands.
WIDTH_TOLERANCE = 2


def _page_width(page) -> dict:
    return page.evaluate("({scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth})")


def _long_record(owner):
    """A contact with names, email and title as long as the fields allow, all unbroken, at a
    company with a 200-character name, and a note that is one 20,000-character word."""
    from pipeline.services import activities
    from tests.factories import make_company

    contact = make_contact(
        first_name="F" * 100,
        last_name="L" * 100,
        email="e" * 230 + "@example.com",
        title="T" * 150,
        company=make_company(name="C" * 200),
        tags=["t" * 50, "u" * 50, "v" * 50],
        owner=owner,
    )
    activities.activity_log(actor=owner, kind="note", body="W" * 20_000, contact=contact)
    return contact


def test_long_unbroken_text_wraps_on_the_contact_page(page, live_server):
    contact = _long_record(make_user(role="Sales", username="rita"))
    log_in(page, live_server, "rita")
    # when she opens the contact page (its lazy panels loaded, the note among them)
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    page.wait_for_selector("[data-testid=activity] .activity-body")
    # then the page is no wider than the window
    size = _page_width(page)
    assert size["scroll"] <= size["inner"] + WIDTH_TOLERANCE, size


def test_long_values_are_cut_in_the_contact_list_with_the_whole_value_on_hover(page, live_server):
    contact = _long_record(make_user(role="Sales", username="rita"))
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/contacts/")
    page.wait_for_selector(f"#contact-table tr[data-record='{contact.pk}']")
    # neither the page nor the table runs off the screen: every column stays in view
    size = _page_width(page)
    assert size["scroll"] <= size["inner"] + WIDTH_TOLERANCE, size
    table = page.evaluate(
        "(() => { const t = document.querySelector('#contact-table table');"
        " return {table: t.scrollWidth, box: t.parentElement.clientWidth}; })()"
    )
    assert table["table"] <= table["box"] + WIDTH_TOLERANCE, table
    # a cut cell tells the whole value on hover
    email = page.locator(f"#cell-contact-{contact.pk}-email .cell-text")
    assert email.get_attribute("title") == contact.email
    company = page.locator(f"#cell-contact-{contact.pk}-company .cell-text")
    assert company.get_attribute("title") == "C" * 200
