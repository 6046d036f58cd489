"""Server time of the deal board with 5,000 open deals across 8 stages.

    .venv/bin/python bench/board.py [--database NAME] [--reseed] [--requests 100]

Seeds a separate bench database (5,000 open deals plus 1,000 closed ones, 2,000 contacts, 500
companies, 5 reps; a few seconds), then renders the board and a column page in-process with
Django's test Client (full middleware stack, session login as a Sales rep, DEBUG off) and prints
p50/p95/max per scenario. The network and the browser are not part of the figure. Target: p95
under 200 ms.
"""

import argparse
import os
import random
import sys
import time
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.crm_lists import _users, measure, report, setup_django  # noqa: E402

OPEN_DEALS = 5_000
CLOSED_DEALS = 1_000
# (name, win probability %, rotting days)
STAGES = [("Lead in", 5, 14), ("Qualified", 10, 14), ("Discovery", 20, 10), ("Demo", 35, 10),
          ("Proposal", 50, 7), ("Negotiation", 70, 7), ("Contract sent", 85, 5),
          ("Verbal yes", 95, 3)]  # fmt: skip


def seed(*, reseed: bool) -> dict:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts import services as accounts
    from contacts.models import Company, Contact
    from pipeline.models import Deal, DealStatus, Pipeline, Stage

    call_command("migrate", verbosity=0)
    users = _users(accounts)
    pipeline = Pipeline.objects.filter(name="Bench").first()
    if (
        pipeline
        and Deal.objects.filter(pipeline=pipeline, status="open").count() >= OPEN_DEALS
        and not reseed
    ):
        return {**users, "pipeline": pipeline}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE pipeline_deal, pipeline_stagechange, pipeline_stage, pipeline_pipeline, "
            "contacts_contact, contacts_company RESTART IDENTITY CASCADE"
        )
    rng = random.Random(42)
    now = timezone.now()
    pipeline = Pipeline.objects.create(name="Bench")
    stages = [
        Stage.objects.create(pipeline=pipeline, name=n, probability=p, rotting_days=r, position=i)
        for i, (n, p, r) in enumerate(STAGES)
    ]
    companies = Company.objects.bulk_create(
        Company(name=f"Company {i}", domain=f"co{i}.example") for i in range(500)
    )
    contacts = Contact.objects.bulk_create(
        Contact(first_name=f"First{i}", last_name=f"Last{i}", email=f"p{i}@co{i % 500}.example",
                company=companies[i % 500])
        for i in range(2_000)
    )  # fmt: skip
    reps = users["reps"]
    deals = []
    for i in range(OPEN_DEALS + CLOSED_DEALS):
        created = now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        nxt = rng.choice(
            [
                None,
                now - timedelta(days=rng.randrange(1, 30)),
                now,
                now + timedelta(days=rng.randrange(1, 60)),
            ]
        )
        closed = i >= OPEN_DEALS
        contact = rng.choice(contacts)
        deals.append(
            Deal(
                title=f"Deal {i}",
                amount=Decimal(rng.randrange(100, 100_000)),
                pipeline=pipeline,
                stage=rng.choice(stages),
                contact=contact,
                company=contact.company,
                owner=rng.choice(reps + [None]),
                expected_close_date=(now + timedelta(days=rng.randrange(-30, 180))).date(),
                status=rng.choice([DealStatus.WON, DealStatus.LOST]) if closed else DealStatus.OPEN,
                lost_reason="Price" if closed else "",
                position=-created.timestamp(),
                stage_entered_at=created,
                last_activity_at=created + timedelta(days=rng.randrange(0, 30)),
                next_activity_at=nxt,
            )
        )
    Deal.objects.bulk_create(deals, batch_size=2_000)
    with connection.cursor() as cursor:
        # created_at is auto_now_add: spread it after the insert so "newest first" means something.
        cursor.execute("UPDATE pipeline_deal SET created_at = stage_entered_at")
        cursor.execute("VACUUM ANALYZE pipeline_deal")
    elapsed = time.perf_counter() - started
    print(f"seeded {OPEN_DEALS:,} open and {CLOSED_DEALS:,} closed deals in {elapsed:.1f} s")
    return {**users, "pipeline": pipeline}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="cdp_crm_board_bench")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(args.database)
    seeded = seed(reseed=args.reseed)

    from django.test import Client

    from pipeline.models import Deal

    pipeline = seeded["pipeline"]
    rep = seeded["reps"][0]
    client = Client()
    client.force_login(rep)
    stage = pipeline.stages.all()[3]
    in_stage = Deal.objects.filter(stage=stage, status="open").count()
    n = args.requests
    htmx = {"HX-Request": "true"}
    load = os.getloadavg()
    print(f"\n{Deal.objects.filter(status='open').count():,} open deals in {pipeline.stages.count()} stages;"
          f" {n} requests per scenario; Sales rep session")  # fmt: skip
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores\n")
    base = f"/pipeline/?pipeline={pipeline.pk}"
    results = [
        report("board, everyone's deals (5,000)", measure(client, base + "&owner=all", requests=n)),
        report("board, mine (default for Sales)", measure(client, base, requests=n)),
        report(
            "board, filtered: amount 10k-50k, close range",
            measure(
                client,
                base
                + "&owner=all&amount_min=10000&amount_max=50000&close_from=2020-01-01&close_to=2099-01-01",
                requests=n,
            ),
        ),
        report(
            f"column page 2 (cards 21-40 of {in_stage})",
            measure(
                client, f"/pipeline/stages/{stage.pk}/cards/?owner=all&offset=20", requests=n, headers=htmx
            ),
        ),
        report(
            "column page deep (offset 500)",
            measure(
                client, f"/pipeline/stages/{stage.pk}/cards/?owner=all&offset=500", requests=n, headers=htmx
            ),
        ),
    ]
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("\n| page | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
    for name, p50, p95, worst in results:
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")


if __name__ == "__main__":
    main()
