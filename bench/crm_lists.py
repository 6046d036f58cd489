"""Server time of the CRM list and detail pages at 100k contacts / 10k companies.

    .venv/bin/python bench/crm_lists.py [--database NAME] [--reseed] [--requests 100] [--explain]

Seeds a separate bench database with COPY (about 10 s), then renders each page in-process with
Django's test Client (full middleware stack, session login as a Sales rep, DEBUG off) and prints
p50/p95/max per scenario. The network and the browser are not part of the figure.
"""

import argparse
import io
import os
import random
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONTACTS = 100_000
COMPANIES = 10_000
REPS = 5

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Barbara",
    "Edsger",
    "Margaret",
    "Linus",
    "Hedy",
    "Tim",
    "Radia",
    "Ken",
    "Dennis",
    "Frances",
    "Katherine",
    "John",
    "Anita",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Hamilton",
    "Torvalds",
    "Lamarr",
    "Berners-Lee",
    "Perlman",
    "Thompson",
    "Ritchie",
    "Allen",
    "Johnson",
    "Backus",
    "Borg",
    "Garcia",
    "Novak",
    "Silva",
    "Costa",
    "Berg",
    "Haddad",
    "Kernighan",
    "Rossum",
    "McCarthy",
]
WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Oceanic",
    "Bluth",
    "Pied",
]
NOUNS = [
    "Labs",
    "Systems",
    "Foods",
    "Air",
    "Dynamics",
    "Traders",
    "Piper",
    "Corp",
    "Works",
    "Health",
    "Bank",
    "Media",
    "Logistics",
]
INDUSTRIES = ["Software", "Retail", "Finance", "Health", "Manufacturing", "Media", ""]
STAGES = ["visitor", "subscriber", "lead", "lead", "lead", "opportunity", "customer", "other"]
TAGS = ["vip", "newsletter", "webinar", "trial", "churn-risk", "partner"]
TITLES = ["CEO", "CTO", "VP Sales", "Engineer", "Buyer", "Procurement Lead", "Marketing Manager", ""]


def setup_django(database: str) -> None:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))
    # Production-like: DEBUG off (no query log, cached templates).
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")
    _create_database(parts, database)
    import django

    django.setup()


def _create_database(parts, database: str) -> None:
    import psycopg

    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')  # name from the command line, quoted


def seed(*, reseed: bool) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from accounts import services as accounts
    from contacts.models import Company, Contact

    call_command("migrate", verbosity=0)
    users = _users(accounts)
    if Contact.objects.count() >= CONTACTS and not reseed:
        return users
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE contacts_contact, contacts_company, contacts_fieldchange RESTART IDENTITY CASCADE"
        )
    rng = random.Random(42)
    now = datetime.now(UTC)
    rep_ids = [u.pk for u in users["reps"]]
    raw = connection.connection
    with raw.cursor() as cur:
        buf = io.StringIO()
        for i in range(1, COMPANIES + 1):
            name = f"{rng.choice(WORDS)} {rng.choice(NOUNS)} {i}"
            created = now - timedelta(minutes=rng.randrange(0, 730 * 24 * 60))
            owner = rng.choice(rep_ids + [None])
            buf.write(
                "\t".join(
                    [
                        name,
                        f"co{i}.example",
                        rng.choice(INDUSTRIES),
                        rng.choice(["1-10", "11-50", "51-200", ""]),
                        "{}",
                        created.isoformat(),
                        created.isoformat(),
                        str(owner) if owner else r"\N",
                    ]
                )
                + "\n"
            )
        buf.seek(0)
        with cur.copy(
            "COPY contacts_company (name, domain, industry, size, custom_fields, created_at, updated_at,"
            " owner_id) FROM STDIN"
        ) as copy:
            copy.write(buf.read())
        buf = io.StringIO()
        for i in range(1, CONTACTS + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = rng.randrange(1, COMPANIES + 1) if rng.random() < 0.8 else None
            domain = f"co{company}.example" if company else "mail.example"
            created = now - timedelta(minutes=rng.randrange(0, 730 * 24 * 60))
            seen = created + timedelta(minutes=rng.randrange(0, 90 * 24 * 60))
            owner = rng.choice(rep_ids) if rng.random() < 0.8 else None
            tags = rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2]))
            identified = rng.random() < 0.95
            email = f"{first}.{last}{i}@{domain}".lower() if identified else None
            buf.write(
                "\t".join(
                    [
                        first if identified else "",
                        last if identified else "",
                        email or r"\N",
                        f"+1 555 {i:07d}" if identified else "",
                        rng.choice(TITLES),
                        rng.choice(STAGES),
                        "{" + ",".join(tags) + "}",
                        "{}",
                        "{}",
                        "{}",
                        created.isoformat(),
                        seen.isoformat(),
                        "t" if identified else "f",
                        created.isoformat(),
                        created.isoformat(),
                        str(company) if company else r"\N",
                        str(owner) if owner else r"\N",
                    ]
                )
                + "\n"
            )
        buf.seek(0)
        with cur.copy(
            "COPY contacts_contact (first_name, last_name, email, phone, title, lifecycle_stage, tags,"
            " custom_fields, traits, attribution, first_seen, last_seen, is_identified, created_at,"
            " updated_at, company_id, owner_id) FROM STDIN"
        ) as copy:
            copy.write(buf.read())
    raw.commit() if not raw.autocommit else None
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")
        cursor.execute("VACUUM ANALYZE contacts_company")
    print(
        f"seeded {Company.objects.count():,} companies and {Contact.objects.count():,} contacts "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return users


def _users(accounts) -> dict:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    reps = []
    for n in range(1, REPS + 1):
        user = user_model.objects.filter(username=f"bench-rep{n}").first()
        reps.append(
            user or accounts.user_create(username=f"bench-rep{n}", password="bench-pass-123!", role="Sales")
        )
    return {"reps": reps}


def measure(client, url: str, *, requests: int, headers: dict | None = None) -> list[float]:
    for _ in range(5):  # warm caches (templates, connection, Postgres buffers)
        _get(client, url, headers)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        _get(client, url, headers)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _get(client, url: str, headers: dict | None):
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200, (url, response.status_code)
    return response


def measure_many(client, urls: list[str], *, headers: dict | None = None) -> list[float]:
    for url in urls[:5]:
        _get(client, url, headers)
    times = []
    for url in urls:
        started = time.perf_counter()
        _get(client, url, headers)
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: list[float]) -> tuple:
    times = sorted(times)
    p50 = statistics.median(times)
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(f"{name:<46} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {times[-1]:6.1f} ms   n={len(times)}")
    return name, p50, p95, times[-1]


