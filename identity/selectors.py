"""Reads behind the CRM views of identity: a person's web activity (sessions, events, identifiers,
attribution), the contact timeline that interleaves it with activities and stage changes, and the
behavioural signals on deal cards.

Everything reads `ContactEvent` (the event -> contact projection) and `DailyActivity` (the daily
rollups), never the event table by contact: events keep the identifiers they were sent with, so a
person's anonymous history is found through the projection the stitching worker maintains.
"""

import base64
import binascii
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q, QuerySet, Value
from django.utils import timezone
from django.utils.module_loading import import_string

from contacts.models import ATTRIBUTION_TOUCHED_AT, Contact, ContactMerge
from contacts.permissions import ensure_can_read
from core.errors import NotFound
from core.pagination import KeysetPage, keyset_page
from events.models import Event
from identity.models import (
    ActivityKind,
    BlockedValue,
    ContactEvent,
    DailyActivity,
    HotDealAlert,
    HotRule,
    Identity,
    IdentityWarning,
)
from pipeline import selectors as pipeline_selectors
from pipeline.selectors import activities as activity_selectors

# A visit ends after this much inactivity (the convention of Google Analytics, Matomo, PostHog).
SESSION_GAP = timedelta(minutes=30)
PAGE_TYPES = ("page", "screen")
# Rows read per query while walking a person's page views newest first.
SCAN_CHUNK = 500
# A session lists at most this many of its pages; the rest are counted.
SESSION_PAGES_SHOWN = 30
# Event JSON longer than this is cut in the panel (the API returns it whole).
JSON_SHOWN_CHARS = 4000
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Segment's context.campaign names utm_campaign "name"; the others drop the prefix.
CAMPAIGN_KEYS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
SIGNAL_DAYS = 7


# --- sessions


@dataclass
class PageView:
    event_id: int
    at: datetime
    type: str
    path: str
    name: str
    is_bot: bool = False
    # The event's: reading the stored event by id with it plans only its month's partition.
    received_at: datetime | None = None

    @property
    def label(self) -> str:
        return self.path or self.name or "(no path)"


@dataclass
class Session:
    """Page and screen views with no gap longer than SESSION_GAP, oldest first."""

    pages: list[PageView]
    referrer: str = ""
    landing_url: str = ""
    utm: dict[str, str] = field(default_factory=dict)

    @property
    def started_at(self) -> datetime:
        return self.pages[0].at

    @property
    def ended_at(self) -> datetime:
        return self.pages[-1].at

    @property
    def duration(self) -> timedelta:
        return self.ended_at - self.started_at

    @property
    def landing(self) -> PageView:
        return self.pages[0]

    @property
    def key(self) -> int:
        return self.landing.event_id

    @property
    def shown_pages(self) -> list[PageView]:
        return self.pages[:SESSION_PAGES_SHOWN]

    @property
    def hidden_pages(self) -> int:
        return max(0, len(self.pages) - SESSION_PAGES_SHOWN)


def _page_views(
    contact_id: int, *, before: datetime | None = None, since: datetime | None = None, bots: bool = False
) -> Iterator[PageView]:
    """A person's page and screen views (bots' too when `bots`): newest first before `before`, or
    oldest first from `since` on. Read in chunks, so a caller that stops early reads only what it
    used."""
    views = ContactEvent.objects.filter(contact_id=contact_id, type__in=PAGE_TYPES)
    if not bots:
        views = views.filter(is_bot=False)
    ascending = since is not None
    if ascending:
        views = views.filter(timestamp__gte=since)
    elif before is not None:
        views = views.filter(timestamp__lt=before)
    order = ("timestamp", "event_id") if ascending else ("-timestamp", "-event_id")
    edge: tuple[datetime, int] | None = None
    while True:
        chunk = views
        if edge is not None:
            at, event_id = edge
            if ascending:
                chunk = chunk.filter(Q(timestamp__gt=at) | Q(timestamp=at, event_id__gt=event_id))
            else:
                chunk = chunk.filter(Q(timestamp__lt=at) | Q(timestamp=at, event_id__lt=event_id))
        rows = list(
            chunk.order_by(*order).values_list(
                "event_id", "timestamp", "type", "path", "name", "is_bot", "received_at"
            )[:SCAN_CHUNK]
        )
        for row in rows:
            yield PageView(*row)
        if len(rows) < SCAN_CHUNK:
            return
        edge = (rows[-1][1], rows[-1][0])


