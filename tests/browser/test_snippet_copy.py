"""The source page's Copy button puts the snippet on the clipboard, in a real Chromium."""

import pytest
from django.urls import reverse

from events import services, tracking
from tests.browser.conftest import wait_until
from tests.browser.test_contacts import log_in
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_copy_puts_the_snippet_on_the_clipboard_and_says_copied(page, live_server):
    # given a marketer on a source's page, in a browser that lets the page use the clipboard
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    make_user(role="Marketing", username="mia")
    source = services.source_create(actor=None, name="Shop")
    log_in(page, live_server, "mia")
    page.goto(live_server.url + reverse("events:source_detail", args=[source.pk]))
    page.evaluate("navigator.clipboard.writeText('something else')")
    button = page.locator("[data-testid=copy-snippet]")
    assert button.inner_text().strip() == "Copy"
    # when she clicks Copy
    button.click()
    # then the button says so, and the clipboard holds exactly the snippet the page shows
    wait_until(page, "document.querySelector('[data-testid=copy-snippet]').textContent.includes('Copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == tracking.source_snippet(source, host=live_server.url)
    assert copied == page.locator("[data-testid=snippet]").text_content()
    assert source.write_key in copied