def explain(sql_label: str, queryset) -> None:
    print(f"\n--- EXPLAIN ANALYZE: {sql_label}")
    print(queryset.explain(analyze=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="cdp_crm_lists_bench")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    # DEBUG is off and no collectstatic ran: WhiteNoise's note about STATIC_ROOT is noise here.
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(args.database)
    users = seed(reseed=args.reseed)

    from django.test import Client

    from contacts import selectors
    from contacts.models import Contact

    rep = users["reps"][0]
    client = Client()
    client.force_login(rep)
    rng = random.Random(7)
    n = args.requests
    ids = list(
        Contact.objects.filter(is_identified=True).values_list("pk", flat=True)[:: max(1, CONTACTS // 2000)]
    )
    terms = [
        "lovelace",
        "hopper",
        "garcia",
        "ada.turing",
        "555 00012",
        "co123.example",
        "wonka",
        "grace h",
        "mccarthy4",
        "ab",
    ]
    searches = [f"/contacts/?q={rng.choice(terms)}" for _ in range(n)]
    details = [f"/contacts/{rng.choice(ids)}/" for _ in range(n)]
    deep = selectors.contact_page(user=rep, filters={}, sort="-created", cursor=None, size=50)
    for _ in range(200):  # follow the cursor 200 pages deep: rows 10,000-10,050
        deep = selectors.contact_page(user=rep, filters={}, sort="-created", cursor=deep.next_cursor, size=50)
    htmx = {"HX-Request": "true", "HX-Target": "contact-table"}

    load = os.getloadavg()
    print(f"\n{Contact.objects.count():,} contacts; {n} requests per scenario; Sales rep session")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores\n")
    results = [
        report("contact list (default, full page)", measure(client, "/contacts/", requests=n)),
        report("contact list (htmx table partial)", measure(client, "/contacts/", requests=n, headers=htmx)),
        report("contact search ?q= (10 terms, htmx)", measure_many(client, searches, headers=htmx)),
        report(
            "filtered: owner=me, stage=lead, tag=vip",
            measure(client, "/contacts/?owner=me&lifecycle_stage=lead&tag=vip", requests=n),
        ),
        report("sorted by company name", measure(client, "/contacts/?sort=company", requests=n)),
        report(
            "page 201 (rows 10,001+) by cursor",
            measure(client, f"/contacts/?cursor={deep.next_cursor}", requests=n),
        ),
        report("contact detail page (random contacts)", measure_many(client, details)),
        report("company list", measure(client, "/companies/", requests=n)),
        report(
            "global search ?q=hopper",
            measure(client, "/search/?q=hopper", requests=n, headers={"HX-Request": "true"}),
        ),
    ]
    load = os.getloadavg()
    print(f"\nload average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.explain:
        explain("search 'lovelace'", selectors.contact_list(user=rep, filters={"q": "lovelace"})[:51])
        explain("default list", selectors.contact_list(user=rep, filters={})[:51])
    print("\n| page | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
    for name, p50, p95, worst in results:
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")


if __name__ == "__main__":
    main()
