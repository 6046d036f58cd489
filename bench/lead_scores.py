"""Lead-score figures at 100k contacts and 2M events over 90 days.

    cdp_crm.dev exec --database cdp_crm_scores_bench --redis-db N -- \
        .venv/bin/python bench/lead_scores.py [--reseed] [--runs 3] [--seconds 40] [--rate 500]

Seeds the database named by DATABASE_URL: contacts by generate_series, the 2M events by COPY
(rows made here, streamed with psycopg's COPY), then their projection and daily rollups as the
stitching worker would have written them (INSERT ... SELECT). Then prints, each with a floor
measured in the same run and the ratio to it:

- full recompute of a 7-rule model (fit on traits and email, engagement on page rollups with
  decay and a time frame, a track event with a property condition read from the event log):
  the first run (every score written) and steady runs (nothing changed); floor: one bare
  aggregate over all the rollups;
- the contact list sorted by the model's score (Django test client, DEBUG off), p50/p95; floor:
  the same list in its default order;
- event -> updated score through a real Celery worker while events are stored at `--rate`
  events/s (1 probe per tick: a new visitor's /pricing view); floor: event -> the visitor's
  identity stitched (the same probes, the same poll).
"""

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench._common import setup_django, stop  # noqa: E402

CONTACTS = 100_000
EVENTS = 2_000_000
DAYS = 90
PATHS = ["/", "/docs", "/blog/segments", "/features", "/pricing", "/pricing/teams", "/signup", "/docs/api"]
TRACKS = ["Signed Up", "Product Viewed", "Product Viewed", "Login", "Order Completed"]

FIT = [
    {"label": "Paid plan", "field": "trait.plan", "op": "in", "value": ["pro", "business"], "points": 15},
    {"label": "Big team", "field": "trait.seats", "op": "gte", "value": 20, "points": 10},
    {"label": "Free mail", "field": "email", "op": "ends_with", "value": "co7.example", "points": -5},
]
ENGAGEMENT = [
    {
        "label": "Pricing",
        "kind": "page",
        "match": "starts_with",
        "path": "/pricing",
        "points": 5,
        "max_points": 40,
        "half_life_days": 30,
    },
    {
        "label": "Docs",
        "kind": "page",
        "match": "contains",
        "path": "docs",
        "points": 1,
        "within_days": 30,
        "max_points": 20,
    },
    {"label": "Signed up", "kind": "event", "event": "Signed Up", "points": 20, "max_points": 20},
    {
        "label": "Pricey products",
        "kind": "event",
        "event": "Product Viewed",
        "points": 2,
        "half_life_days": 14,
        "where": [{"property": "price", "op": "gt", "value": 50}],
        "max_points": 30,
    },
]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _event_rows(source_id: int, now: dt.datetime):
    rng = random.Random(42)
    for n in range(EVENTS):
        contact = 1 + int(CONTACTS * rng.random() ** 2)  # a minority of busy people
        ts = (now - dt.timedelta(seconds=rng.random() * DAYS * 86400)).isoformat()
        if rng.random() < 0.75:
            kind, name, props = "page", "", f'{{"path": "{PATHS[rng.randrange(len(PATHS))]}"}}'
        else:
            kind, name = "track", TRACKS[rng.randrange(len(TRACKS))]
            props = f'{{"price": {rng.randrange(100)}}}'
        bot = "t" if rng.random() < 0.02 else "f"
        yield (source_id, f"bench-{n}", kind, name, f"c{contact}", "", "", "", props, "{}", "{}", ts, ts, bot)