def web_sessions(
    *,
    user: AbstractBaseUser,
    contact: Contact,
    started_before: datetime | None = None,
    limit: int = 10,
    bots: bool = False,
) -> tuple[list[Session], bool]:
    """A person's visits that started before `started_before` (all, when None), newest first, and
    whether older ones exist; bot-flagged views only when `bots`. Reads page views newest first
    and stops one view into the session after the last one returned, so a page costs the views of
    its sessions, not the history."""
    ensure_can_read(user)
    sessions: list[list[PageView]] = []  # each newest first while scanning
    current: list[PageView] = []
    has_more = False
    for view in _page_views(contact.pk, before=started_before, bots=bots):
        if current and current[-1].at - view.at > SESSION_GAP:
            sessions.append(current)
            if len(sessions) == limit:
                has_more = True
                current = []
                break
            current = []
        current.append(view)
    if current:
        sessions.append(current)
    result = [Session(pages=list(reversed(pages))) for pages in sessions]
    if result and started_before is not None:
        _extend_forward(result[0], contact_id=contact.pk, since=started_before, bots=bots)
    _add_landing_details(result)
    return result, has_more


def _extend_forward(session: Session, *, contact_id: int, since: datetime, bots: bool) -> None:
    """The newest session before a cut-off time may continue after it (a timeline page boundary
    falls inside a visit): follow its views past the cut-off while the gaps stay short."""
    for view in _page_views(contact_id, since=since, bots=bots):
        if view.at - session.ended_at > SESSION_GAP:
            return
        session.pages.append(view)


def _add_landing_details(sessions: list[Session]) -> None:
    """Referrer, landing URL and UTM tags of each session's first view, from the stored event."""
    if not sessions:
        return
    events = _events_by_id(
        [s.key for s in sessions], received=[s.landing.received_at for s in sessions]
    ).values_list("pk", "properties", "context")
    by_id = {pk: (properties, context) for pk, properties, context in events}
    for session in sessions:
        properties, context = by_id.get(session.key, ({}, {}))
        session.referrer, session.landing_url, session.utm = _landing(properties, context)


def _events_by_id(ids: list[int], *, received: list[datetime | None]):
    """Stored events by id, with their received_at when every one is known: Postgres then plans
    the months they are in only (an id alone is probed in every monthly partition)."""
    events = Event.objects.filter(pk__in=ids)
    if received and all(at is not None for at in received):
        events = events.filter(received_at__in=sorted(set(received)))
    return events


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _landing(properties: Any, context: Any) -> tuple[str, str, dict[str, str]]:
    properties = properties if isinstance(properties, dict) else {}
    context = context if isinstance(context, dict) else {}
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    referrer = _text(properties.get("referrer")) or _text(page.get("referrer"))
    url = _text(properties.get("url")) or _text(page.get("url"))
    utm: dict[str, str] = {}
    campaign = context.get("campaign") if isinstance(context.get("campaign"), dict) else {}
    for key in UTM_KEYS:
        if value := _text(campaign.get(CAMPAIGN_KEYS[key])):
            utm[key] = value
    if not utm:  # libraries without context.campaign: the landing URL's query string
        query = _text(properties.get("search")) or (urlsplit(url).query if url else "")
        for key, values in parse_qs(query.lstrip("?")).items():
            if key in UTM_KEYS and values:
                utm[key] = values[0]
    return referrer, url, utm


# --- attribution

_ATTRIBUTION_LABELS = {
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "referrer": "Referrer",
    "landing_page": "Landing page",
    "landing_url": "Landing URL",
}


@dataclass(frozen=True)
class AttributionRow:
    key: str
    label: str
    value: str


def contact_attribution(*, contact: Contact) -> list[AttributionRow]:
    """The person's first-touch attribution for display: known keys first, in a fixed order,
    with readable labels; any other key the worker stored after them."""
    stored = contact.attribution if isinstance(contact.attribution, dict) else {}
    known = [key for key in _ATTRIBUTION_LABELS if key in stored]
    # When the touch happened is shown on its own (Contact.first_touch_at), not as a row.
    others = sorted(key for key in stored if key not in _ATTRIBUTION_LABELS and key != ATTRIBUTION_TOUCHED_AT)
    rows = []
    for key in known + others:
        value = stored[key]
        if value in (None, ""):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        rows.append(
            AttributionRow(key, _ATTRIBUTION_LABELS.get(key) or key.replace("_", " ").capitalize(), text)
        )
    return rows


# --- events, identities


