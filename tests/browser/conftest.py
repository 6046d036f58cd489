import time

import pytest


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    # The app's Content-Security-Policy is enforced in these tests as in production; anything it
    # blocks (an inline handler someone added, say) fails the test instead of silently not running.
    violations = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield page
    context.close()
    assert violations == [], f"Content-Security-Policy violations: {violations}"


def wait_until(page, expression: str, *, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until it is truthy. Playwright's wait_for_function compiles its
    predicate with eval inside the page, which our Content-Security-Policy (rightly) refuses;
    page.evaluate runs through the DevTools protocol instead."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {expression}")
        page.wait_for_timeout(50)