def seed(*, reseed: bool) -> None:
    from django.core.management import call_command
    from django.db import connection

    from contacts.models import Contact

    call_command("migrate", verbosity=0)
    if Contact.objects.count() >= CONTACTS and not reseed:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE contacts_contact, contacts_company, events_source, events_event, "
            "identity_contactevent, identity_dailyactivity, scoring_scoremodel, identity_profileupdate "
            "RESTART IDENTITY CASCADE"
        )
        cursor.execute(
            f"""
            INSERT INTO contacts_contact (first_name, last_name, email, phone, title, lifecycle_stage, tags,
                custom_fields, traits, first_seen, last_seen, attribution, is_identified, created_at,
                updated_at, consent)
            SELECT 'First' || g, 'Last' || g,
                CASE WHEN g % 20 <> 0 THEN 'person' || g || '@co' || (g % 10) || '.example' END,
                '', '', 'lead',
                ARRAY[]::varchar[], '{{}}'::jsonb,
                jsonb_build_object('plan', (ARRAY['free', 'free', 'pro', 'business', 'trial'])[1 + g % 5],
                                   'seats', g % 40),
                now() - interval '200 days', now() - (g % 90) * interval '1 day', '{{}}'::jsonb, g % 20 <> 0,
                now() - interval '200 days' + g * interval '1 second', now(), '{{}}'::jsonb
            FROM generate_series(1, {CONTACTS}) g
            """
        )
        cursor.execute(
            "INSERT INTO events_source (name, kind, write_key, enabled, allowed_origins, created_at, "
            "require_consent, honor_gpc) VALUES ('Bench', 'web', 'bench-write-key', true, '{}', now(), "
            "false, false) RETURNING id"
        )
        source_id = cursor.fetchone()[0]
    now = dt.datetime.now(dt.UTC)
    copy_started = time.perf_counter()
    raw = connection.connection  # psycopg's connection under Django's
    statement = (
        "COPY events_event (source_id, message_id, type, event, anonymous_id, user_id, group_id, "
        "previous_id, properties, traits, context, timestamp, received_at, is_bot) FROM STDIN"
    )
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for row in _event_rows(source_id, now):
            copy.write_row(row)
    raw.commit()
    copy_seconds = time.perf_counter() - copy_started
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_contactevent
                (event_id, contact_id, type, name, path, timestamp, is_bot, received_at)
            SELECT e.id, substr(e.anonymous_id, 2)::bigint, e.type, e.event,
                COALESCE(e.properties->>'path', ''), e.timestamp, e.is_bot, e.received_at
            FROM events_event e
            """
        )
        cursor.execute(
            """
            INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
            SELECT contact_id, (timestamp AT TIME ZONE 'UTC')::date,
                CASE type WHEN 'track' THEN 'event' ELSE type END,
                CASE type WHEN 'track' THEN name ELSE path END, count(*)
            FROM identity_contactevent WHERE NOT is_bot GROUP BY 1, 2, 3, 4
            """
        )
        cursor.execute("ANALYZE")
    print(
        f"seeded in {time.perf_counter() - started:.0f} s ({EVENTS:,} events by COPY in "
        f"{copy_seconds:.0f} s, {EVENTS / copy_seconds:,.0f} rows/s)"
    )


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_recompute(runs: int):
    from django.db import connection

    from identity.models import ProfileUpdate
    from scoring import services
    from scoring.models import Score, ScoreModel

    ScoreModel.objects.filter(name="Bench").delete()
    # Straight to the table: the service would queue a recompute for a worker that is not there.
    model = ScoreModel.objects.create(name="Bench", fit_rules=FIT, engagement_rules=ENGAGEMENT, total_cap=100)

    def floor():
        with connection.cursor() as cursor:
            cursor.execute("SELECT contact_id, sum(count) FROM identity_dailyactivity GROUP BY contact_id")
            cursor.fetchall()

    floors = [_timed(floor) for _ in range(runs)]
    first = _timed(lambda: services.score_model_recompute(model_id=model.pk))
    steady = [_timed(lambda: services.score_model_recompute(model_id=model.pk)) for _ in range(runs)]
    # The recompute marked the scored contacts for segment re-evaluation (there are no segments
    # here); the backlog would only delay the realtime figures below.
    ProfileUpdate.objects.all().delete()
    f = statistics.median(floors)
    scored = Score.objects.filter(model=model).count()
    print(
        f"full recompute (7 rules)   scored {scored:>6,}   first {ms(first):>9} ({first / f:4.1f}x floor)   "
        f"steady median {ms(statistics.median(steady)):>9} ({statistics.median(steady) / f:4.1f}x)   "
        f"floor (one aggregate over the rollups) {ms(f)}"
    )
    return model


def bench_list(model, runs: int) -> None:
    from django.test import Client

    from accounts import services as accounts
    from accounts.models import Role
    from contacts.models import ListColumns

    user = accounts.user_create(username=f"bench-admin-{time.time_ns()}", password=None, role=Role.ADMIN)
    key = f"score_{model.pk}"
    ListColumns.objects.create(user=user, entity="contact", columns=["name", "email", "lifecycle_stage", key])
    client = Client()
    client.force_login(user)

    def get(url: str) -> float:
        started = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return time.perf_counter() - started

    get("/contacts/")
    get(f"/contacts/?sort=-{key}")
    floor = [get("/contacts/") for _ in range(runs)]
    by_score = [get(f"/contacts/?sort=-{key}") for _ in range(runs)]
    ascending = [get(f"/contacts/?sort={key}") for _ in range(runs)]
    f95 = pct(floor, 0.95)
    print(
        f"contact list by score      p50 {ms(pct(by_score, 0.5)):>7}  p95 {ms(pct(by_score, 0.95)):>7} "
        f"({pct(by_score, 0.95) / f95:4.2f}x floor)   ascending p95 {ms(pct(ascending, 0.95))}   "
        f"floor (default order) p50 {ms(pct(floor, 0.5))} p95 {ms(f95)}"
    )


def bench_realtime(model, *, seconds: int, rate: int) -> None:
    from django.db import connection, connections

    from cdp_crm.celery import app
    from events import services as event_services
    from events.ingest.parse import normalise
    from events.models import Source

    source = Source.objects.get(write_key="bench-write-key")
    # One worker per kind of work, as in production (queues split by work): a stitching worker
    # polling the ingest queue would otherwise hold the process the realtime drain needs.
    workers = [_worker("ingest,identity", "stitch"), _worker("segments,default", "realtime")]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5)) < len(workers):
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "no worker"
        sent: dict[str, float] = {}
        stitched: dict[str, float] = {}
        scored: dict[str, float] = {}
        done = threading.Event()

        def poll() -> None:
            try:
                while not done.is_set() or len(scored) < len(sent):
                    pending = [p for p in list(sent) if p not in scored]
                    if pending:
                        with connections["default"].cursor() as cursor:
                            cursor.execute(
                                """
                                SELECT i.value, s.contact_id IS NOT NULL FROM identity_identity i
                                LEFT JOIN scoring_score s ON s.contact_id = i.contact_id AND s.model_id = %s
                                WHERE i.kind = 'anonymous_id' AND i.value = ANY(%s)
                                """,
                                [model.pk, pending],
                            )
                            now = time.perf_counter()
                            for value, has_score in cursor.fetchall():
                                stitched.setdefault(value, now)
                                if has_score:
                                    scored[value] = now
                    if done.is_set() and time.perf_counter() - last_sent[0] > 60:
                        return
                    time.sleep(0.01)
            finally:
                connections["default"].close()

        last_sent = [time.perf_counter()]
        poller = threading.Thread(target=poll, daemon=True)
        tick = 0.1
        per_tick = max(1, round(rate * tick))
        rng = random.Random(7)
        started = time.perf_counter()
        poller.start()
        while time.perf_counter() - started < seconds:
            tick_start = time.perf_counter()
            received = dt.datetime.now(dt.UTC)
            probe = f"probe-{uuid.uuid4().hex[:12]}"
            messages = [{"type": "page", "anonymousId": probe, "properties": {"path": "/pricing"}}]
            for _ in range(per_tick - 1):
                anon = f"bg-{rng.randrange(5000)}"
                if rng.random() < 0.7:
                    messages.append(
                        {"type": "page", "anonymousId": anon, "properties": {"path": rng.choice(PATHS)}}
                    )
                else:
                    messages.append(
                        {
                            "type": "track",
                            "anonymousId": anon,
                            "event": "Product Viewed",
                            "properties": {"price": rng.randrange(100)},
                        }
                    )
            normalised = [
                normalise(
                    {"messageId": uuid.uuid4().hex, "timestamp": received.isoformat(), **m},
                    received_at=received,
                )
                for m in messages
            ]
            event_services.events_store(
                source=source, messages=normalised, rejections=[], received_at=received
            )
            sent[probe] = time.perf_counter()
            last_sent[0] = sent[probe]
            time.sleep(max(0.0, tick - (time.perf_counter() - tick_start)))
        elapsed = time.perf_counter() - started
        done.set()
        poller.join(timeout=120)
        connection.close()
        score_lat = [scored[p] - sent[p] for p in sent if p in scored]
        stitch_lat = [stitched[p] - sent[p] for p in sent if p in stitched]
        missing = len(sent) - len(score_lat)
        s95, f95 = pct(score_lat, 0.95), pct(stitch_lat, 0.95)
        print(
            f"event -> score (worker)    {len(sent) * per_tick / elapsed:,.0f} events/s for {elapsed:.0f} s, "
            f"{len(sent)} probes   p50 {ms(pct(score_lat, 0.5))}  p95 {ms(s95)}  max {ms(max(score_lat))}"
            f"   floor (event -> stitched) p50 {ms(pct(stitch_lat, 0.5))} p95 {ms(f95)}   "
            f"ratio p95 {s95 / f95:4.2f}x" + (f"   NOT SCORED: {missing}" if missing else "")
        )
    finally:
        for worker in workers:
            stop(worker)


def _worker(queues: str, name: str):
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cdp_crm", "worker", "-Q", queues, "--concurrency=1"]
        + [
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            "-n",
            f"bench-{name}-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--list-runs", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--realtime-only", action="store_true", help="reuse the scored Bench model")
    args = parser.parse_args()
    setup_django()
    seed(reseed=args.reseed)
    if args.realtime_only:
        from scoring.models import ScoreModel

        model = ScoreModel.objects.get(name="Bench")
    else:
        model = bench_recompute(args.runs)
        bench_list(model, args.list_runs)
    bench_realtime(model, seconds=args.seconds, rate=args.rate)


if __name__ == "__main__":
    main()
