"""Three weeks of the demo's web traffic, sent through the real tracking pipeline.

seed_demo calls `web_traffic_seed`: it writes Segment-spec messages (anonymous visits with UTM
campaigns, identifies that join the CRM's people, new leads signing up, pricing views, a crawler)
and hands them to `events.ingest.endpoint.ingest_request`, the function behind POST /v1/batch, so they are
validated, deduplicated and stored like a site's. Then it drains the ingest queue in this process
with the stitching worker's own service (`ingest_queue_process`), so identities, merges, the
projection, rollups and first-touch attribution exist when seed_demo returns.

Timestamps: a message's `timestamp` is kept as sent when the message has no `sentAt` (with
`sentAt`, the server re-bases it on its own clock to correct the device's skew, which would put
three weeks of history at "now"), so the messages carry `timestamp` only; `received_at` is the
server's clock at seeding, as for any import of history.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.core.management.base import CommandError

from contacts.models import Contact
from events import services as event_services
from events.ingest import endpoint as events_api
from events.ingest.parse import MAX_REQUEST_BYTES
from events.models import Event, IngestQueue, Source
from pipeline.models import Deal, DealStatus

DAYS = 21
SITE = "https://www.cdp-crm.example"
# messageIds start with this, which is also how a later run knows the traffic is there.
MESSAGE_PREFIX = "demo-"
PAGES = {
    "/": "Home",
    "/features": "Features",
    "/features/segments": "Segments",
    "/features/pipeline": "Sales pipeline",
    "/integrations": "Integrations",
    "/customers": "Customers",
    "/pricing": "Pricing",
    "/docs": "Docs",
    "/docs/getting-started": "Getting started",
    "/blog/cdp-vs-crm": "CDP vs CRM: why not both?",
    "/blog/identity-resolution": "Identity resolution, explained",
    "/book-demo": "Book a demo",
    "/signup": "Start your free trial",
}
# Where a page leads next (weights): pricing is where buyers end up.
NEXT = {
    "/": {"/features": 4, "/pricing": 4, "/customers": 2, "/blog/cdp-vs-crm": 1, "/docs": 1},
    "/features": {"/features/segments": 3, "/features/pipeline": 3, "/pricing": 4, "/integrations": 2},
    "/features/segments": {"/pricing": 3, "/docs/getting-started": 2, "/features/pipeline": 1},
    "/features/pipeline": {"/pricing": 3, "/customers": 1, "/book-demo": 1},
    "/integrations": {"/pricing": 2, "/docs": 2},
    "/customers": {"/pricing": 3, "/book-demo": 2},
    "/pricing": {"/book-demo": 2, "/signup": 2, "/features": 2, "/customers": 2},
    "/docs": {"/docs/getting-started": 3, "/pricing": 1},
    "/docs/getting-started": {"/signup": 1, "/pricing": 2},
    "/blog/cdp-vs-crm": {"/features": 2, "/pricing": 1, "/blog/identity-resolution": 1},
    "/blog/identity-resolution": {"/features/segments": 2, "/signup": 1},
    "/book-demo": {"/pricing": 1},
    "/signup": {"/docs/getting-started": 1},
}
# (weight, landing page, UTM campaign as Segment's context.campaign, referrer)
CHANNELS = [
    (
        24,
        "/pricing",
        {"source": "google", "medium": "cpc", "name": "crm-alternatives", "term": "customer data platform"},
        "https://www.google.com/",
    ),
    (
        14,
        "/features",
        {"source": "linkedin", "medium": "paid-social", "name": "q4-launch"},
        "https://www.linkedin.com/",
    ),
    (10, "/blog/cdp-vs-crm", {"source": "newsletter", "medium": "email", "name": "december-digest"}, ""),
    (22, "/blog/identity-resolution", None, "https://www.google.com/"),
    (20, "/", None, ""),
    (6, "/", None, "https://news.ycombinator.com/"),
]
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# Pages that end in a tracked event.
CONVERSIONS = {
    "/signup": ("Trial Started", {"plan": "Growth", "trial_days": 14}),
    "/book-demo": ("Demo Requested", {"team_size": "11-50"}),
}
PROSPECT_DOMAINS = ("brightloop.io", "northpeak.co", "fernwood.dev", "quantumleaf.ai", "harborline.com")
HOT_DEALS = 6  # open deals whose person comes back to pricing today
LOGIN_HOT_DEALS = 3  # of those, owned by the demo login (so its bell rings)


@dataclass
class Visitor:
    anonymous_id: str
    user_agent: str
    user_id: str = ""
    traits: dict = field(default_factory=dict)
    contact_id: int | None = None


@dataclass
class Traffic:
    rng: random.Random
    now: datetime
    seed: int
    messages: list[dict] = field(default_factory=list)
    visitors: list[Visitor] = field(default_factory=list)
    hot_deal_ids: list[int] = field(default_factory=list)

    def message(self, visitor: Visitor, at: datetime, **fields) -> dict:
        message = {
            "messageId": f"{MESSAGE_PREFIX}{self.seed}-{len(self.messages)}",
            "anonymousId": visitor.anonymous_id,
            "timestamp": min(at, self.now).isoformat(),
            **fields,
        }
        if visitor.user_id:
            message["userId"] = visitor.user_id
        message.setdefault("context", {})["userAgent"] = visitor.user_agent
        message["context"]["library"] = {"name": "analytics.js", "version": "5.2.0"}
        self.messages.append(message)
        return message

    def session(
        self, visitor: Visitor, start: datetime, *, pages: list[str] | None = None, identify_after: int = -1
    ) -> datetime:
        """One visit: a landing page from a channel, then pages a reader would click through.
        Identifies after page `identify_after` (0-based) when it is not -1. Returns its end."""
        weights = [c[0] for c in CHANNELS]
        _, landing, campaign, referrer = self.rng.choices(CHANNELS, weights)[0]
        if pages is None:
            pages = [landing]
            for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3, 4))):
                choices = NEXT[pages[-1]]
                pages.append(self.rng.choices(list(choices), list(choices.values()))[0])
        at = start
        for n, path in enumerate(pages):
            search = ""
            if n == 0 and campaign:
                query = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "name"}
                search = "?" + "&".join(f"{k}={campaign[v]}" for k, v in query.items())
            page = {
                "path": path,
                "url": f"{SITE}{path}{search}",
                "title": PAGES[path],
                "referrer": referrer if n == 0 else f"{SITE}{pages[n - 1]}",
                "search": search,
            }
            context = {"page": page}
            if n == 0 and campaign:
                context["campaign"] = dict(campaign)
            self.message(visitor, at, type="page", name=PAGES[path], properties=page, context=context)
            if path in CONVERSIONS and visitor.user_id:
                name, properties = CONVERSIONS[path]
                at += timedelta(seconds=self.rng.randint(20, 90))
                self.message(visitor, at, type="track", event=name, properties=dict(properties))
            if n == identify_after:
                self.identify(visitor, at + timedelta(seconds=self.rng.randint(5, 40)))
            at += timedelta(seconds=self.rng.randint(15, 240))
        return at

    def identify(self, visitor: Visitor, at: datetime) -> None:
        visitor.user_id = (
            visitor.user_id or "usr_" + hashlib.sha256(visitor.traits["email"].encode()).hexdigest()[:12]
        )
        self.message(visitor, at, type="identify", traits=dict(visitor.traits))

    def visitor(self, **fields) -> Visitor:
        return Visitor(
            anonymous_id=f"anon-{self.rng.getrandbits(64):016x}",
            user_agent=self.rng.choice(USER_AGENTS),
            **fields,
        )

    def visits(self, visitor: Visitor, *, since: datetime, sessions: int, identify_in: int | None) -> None:
        """`sessions` visits between `since` and now, in time order; the person identifies during
        visit `identify_in` (None: never)."""
        span = max((self.now - timedelta(minutes=30) - since).total_seconds(), 60)
        starts = sorted(since + timedelta(seconds=self.rng.uniform(0, span)) for _ in range(sessions))
        for n, start in enumerate(starts):
            self.session(visitor, start, identify_after=0 if n == identify_in else -1)


@dataclass
class Summary:
    events: int = 0
    visitors: int = 0
    identified: int = 0
    seconds: float = 0.0
    skipped: bool = False


def _traits(contact: Contact) -> dict:
    traits = {"email": contact.email, "first_name": contact.first_name, "last_name": contact.last_name}
    if contact.title:
        traits["title"] = contact.title
    return traits


def web_traffic_seed(*, source: Source, seed: int, now: datetime, count: int, login=None) -> Summary:
    """Generate and ingest the traffic (once: a database that has it gets nothing more)."""
    started = time.monotonic()
    summary = Summary()
    if Event.objects.filter(source=source, message_id__startswith=MESSAGE_PREFIX).exists():
        summary.skipped = True
        return summary
    traffic = traffic_generate(seed=seed, now=now, count=count)
    if login is not None:
        Deal.objects.filter(pk__in=traffic.hot_deal_ids[:LOGIN_HOT_DEALS]).update(owner=login)
    _ingest(source=source, messages=traffic.messages)
    _drain(first_id=_first_demo_event_id(source))
    summary.events = len(traffic.messages)
    summary.visitors = len(traffic.visitors)
    summary.identified = sum(1 for v in traffic.visitors if v.user_id)
    summary.seconds = time.monotonic() - started
    return summary


def traffic_generate(*, seed: int, now: datetime, count: int) -> Traffic:
    """The messages, in the order a site's clients would send them (by time), from the CRM's
    people and deals as they are now; the same seed, time and data give the same messages."""
    from workspace.management.commands.seed_demo import FIRST_NAMES, LAST_NAMES  # it imports this module

    traffic = Traffic(rng=random.Random(f"{seed}:web"), now=now, seed=seed)
    rng = traffic.rng
    visitors = traffic.visitors

    # The CRM's people who visit the site: anonymous at first, then they log in or fill a form
    # (identify with their email), which joins their earlier visits to the CRM record.
    people = list(
        Contact.objects.filter(is_identified=True, merged_into__isnull=True, email__isnull=False)
        .filter(created_at__lt=now - timedelta(days=2))
        .order_by("pk")
    )
    known = {c.pk: c for c in rng.sample(people, round(len(people) * 0.45))}
    for contact in known.values():
        visitor = traffic.visitor(traits=_traits(contact), contact_id=contact.pk)
        since = max(now - timedelta(days=DAYS), contact.created_at)
        sessions = rng.choice((1, 2, 2, 3, 3, 4))
        traffic.visits(visitor, since=since, sessions=sessions, identify_in=rng.choice((0, 0, 1)) % sessions)
        visitors.append(visitor)

    # New leads: strangers who sign up (the CRM learns of them from the site).
    for n in range(max(3, count // 10)):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{n}@{rng.choice(PROSPECT_DOMAINS)}".lower()
        visitor = traffic.visitor(traits={"email": email, "first_name": first, "last_name": last})
        traffic.visits(
            visitor, since=now - timedelta(days=DAYS), sessions=rng.choice((1, 2, 2, 3)), identify_in=0
        )
        visitors.append(visitor)

    # Visitors who never say who they are.
    for _ in range(max(10, count // 2)):
        visitor = traffic.visitor()
        traffic.visits(
            visitor, since=now - timedelta(days=DAYS), sessions=rng.choice((1, 1, 1, 2)), identify_in=None
        )
        visitors.append(visitor)

    # A crawler: stored and shown, left out of rollups, segments and hot deals.
    crawler = Visitor(anonymous_id="anon-crawler", user_agent=BOT_AGENT)
    visitors.append(crawler)
    for day in range(0, DAYS, 3):
        traffic.session(
            crawler, now - timedelta(days=day, hours=5), pages=["/", "/pricing", "/docs", "/blog/cdp-vs-crm"]
        )

    # Hot deals: people on open deals come back to pricing today (the "pricing" rule: 2 views in
    # 24 h), a few of them on deals of the demo login.
    open_deals = list(
        Deal.objects.filter(status=DealStatus.OPEN, contact__isnull=False, contact__is_identified=True)
        .select_related("contact")
        .order_by("pk")
    )
    hot = rng.sample(open_deals, min(HOT_DEALS, len(open_deals)))
    for deal in hot:
        contact = deal.contact
        visitor = next((v for v in visitors if v.contact_id == contact.pk), None)
        if visitor is None:
            visitor = traffic.visitor(traits=_traits(contact), contact_id=contact.pk)
            visitors.append(visitor)
        start = now - timedelta(hours=rng.randint(2, 20))
        pages = ["/", "/pricing", "/customers", "/pricing"] + ["/pricing"] * rng.randint(0, 1)
        traffic.session(visitor, start, pages=pages, identify_after=-1 if visitor.user_id else 0)
        traffic.hot_deal_ids.append(deal.pk)

    traffic.messages.sort(key=lambda m: m["timestamp"])
    return traffic


def _ingest(*, source: Source, messages: list[dict]) -> None:
    """POST /v1/batch, as a server SDK would (Basic auth with the write key), in requests under
    the API's size cap."""
    authorization = "Basic " + base64.b64encode(f"{source.write_key}:".encode()).decode()
    for body in _bodies(messages):
        for _attempt in range(30):
            reply = events_api.ingest_request(
                method="POST",
                kind="batch",
                origin="",
                content_length=str(len(body)),
                read=io.BytesIO(body).read,
                content_encoding="",
                authorization=authorization,
                header_key="",
                query_string="",
            )
            if reply.status != 429:
                break
            # Over the source's rate limit (only with a low INGEST_RATE_LIMIT_PER_SECOND): the
            # wait a client is told to make.
            retry_after = dict(reply.headers).get("Retry-After", "1")
            time.sleep(min(float(retry_after), 5))
        if reply.status != 200 or b'"rejected"' in reply.body:
            raise CommandError(
                f"the tracking API refused the demo traffic: {reply.status} {reply.body[:500]!r}"
            )


def _bodies(messages: list[dict]):
    """Batch bodies of at most ~400 KB (the API takes 500 KB)."""
    batch: list[bytes] = []
    size = 0
    for message in messages:
        encoded = orjson.dumps(message)
        if batch and size + len(encoded) > MAX_REQUEST_BYTES * 0.8:
            yield b'{"batch":[' + b",".join(batch) + b"]}"
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        yield b'{"batch":[' + b",".join(batch) + b"]}"


def _first_demo_event_id(source: Source) -> int:
    return (
        Event.objects.filter(source=source, message_id__startswith=MESSAGE_PREFIX)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
        or 0
    )


def _drain(*, first_id: int) -> None:
    """What the Celery worker's ingest_drain does, here and now: claim queued batches and stitch
    them (settings.INGEST_PROCESSOR), until the queue is empty."""
    while event_services.ingest_queue_process(limit=500):
        pass
    dead = IngestQueue.objects.filter(event_id__gte=first_id, dead_at__isnull=False)
    if error := dead.values_list("last_error", flat=True).first():
        raise CommandError(f"stitching the demo traffic failed: {error}")
