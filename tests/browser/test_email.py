"""Email from a deal in real Chromium: a template, a tracked send through a real SMTP server and
the session's Celery worker, the email on the timeline, then the recipient's open and click as
events on the contact's timeline."""

import re
import time

import pytest

from mail import crypto
from mail.models import EmailTemplate, Mailbox, OutgoingEmail
from pipeline.models import Deal
from tests.browser.test_contacts import log_in
from tests.factories import make_contact, make_pipeline, make_user
from tests.mail.conftest import smtp_server, smtp_session_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _poll(condition, what: str, *, timeout: float = 30.0, worker=None):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(what + ("\n" + worker.output()[-3000:] if worker else ""))
        time.sleep(0.1)
    return value


def test_compose_from_a_deal_with_a_template_then_the_open_and_click_show_on_the_timeline(
    page,
    live_server,
    settings,
    celery_worker,
    smtp_server,  # noqa: F811
):
    settings.CDP_PUBLIC_HOST = live_server.url
    rita = make_user(role="Sales", username="rita", email="rita@ourco.test", first_name="Rita")
    Mailbox.objects.create(
        owner=rita, email_address="rita@ourco.test", username=smtp_server.username, imap_host="127.0.0.1",
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none",
        secret_encrypted=crypto.secret_encrypt(smtp_server.password), unknown_policy="never",
    )  # fmt: skip
    ada = make_contact(first_name="Ada", last_name="Byron", email="ada@acme.test", owner=rita)
    pipeline = make_pipeline()
    deal = Deal.objects.create(
        title="Acme pilot", pipeline=pipeline, stage=pipeline.stages.first(), contact=ada, owner=rita
    )
    EmailTemplate.objects.create(
        name="Pilot follow-up", owner=rita, subject="Next steps for {{ deal.name }}",
        body=f"Hi {{{{ contact.first_name }}}}, the plan: {live_server.url}/healthz",
    )  # fmt: skip

    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/deals/{deal.pk}/")
    page.click("[data-testid=compose-email]")
    page.wait_for_selector("[data-testid=compose-form]")
    page.select_option("[data-testid=compose-template]", label="Pilot follow-up")
    page.click("[data-testid=compose-template-picker] button[type=submit]")
    page.wait_for_selector("[data-testid=compose-subject][value='Next steps for Acme pilot']")
    assert page.input_value("[data-testid=compose-to]") == "ada@acme.test"
    assert page.input_value("[data-testid=compose-body]").startswith("Hi Ada, the plan:")
    page.check("[data-testid=compose-track]")
    page.click("[data-testid=compose-send]")
    page.wait_for_url(f"{live_server.url}/deals/{deal.pk}/")

    # the worker delivers it; the deal's timeline shows it
    _poll(lambda: smtp_server.received, "the SMTP server received nothing", worker=celery_worker)
    raw = smtp_server.received[0].raw.decode()
    assert "Next steps for Acme pilot" in raw
    _poll(lambda: OutgoingEmail.objects.filter(status="sent").exists(), "not sent", worker=celery_worker)
    page.reload()
    page.wait_for_selector("#deal-activity-slot >> text=Next steps for Acme pilot")

    # Ada opens it and clicks the link (the pixel and the redirect on the app's public paths)
    html = re.sub(r"=\r?\n", "", raw).replace("=3D", "=")  # undo quoted-printable soft breaks
    pixel = re.search(r"(/t/o/[A-Za-z0-9_-]+\.gif)", html)[1]
    click = re.search(r"(/t/c/[A-Za-z0-9_-]+/1)", html)[1]
    # (as a person's browser: a headless user agent is bot traffic, kept off the timeline)
    visitor = page.context.browser.new_context(
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    )
    recipient = visitor.new_page()
    assert recipient.goto(live_server.url + pixel).headers["content-type"] == "image/gif"
    recipient.goto(live_server.url + click)
    assert recipient.url == f"{live_server.url}/healthz"
    visitor.close()

    # both become events on Ada (through the stitching worker) and show on her timeline
    def on_timeline():
        page.goto(f"{live_server.url}/contacts/{ada.pk}/")
        page.wait_for_selector("#timeline [data-testid=timeline-slot]", state="detached")
        text = page.inner_text("#timeline")
        return "Email Opened" in text and "Email Link Clicked" in text

    try:
        _poll(on_timeline, "the open and the click did not reach Ada's timeline")
    except AssertionError:
        from events.models import Event
        from identity.models import ContactEvent

        raise AssertionError(
            repr(list(Event.objects.values_list("event", "anonymous_id")))
            + repr(list(ContactEvent.objects.filter(contact=ada).values_list("type", "name")))
            + page.inner_text("#timeline")[:1500]
        ) from None
