"""Server time of identity's CRM views: the contact page's web activity panel and timeline for a
person with a long history, and the deal signals a board asks for.

    .venv/bin/python bench/identity_views.py [--database NAME] [--reseed] [--requests 50]

Seeds a separate bench database: one heavy visitor with 60,000 events over two years (page views
in visits of 1-8 pages, track events, 300 logged activities, 20 deals with stage changes), 4,000
other contacts with a page view each, and 160 open deals whose people have a week of daily
rollups. Renders each view in-process with Django's test Client (full middleware, Sales session,
DEBUG off) and prints p50/p95/max. Targets: panel, timeline and signals p95 under 100 ms.
"""

import argparse
import os
import random
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.crm_lists import _users, measure, report, setup_django  # noqa: E402

HEAVY_EVENTS = 60_000
OTHER_CONTACTS = 4_000
BOARD_DEALS = 160


def seed(*, reseed: bool) -> dict:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts import services as accounts
    from contacts.models import Contact
    from events.models import Event, Source
    from identity.models import ContactEvent, DailyActivity
    from pipeline.models import Activity, Deal, Pipeline, Stage, StageChange

    call_command("migrate", verbosity=0)
    users = _users(accounts)
    heavy = Contact.objects.filter(email="heavy@bench.example").first()
    if heavy and not reseed and ContactEvent.objects.filter(contact=heavy).count() >= HEAVY_EVENTS:
        return {
            **users,
            "heavy": heavy,
            "deals": list(Deal.objects.filter(title__startswith="Board ")[:BOARD_DEALS]),
        }
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE identity_contactevent, identity_dailyactivity, events_event, events_source, "
            "pipeline_deal, pipeline_stagechange, pipeline_activity, pipeline_stage, pipeline_pipeline, "
            "contacts_contact RESTART IDENTITY CASCADE"
        )
    rng = random.Random(7)
    now = timezone.now()
    rep = users["reps"][0]
    source = Source.objects.create(name="Bench site")
    heavy = Contact.objects.create(
        first_name="Heavy", last_name="Visitor", email="heavy@bench.example", owner=rep
    )
    paths = ["/", "/pricing", "/docs", "/blog/post", "/features", "/pricing/enterprise", "/signup", "/about"]

    events, projections = [], []
    at = now - timedelta(days=730)
    n = 0
    while n < HEAVY_EVENTS:
        at += timedelta(hours=rng.uniform(2, 30))  # a new visit
        for _ in range(rng.randint(1, 8)):
            at += timedelta(seconds=rng.randint(5, 600))
            kind = "track" if rng.random() < 0.2 else "page"
            path = rng.choice(paths) if kind == "page" else ""
            name = "Clicked CTA" if kind == "track" else ""
            events.append(
                Event(
                    source=source,
                    message_id=f"bench-{n}",
                    type=kind,
                    event=name,
                    anonymous_id="anon-heavy",
                    properties={"path": path, "referrer": "https://search.example/"}
                    if path
                    else {"cta": "hero"},
                    context={"campaign": {"source": "ads", "medium": "cpc"}},
                    timestamp=at,
                    received_at=at,
                )
            )
            n += 1
    Event.objects.bulk_create(events, batch_size=5000)
    for e in events:
        path = e.properties.get("path", "")
        projections.append(
            ContactEvent(
                event=e,
                contact=heavy,
                type=e.type,
                name=e.event,
                path=path,
                timestamp=e.timestamp,
                received_at=e.received_at,
            )
        )
    ContactEvent.objects.bulk_create(projections, batch_size=5000)
    Activity.objects.bulk_create(
        [
            Activity(
                kind="note",
                body=f"Note {i}",
                contact=heavy,
                author=rep,
                occurred_at=now - timedelta(days=i * 2.4),
            )
            for i in range(300)
        ]
    )
    pipeline = Pipeline.objects.create(name="Bench identity")
    stages = [
        Stage.objects.create(pipeline=pipeline, name=f"S{i}", position=i, probability=10 * i)
        for i in range(5)
    ]
    for i in range(20):
        deal = Deal.objects.create(
            pipeline=pipeline, stage=stages[0], title=f"Heavy deal {i}", contact=heavy, owner=rep
        )
        StageChange.objects.bulk_create(
            [
                StageChange(deal=deal, from_stage=stages[j], to_stage=stages[j + 1], actor=rep)
                for j in range(4)
            ]
        )

    others = Contact.objects.bulk_create(
        [
            Contact(first_name=f"P{i}", email=f"p{i}@bench.example", last_seen=now - timedelta(hours=i % 300))
            for i in range(OTHER_CONTACTS)
        ]
    )
    today = timezone.localdate(now)
    DailyActivity.objects.bulk_create(
        [
            DailyActivity(
                contact=c, day=today - timedelta(days=d), kind="page", key=key, count=rng.randint(1, 4)
            )
            for c in others[: BOARD_DEALS * 2]
            for d in range(7)
            for key in ("/pricing", "/docs", "/blog/post")
        ]
    )
    deals = []
    for i in range(BOARD_DEALS):
        deal = Deal.objects.create(
            pipeline=pipeline, stage=stages[i % 5], title=f"Board {i}", contact=others[i], owner=rep
        )
        deal.participants.add(others[BOARD_DEALS + i])
        deals.append(deal)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded in {time.perf_counter() - started:.1f} s")
    return {**users, "heavy": heavy, "deals": deals}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="cdp_crm_identity_views_bench")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(args.database)
    seeded = seed(reseed=args.reseed)

    from django.test import Client

    from identity import selectors
    from identity.models import ContactEvent

    heavy, deals = seeded["heavy"], seeded["deals"]
    client = Client()
    client.force_login(seeded["reps"][0])
    n = args.requests
    htmx = {"HX-Request": "true"}
    load = os.getloadavg()
    total = ContactEvent.objects.filter(contact=heavy).count()
    print(f"\nheavy contact: {total:,} events; {n} requests per scenario")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores\n")

    # Deep cursors: walk the timeline and events 30 pages in once, then time that page.
    cursor = None
    for _ in range(30):
        cursor = selectors.contact_timeline(user=seeded["reps"][0], contact=heavy, cursor=cursor).next_cursor
    deep_timeline = cursor
    page = None
    for _ in range(30):
        page = selectors.web_events(
            user=seeded["reps"][0], contact=heavy, cursor=page.next_cursor if page else None
        )
    sessions, _ = selectors.web_sessions(user=seeded["reps"][0], contact=heavy, limit=300)
    deal_ids = ",".join(str(d.pk) for d in deals)
    base = f"/contacts/{heavy.pk}"
    results = [
        report(
            "web activity panel (10 sessions, 25 events)",
            measure(client, f"{base}/web-activity/", requests=n, headers=htmx),
        ),
        report(
            "older sessions, 300 visits back",
            measure(
                client,
                f"{base}/web-activity/sessions/?before={quote(sessions[-1].started_at.isoformat())}",
                requests=n,
                headers=htmx,
            ),
        ),
        report(
            "events page 31 (keyset)",
            measure(
                client, f"{base}/web-activity/events/?cursor={page.next_cursor}", requests=n, headers=htmx
            ),
        ),
        report(
            "timeline, first page (20 items)", measure(client, f"{base}/timeline/", requests=n, headers=htmx)
        ),
        report(
            "timeline, page 31",
            measure(client, f"{base}/timeline/?cursor={deep_timeline}", requests=n, headers=htmx),
        ),
        report(
            f"deal signals for {len(deals)} cards",
            measure(client, f"/deals/signals/?deals={deal_ids}", requests=n, headers=htmx),
        ),
        report(
            "API events, first page (50)", measure(client, f"/api/v1/contacts/{heavy.pk}/events/", requests=n)
        ),
    ]
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("\n| view | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
    for name, p50, p95, worst in results:
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")


if __name__ == "__main__":
    main()
