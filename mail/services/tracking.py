"""Opens and clicks of tracked sends, as `Email Opened` / `Email Link Clicked` events on the contact.

The token in the pixel and click URLs is the send's `tracking_token` (192 random bits): it names
the send without exposing its id. A click redirects only to a URL stored with the send when it
went (TrackedLink), so a forged or edited URL cannot bounce anyone to a site of its choosing.

Machine opens. Much of what loads a pixel is not a person reading: Apple Mail Privacy Protection
fetches every image through Apple's proxies when the message arrives, whether or not it is ever
read, with a bare "Mozilla/5.0" user agent; Gmail, Yahoo and others fetch through an image proxy
(Gmail's "GoogleImageProxy" via ggpht.com, Yahoo's "YahooMailProxy") that hides the reader's
address and device. Such an open still happened, so it is recorded, with `machine_open: true` and
`proxy` naming which, and the readers (segments, scores, hot rules) decide whether to count it.
This is a user-agent heuristic, as every ESP's is: a proxy that changes its user agent is missed,
and a real client sending only "Mozilla/5.0" is flagged. (Gmail's proxy fetches when the message
is opened, so its opens are usually real; they are flagged because the proxy hides the device.)

Repeats. A mail client loads the pixel again each time the message is shown, sometimes twice at
once. The event key is `open:<send>:<minute>` (and `click:<send>:<position>:<minute>`): loads in
the same minute are one event (the event log's dedup), later ones are new opens. There is no
per-send counter to number opens by: a minute bucket needs no write to the send row on the hot
path.
"""

import datetime as dt
import re
from dataclasses import dataclass

from django.utils import timezone

from mail.models import OutgoingEmail, SendStatus, TrackedLink
from mail.services.events import EMAIL_LINK_CLICKED, EMAIL_OPENED, EmailEvent, email_events_record
from mail.services.sending import send_contacts

_PROXIES = (
    ("google", re.compile(r"GoogleImageProxy|ggpht\.com", re.IGNORECASE)),
    ("yahoo", re.compile(r"YahooMailProxy", re.IGNORECASE)),
    # Apple MPP: exactly "Mozilla/5.0", nothing after it (Mail.app itself sends a full agent).
    ("apple", re.compile(r"^Mozilla/5\.0$")),
)


@dataclass(frozen=True, slots=True)
class OpenKind:
    machine: bool
    proxy: str = ""  # "apple", "google", "yahoo", "unknown" (no user agent at all)


def open_kind(*, user_agent: str) -> OpenKind:
    """Whether a pixel load looks like a mail-privacy proxy or prefetcher (see the module doc)."""
    agent = (user_agent or "").strip()
    if not agent:
        return OpenKind(machine=True, proxy="unknown")
    for name, pattern in _PROXIES:
        if pattern.search(agent):
            return OpenKind(machine=True, proxy=name)
    return OpenKind(machine=False)


def _tracked_send(token: str) -> OutgoingEmail | None:
    if not token:
        return None
    # Only a tracked send that went out has a pixel or links: anything else is a guess.
    return OutgoingEmail.objects.filter(tracking_token=token, track=True, status=SendStatus.SENT).first()


def _minute(at: dt.datetime) -> int:
    return int(at.timestamp()) // 60


def tracking_open(*, token: str, user_agent: str = "") -> bool:
    """Record an open of the send with this token. False when no tracked, sent send has it."""
    send = _tracked_send(token)
    if send is None:
        return False
    now = timezone.now()
    kind = open_kind(user_agent=user_agent)
    properties = {
        "send_id": send.pk,
        "subject": send.subject,
        "deal_id": send.deal_id,
        "machine_open": kind.machine,
        "proxy": kind.proxy,
        "seconds_after_send": int((now - send.sent_at).total_seconds()) if send.sent_at else None,
    }
    email_events_record(
        events=[
            EmailEvent(
                contact_id=contact_id,
                name=EMAIL_OPENED,
                key=f"{key}:{_minute(now)}",
                timestamp=now,
                properties=properties,
                context={"userAgent": user_agent[:500]} if user_agent else {},
            )
            for contact_id, key in send_contacts(send, key="open")
        ]
    )
    return True


def tracking_click(*, token: str, position: int, user_agent: str = "") -> str | None:
    """Record a click on link `position` of the send with this token and answer its stored URL;
    None when there is no such link (the view answers 404: never a redirect to an unknown URL)."""
    send = _tracked_send(token)
    if send is None:
        return None
    link = TrackedLink.objects.filter(send=send, position=position).first()
    if link is None:
        return None
    now = timezone.now()
    email_events_record(
        events=[
            EmailEvent(
                contact_id=contact_id,
                name=EMAIL_LINK_CLICKED,
                key=f"{key}:{position}:{_minute(now)}",
                timestamp=now,
                properties={
                    "send_id": send.pk,
                    "subject": send.subject,
                    "deal_id": send.deal_id,
                    "url": link.url,
                    "position": position,
                },
                context={"userAgent": user_agent[:500]} if user_agent else {},
            )
            for contact_id, key in send_contacts(send, key="click")
        ]
    )
    return link.url