@dataclass
class EventRow:
    contact_event: ContactEvent

    @property
    def event(self) -> Event:
        return self.contact_event.event

    @property
    def summary(self) -> str:
        ce = self.contact_event
        if ce.type in PAGE_TYPES:
            return ce.path or ce.name or "(no path)"
        return ce.name or ce.type

    @property
    def properties_json(self) -> str:
        return _json_shown(self.event.properties)

    @property
    def context_json(self) -> str:
        return _json_shown(self.event.context)

    @property
    def traits_json(self) -> str:
        return _json_shown(self.event.traits) if self.event.traits else ""


def _json_shown(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return (
        text if len(text) <= JSON_SHOWN_CHARS else text[:JSON_SHOWN_CHARS] + "\n… (cut; the API has it all)"
    )


def web_events(
    *, user: AbstractBaseUser, contact: Contact, cursor: str | None = None, size: int = 25, bots: bool = False
) -> KeysetPage:
    """The events resolved to the person (anonymous history included), newest first, bot-flagged
    ones only when `bots`; rows are EventRow. Keyset pages over the (contact, -timestamp) index."""
    ensure_can_read(user)
    events = ContactEvent.objects.filter(contact_id=contact.pk).select_related("event")
    if not bots:
        events = events.filter(is_bot=False)
    page = keyset_page(events, key=F("timestamp"), descending=True, cursor=cursor, size=size)
    page.rows = [EventRow(row) for row in page.rows]
    return page


def web_bot_event_count(*, user: AbstractBaseUser, contact: Contact) -> int:
    """How many of the person's events are flagged as bot traffic (what the panel hides, and what
    segments and hot-deal rules leave out). Served by the partial contact_event_bots index."""
    ensure_can_read(user)
    return ContactEvent.objects.filter(contact_id=contact.pk, is_bot=True).count()


def contact_event_list(*, user: AbstractBaseUser, contact: Contact):
    """The person's events for the API, newest first (ContactEvent rows with their event)."""
    ensure_can_read(user)
    return (
        ContactEvent.objects.filter(contact_id=contact.pk)
        .select_related("event")
        .order_by("-timestamp", "-event_id")
    )


def contact_identities(
    *, user: AbstractBaseUser, contact: Contact, limit: int | None = 200
) -> list[Identity]:
    """The person's identifiers, by kind then value."""
    ensure_can_read(user)
    identities = Identity.objects.filter(contact_id=contact.pk).order_by("kind", "value", "pk")
    return list(identities if limit is None else identities[:limit])


# --- the combined contact timeline

# Order of kinds among items at the same instant (newest first puts higher values first).
# "email" is mail's, through settings.TIMELINE_SOURCE_HOOKS: a hook's kind needs a rank here for
# its cursor to decode.
_KIND_RANK = {
    "session": 0,
    "event": 1,
    "stage_change": 2,
    "activity": 3,
    "task_created": 4,
    "task_done": 5,
    "email": 6,
}


@dataclass
class TimelineItem:
    kind: str  # "activity", "stage_change", "session", "event", "task_created", "task_done", "email"
    at: datetime
    key: int
    obj: Any

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        return (self.at, _KIND_RANK[self.kind], self.key)


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: str | None


def _encode_timeline_cursor(item: TimelineItem) -> str:
    raw = json.dumps([item.at.isoformat(), item.kind, item.key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_timeline_cursor(cursor: str | None) -> tuple[datetime, int, int] | None:
    if not cursor:
        return None
    try:
        at, kind, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(at)
        if kind not in _KIND_RANK or not isinstance(key, int) or when.tzinfo is None:
            return None
        return when, _KIND_RANK[kind], key
    except (ValueError, TypeError, binascii.Error):
        return None


def contact_timeline(
    *, user: AbstractBaseUser, contact: Contact, cursor: str | None = None, size: int = 20
) -> TimelinePage:
    """One page of the person's timeline, newest first: activities logged on them, tasks on them
    created and completed, stage changes of their deals, their web sessions (at the time each
    started), their other events (track, identify, ...) and what TIMELINE_SOURCE_HOOKS add
    (their email). Each source reads at most size+1 rows at or before the cursor, so a page costs
    the same at any depth of history; a page stops at the oldest row a full source returned, so
    pages walk every item once (more than `size` rows of one source at one instant is the
    scheme's limit)."""
    ensure_can_read(user)
    edge = _decode_timeline_cursor(cursor)
    until = edge[0] if edge else None
    per_source = size + 1
    items: list[TimelineItem] = []
    capped = False
    # A source that filled its read (size+1 rows) may hold more rows just below the last one it
    # returned. Nothing below that row is shown from any source on this page: the rows a source
    # already showed at the cursor's instant use up some of its read, and without the floor the
    # next cursor would step over its unread rows at the same instant.
    floors: list[tuple[datetime, int, int]] = []

    def add(new: list[TimelineItem], *, full: bool) -> None:
        nonlocal capped
        items.extend(new)
        if full:
            capped = True
            if new:
                floors.append(min(item.sort_key for item in new))

    activities = activity_selectors.activity_list(user=user, filters={"contact": contact.pk})
    if until is not None:
        activities = activities.filter(occurred_at__lte=until)
    rows = list(activities.select_related("author", "contact", "deal", "company")[:per_source])
    add([TimelineItem("activity", a.occurred_at, a.pk, a) for a in rows], full=len(rows) == per_source)

    # Up to size+1 of each kind (created, completed), so either alone may fill the page.
    task_events = activity_selectors.task_events(
        user=user, contact_id=contact.pk, until=until, limit=per_source
    )
    for kind in ("task_created", "task_done"):
        of_kind = [TimelineItem(e.kind, e.at, e.key, e) for e in task_events if e.kind == kind]
        add(of_kind, full=len(of_kind) == per_source)

    changes = pipeline_selectors.stage_changes_for_contact(
        user=user, contact_id=contact.pk, until=until, limit=per_source
    )
    add(
        [TimelineItem("stage_change", c.changed_at, c.pk, c) for c in changes],
        full=len(changes) == per_source,
    )

    others = ContactEvent.objects.filter(contact_id=contact.pk, is_bot=False).exclude(type__in=PAGE_TYPES)
    if until is not None:
        others = others.filter(timestamp__lte=until)
    events = list(others.order_by("-timestamp", "-event_id")[:per_source])
    if len(events) == per_source:  # the floor is the last row read, stored event or not
        capped = True
        floors.append((events[-1].timestamp, _KIND_RANK["event"], events[-1].event_id))
    # Their stored events by id and received_at (select_related's join by id probed every month).
    stored = _events_by_id([e.event_id for e in events], received=[e.received_at for e in events]).in_bulk()
    events = [e for e in events if e.event_id in stored]
    for e in events:
        e.event = stored[e.event_id]
    add([TimelineItem("event", e.timestamp, e.event_id, EventRow(e)) for e in events], full=False)

    # Sessions starting at the cursor's instant are included, then cut by the cursor like the rest.
    started_before = until + timedelta(microseconds=1) if until is not None else None
    sessions, more_sessions = web_sessions(
        user=user, contact=contact, started_before=started_before, limit=per_source
    )
    add([TimelineItem("session", s.started_at, s.key, s) for s in sessions], full=more_sessions)

    # settings.TIMELINE_SOURCE_HOOKS: sources higher apps add (mail: the email linked to the
    # contact), called with user=, contact_id=, until= and limit=; each returns at most `limit`
    # entries at or before `until`, newest first, with .kind (a _KIND_RANK key), .at, .key
    # (unique within the kind) and .template (the partial the feed includes). A full answer may
    # hide more, as for every source above. identity imports no higher app.
    for path in getattr(settings, "TIMELINE_SOURCE_HOOKS", []):
        entries = import_string(path)(user=user, contact_id=contact.pk, until=until, limit=per_source)
        add([TimelineItem(e.kind, e.at, e.key, e) for e in entries], full=len(entries) == per_source)

    if edge is not None:
        items = [item for item in items if item.sort_key < edge]
    if floors:
        floor = max(floors)
        items = [item for item in items if item.sort_key >= floor]
    items.sort(key=lambda item: item.sort_key, reverse=True)
    page = items[:size]
    has_more = len(items) > size or capped
    return TimelinePage(
        items=page, next_cursor=_encode_timeline_cursor(page[-1]) if page and has_more else None
    )


# --- behavioural signals on deal cards


@dataclass(frozen=True)
class Signal:
    kind: str  # "views" (a hot rule's pages viewed this week) or "last_seen"
    label: str
    title: str
    hot: bool = False  # the rule alerted the owner within its window


def ago(delta: timedelta) -> str:
    """A short relative time: "just now", "5m ago", "2h ago", "3d ago"."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def deal_signals(*, deal_ids: Collection[int], now: datetime | None = None) -> dict[int, list[Signal]]:
    """Behavioural signals for each deal, from its people's daily rollups: for every enabled hot
    rule, "viewed <rule name> Nx this week" (page views whose path contains the rule's text over
    the last 7 days), flagged hot when the rule alerted the owner within its window; and "last
    seen" of the most recently active person. Six queries whatever the number of deals; a deal
    with nothing to show maps to an empty list."""
    now = now or timezone.now()
    deal_ids = sorted(set(deal_ids))
    signals: dict[int, list[Signal]] = {deal_id: [] for deal_id in deal_ids}
    if not deal_ids:
        return signals
    people = pipeline_selectors.deal_contact_ids(deal_ids=deal_ids)
    contact_ids = {cid for ids in people.values() for cid in ids}
    if not contact_ids:
        return signals
    last_seen = dict(
        Contact.objects.filter(pk__in=contact_ids, last_seen__isnull=False).values_list("pk", "last_seen")
    )
    rules = list(HotRule.objects.filter(enabled=True).order_by("name", "pk"))
    # views[contact][rule] = page views this week
    views: dict[int, dict[int, int]] = {}
    if rules:
        # Rollup days are UTC dates (the stitching worker's), whatever TIME_ZONE shows.
        today = now.astimezone(UTC).date()
        matches_any = Q()
        for rule in rules:
            matches_any |= Q(key__icontains=rule.path_contains)
        rollups = DailyActivity.objects.filter(
            matches_any,
            contact_id__in=contact_ids,
            kind=ActivityKind.PAGE,
            day__gt=today - timedelta(days=SIGNAL_DAYS),
            day__lte=today,
        ).values_list("contact_id", "key", "count")
        for contact_id, key, count in rollups:
            for rule in rules:
                if rule.path_contains.lower() in key.lower():
                    per_rule = views.setdefault(contact_id, {})
                    per_rule[rule.pk] = per_rule.get(rule.pk, 0) + count
    hot = {
        (rule_id, deal_id)
        for rule_id, deal_id, at, hours in HotDealAlert.objects.filter(
            deal_id__in=deal_ids, rule__enabled=True
        ).values_list("rule_id", "deal_id", "notified_at", "rule__window_hours")
        if at > now - timedelta(hours=hours)
    }
    for deal_id in deal_ids:
        ids = people.get(deal_id, [])
        for rule in rules:
            counts = [views.get(cid, {}).get(rule.pk, 0) for cid in ids]
            total = sum(counts)
            if not total:
                continue
            viewers = sum(1 for c in counts if c)
            who = "Viewed" if viewers == 1 else f"{viewers} people viewed"
            signals[deal_id].append(
                Signal(
                    kind="views",
                    label=f"{who} {rule.name} {total}\N{MULTIPLICATION SIGN} this week",
                    title=f"Page views with “{rule.path_contains}” in the path, last {SIGNAL_DAYS} days",
                    hot=(rule.pk, deal_id) in hot,
                )
            )
        seen = [last_seen[cid] for cid in ids if cid in last_seen]
        if seen:
            latest = max(seen)
            signals[deal_id].append(
                Signal(
                    kind="last_seen",
                    label=f"Last seen {ago(now - latest)}",
                    title=f"Last activity on the site or app: {timezone.localtime(latest):%Y-%m-%d %H:%M}",
                )
            )
    # settings.DEAL_SIGNAL_HOOKS: signals higher apps add, called with deal_ids=[...] and now=,
    # each returning {deal id: [Signal]} (scoring: the primary contact's lead score and its
    # change this week). identity imports no higher app.
    for path in getattr(settings, "DEAL_SIGNAL_HOOKS", []):
        for deal_id, extra in import_string(path)(deal_ids=deal_ids, now=now).items():
            signals.setdefault(deal_id, []).extend(extra)
    return signals


# --- warnings and settings pages


def identity_warning_list(*, user: AbstractBaseUser, kind: str | None = None):
    """Identity warnings, newest first, with the contacts they name."""
    ensure_can_read(user)
    warnings = IdentityWarning.objects.select_related("contact", "other_contact").order_by(
        "-created_at", "-pk"
    )
    return warnings.filter(kind=kind) if kind else warnings


def blocked_value_list() -> list[BlockedValue]:
    return list(BlockedValue.objects.select_related("created_by").order_by("kind", "value", "pk"))


def hot_rule_list() -> list[HotRule]:
    return list(HotRule.objects.order_by("name", "pk"))


# --- merge log


def merge_list(*, user: AbstractBaseUser, contact_id: int | None = None) -> QuerySet[ContactMerge]:
    """The merge log, newest first; with `contact_id`, the merges that contact won or lost.
    Every CRM role reads it (splitting is Admin only)."""
    ensure_can_read(user)
    merges = ContactMerge.objects.select_related("winner", "loser", "actor", "split_by").order_by(
        "-created_at", "-pk"
    )
    if contact_id is not None:
        merges = merges.filter(Q(winner_id=contact_id) | Q(loser_id=contact_id))
    return merges


def merge_get(*, user: AbstractBaseUser, merge_id: int) -> ContactMerge:
    merge = merge_list(user=user).filter(pk=merge_id).first()
    if merge is None:
        raise NotFound(f"Merge {merge_id} does not exist.")
    return merge


# --- the home page: hot deals and hot leads


@dataclass(frozen=True)
class HotDeal:
    deal: Any
    rule: HotRule
    notified_at: datetime


def hot_deals_owned(*, user: AbstractBaseUser, now: datetime | None = None, limit: int = 10) -> list[HotDeal]:
    """The user's open deals a hot rule alerted them about within the rule's window (the same
    alerts that sent the "Hot deal" notification), most recent alert first; one row per deal.
    One query."""
    ensure_can_read(user)
    now = now or timezone.now()
    alerts = (
        HotDealAlert.objects.filter(
            deal__owner_id=user.pk,
            deal__status="open",
            rule__enabled=True,
            notified_at__lte=now,
            notified_at__gt=ExpressionWrapper(
                Value(now) - F("rule__window_hours") * Value(timedelta(hours=1)),
                output_field=DateTimeField(),
            ),
        )
        .select_related("rule", "deal__stage", "deal__contact", "deal__company")
        .order_by("-notified_at", "-pk")
    )
    hot: dict[int, HotDeal] = {}
    # A deal alerted by several rules has several rows: read a few more than shown.
    for alert in alerts[: limit * 4]:
        if alert.deal_id not in hot and len(hot) < limit:
            hot[alert.deal_id] = HotDeal(deal=alert.deal, rule=alert.rule, notified_at=alert.notified_at)
    return list(hot.values())


@dataclass(frozen=True)
class HotLead:
    contact: Contact
    rule: HotRule
    views: int


# People before the opportunity stage: once a deal is open they show up as a hot deal instead.
LEAD_STAGES = ("visitor", "subscriber", "lead")


def hot_leads_owned(*, user: AbstractBaseUser, now: datetime | None = None, limit: int = 10) -> list[HotLead]:
    """Contacts the user owns, not yet on a deal (lifecycle visitor, subscriber or lead), whose
    page views match an enabled hot rule now (at least its `min_views` within its window), the
    most views first. Three queries whatever the number of rules: one pass over the page views
    counts every rule at once."""
    ensure_can_read(user)
    now = now or timezone.now()
    rules = list(HotRule.objects.filter(enabled=True).order_by("name", "pk"))
    if not rules:
        return []
    matches_any = Q()
    counts = {}
    for rule in rules:
        matches_any |= Q(path__icontains=rule.path_contains)
        in_window = Q(
            path__icontains=rule.path_contains, timestamp__gt=now - timedelta(hours=rule.window_hours)
        )
        counts[f"rule_{rule.pk}"] = Count("pk", filter=in_window)
    longest = max(rule.window_hours for rule in rules)
    rows = (
        ContactEvent.objects.filter(
            matches_any,
            contact__owner_id=user.pk,
            contact__merged_into__isnull=True,
            contact__lifecycle_stage__in=LEAD_STAGES,
            type="page",
            is_bot=False,
            timestamp__gt=now - timedelta(hours=longest),
            timestamp__lte=now,
        )
        .values("contact_id")
        .annotate(**counts)
    )
    best: dict[int, tuple[HotRule, int]] = {}
    for row in rows:
        for rule in rules:
            views = row[f"rule_{rule.pk}"]
            if views >= rule.min_views and views > best.get(row["contact_id"], (None, 0))[1]:
                best[row["contact_id"]] = (rule, views)
    hottest = sorted(best, key=lambda cid: (-best[cid][1], cid))[:limit]
    contacts = Contact.objects.select_related("company").in_bulk(hottest)
    return [
        HotLead(contact=contacts[cid], rule=best[cid][0], views=best[cid][1])
        for cid in hottest
        if cid in contacts
    ]
