"""Open pixels and click redirects of tracked sends: public (the recipient is not logged in), events
on the contact, privacy proxies flagged, and no redirect to a URL the send did not contain."""

import datetime as dt
import email
import email.policy
import re

import pytest
from django.test import override_settings

from events.models import Event
from identity.models import ContactEvent
from mail.services.sending import email_send, send_deliver
from mail.services.tracking import open_kind
from tests.factories import make_contact, make_deal, make_user
from tests.factories.mail import make_sending_mailbox
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db

PUBLIC = "https://crm.example.test"
MAIL_APP = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


@pytest.fixture
def sent(smtp_server):
    """A tracked send to Ada on a deal, delivered; returns (send, ada, the received HTML)."""
    rep = make_user(username="rita", email="rita@ourco.test")
    mailbox = make_sending_mailbox(rep, smtp_server, email_address="rita@ourco.test")
    ada = make_contact(email="ada@acme.test")
    deal = make_deal(title="Pilot", contact=ada)
    with override_settings(CDP_PUBLIC_HOST=PUBLIC):
        send = email_send(
            sender=rep, mailbox=mailbox, to=["ada@acme.test"], subject="Proposal", contact=ada, deal=deal,
            body_html='<p><a href="https://acme.example/proposal?a=1&amp;b=2">Proposal</a></p>', track=True,
        )  # fmt: skip
        send_deliver(send_id=send.pk)
    send.refresh_from_db()
    raw = email.message_from_bytes(smtp_server.received[0].raw, policy=email.policy.default)
    html = raw.get_body(preferencelist=("html",)).get_content()
    return send, ada, html


def _path(url: str) -> str:
    assert url.startswith(PUBLIC)
    return url[len(PUBLIC) :]


def test_the_pixel_is_a_public_uncached_gif_and_records_an_open_on_the_contact(client, sent):
    send, ada, html = sent
    pixel = re.search(r'<img src="([^"]+)"', html)[1]

    response = client.get(_path(pixel), headers={"user-agent": MAIL_APP})

    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and len(response.content) == 42
    assert "no-store" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]
    event = Event.objects.get(event="Email Opened")
    assert event.source.name == "CRM email" and event.message_id.startswith(f"mail:open:{send.pk}:")
    assert event.properties["machine_open"] is False and event.properties["send_id"] == send.pk
    # a second load in the same minute (clients load images twice) is the same open
    client.get(_path(pixel), headers={"user-agent": MAIL_APP})
    assert Event.objects.filter(event="Email Opened").count() == 1
    drain()
    assert list(ContactEvent.objects.filter(event=event).values_list("contact_id", flat=True)) == [ada.pk]


def test_privacy_proxy_loads_are_machine_opens():
    assert open_kind(user_agent="Mozilla/5.0") == open_kind(user_agent=" Mozilla/5.0 ")
    assert open_kind(user_agent="Mozilla/5.0").proxy == "apple"
    assert open_kind(user_agent=GMAIL_PROXY).proxy == "google"
    assert open_kind(
        user_agent="YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
    ).machine
    assert open_kind(user_agent="").machine
    assert not open_kind(user_agent=MAIL_APP).machine


def test_an_apple_mpp_prefetch_is_recorded_as_a_machine_open(client, sent):
    send, _ada, _html = sent
    client.get(f"/t/o/{send.tracking_token}.gif", headers={"user-agent": "Mozilla/5.0"})
    event = Event.objects.get(event="Email Opened")
    assert event.properties["machine_open"] is True and event.properties["proxy"] == "apple"


def test_an_unknown_token_gets_the_gif_with_404_and_records_nothing(client, sent):
    response = client.get("/t/o/not-a-token.gif")
    assert response.status_code == 404 and response["Content-Type"] == "image/gif"
    assert not Event.objects.filter(event="Email Opened").exists()


def test_a_click_redirects_to_the_stored_url_and_records_it(client, sent):
    send, ada, html = sent
    link = re.search(r'<a href="([^"]+)"', html)[1]
    assert link == f"{PUBLIC}/t/c/{send.tracking_token}/1"

    response = client.get(_path(link))

    assert response.status_code == 302 and response["Location"] == "https://acme.example/proposal?a=1&b=2"
    assert "no-store" in response["Cache-Control"]
    event = Event.objects.get(event="Email Link Clicked")
    assert event.properties["url"] == "https://acme.example/proposal?a=1&b=2"
    assert event.properties["deal_id"] == send.deal_id and event.properties["position"] == 1
    drain()
    assert list(ContactEvent.objects.filter(event=event).values_list("contact_id", flat=True)) == [ada.pk]


def test_no_open_redirect_only_stored_links_of_tracked_sent_sends(client, sent):
    send, _ada, _html = sent
    assert client.get(f"/t/c/{send.tracking_token}/2").status_code == 404  # no second link
    assert client.get("/t/c/forged-token/1").status_code == 404
    assert client.get(f"/t/c/{send.tracking_token}/1?next=https://evil.test")["Location"].startswith(
        "https://acme.example/"
    )
    assert Event.objects.filter(event="Email Link Clicked").count() == 1  # only the real link's
    # a send that was not tracked answers nothing for its token
    type(send).objects.filter(pk=send.pk).update(track=False)
    assert client.get(f"/t/c/{send.tracking_token}/1").status_code == 404
    assert client.get(f"/t/o/{send.tracking_token}.gif").status_code == 404
    assert not Event.objects.filter(event="Email Opened").exists()
    assert Event.objects.filter(event="Email Link Clicked").count() == 1


def test_opens_a_minute_apart_are_two_opens(client, sent, monkeypatch):
    from django.utils import timezone

    send, _ada, _html = sent
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    client.get(f"/t/o/{send.tracking_token}.gif")
    monkeypatch.setattr(timezone, "now", lambda: now + dt.timedelta(minutes=2))
    client.get(f"/t/o/{send.tracking_token}.gif")
    assert Event.objects.filter(event="Email Opened").count() == 2
