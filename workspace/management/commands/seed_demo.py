"""Realistic, deterministic demo data. Running it again adds nothing that is already there.

The CRM side (people, companies, deals with their activities and next steps) is written with the
ORM, its dates in a possible order (on record <= opened <= stage entered <= closed <= now). The
CDP side is three weeks of web traffic sent through the tracking API and stitched in this process
(workspace/management/demo_traffic.py), then the demo's segments are computed and the owners of hot
deals notified: the demo is complete when the command returns, before any worker runs."""

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Role
from contacts.models import Company, Contact, LifecycleStage
from events.models import Source, SourceKind
from identity.models import ContactEvent, HotRule
from identity.services import hot
from pipeline.models import Activity, ActivityKind, Deal, DealStatus, LostReason, Pipeline, Stage, Task
from pipeline.services.activities import deal_activity_dates_refresh
from segments import services as segment_services
from segments.models import Segment
from workspace.management.demo_traffic import web_traffic_seed

FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Katherine",
    "John",
    "Hedy",
    "Donald",
    "Sophie",
    "Yukihiro",
    "Guido",
    "Anita",
    "Brian",
    "Lynn",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Vint",
    "Mary",
    "Bjarne",
    "Jean",
    "Tony",
    "Carol",
    "Andrew",
    "Priya",
    "Mateo",
    "Chiara",
    "Kwame",
    "Ingrid",
    "Hiro",
    "Amara",
    "Lucas",
    "Elena",
    "Omar",
    "Zoe",
    "Felix",
    "Nadia",
    "Ravi",
    "Leila",
    "Tomas",
]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "McCarthy",
    "Lamarr",
    "Knuth",
    "Wilson",
    "Matsumoto",
    "Rossum",
    "Borg",
    "Kernighan",
    "Conway",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Cerf",
    "Jackson",
    "Stroustrup",
    "Bartik",
    "Hoare",
    "Shaw",
    "Tanenbaum",
    "Patel",
    "Rossi",
    "Mensah",
    "Berg",
    "Tanaka",
    "Okafor",
    "Silva",
    "Petrova",
    "Haddad",
    "Novak",
    "Fischer",
    "Haddad",
    "Kumar",
    "Farah",
    "Costa",
]
COMPANIES = [
    ("Acme Corporation", "acme.com", "Manufacturing", "1000+"),
    ("Globex", "globex.io", "Energy", "201-1000"),
    ("Initech", "initech.com", "Software", "51-200"),
    ("Umbrella Health", "umbrella-health.com", "Healthcare", "1000+"),
    ("Stark Industries", "stark.co", "Aerospace", "1000+"),
    ("Wayne Enterprises", "wayne.example", "Conglomerate", "1000+"),
    ("Hooli", "hooli.xyz", "Software", "1000+"),
    ("Pied Piper", "piedpiper.com", "Software", "11-50"),
    ("Vandelay Industries", "vandelay.com", "Import/Export", "11-50"),
    ("Soylent Foods", "soylent.example", "Food", "201-1000"),
    ("Tyrell Systems", "tyrell.ai", "Robotics", "201-1000"),
    ("Cyberdyne", "cyberdyne.tech", "Robotics", "51-200"),
    ("Wonka Confections", "wonka.example", "Food", "51-200"),
    ("Oceanic Air", "oceanic-air.com", "Travel", "1000+"),
    ("Dunder Mifflin", "dundermifflin.com", "Paper", "201-1000"),
    ("Prestige Worldwide", "prestige.example", "Media", "1-10"),
    ("Nakatomi Trading", "nakatomi.jp", "Finance", "1000+"),
    ("Massive Dynamic", "massivedynamic.com", "Research", "1000+"),
    ("Bluth Company", "bluth.example", "Real estate", "51-200"),
    ("Gringotts Bank", "gringotts.example", "Finance", "201-1000"),
    ("Monarch Solutions", "monarch.dev", "Software", "11-50"),
    ("Aperture Labs", "aperture.science", "Research", "201-1000"),
    ("Black Mesa", "blackmesa.org", "Research", "1000+"),
    ("Octan Energy", "octan.example", "Energy", "1000+"),
    ("Northwind Traders", "northwind.example", "Retail", "51-200"),
]
TITLES = (
    "CEO",
    "CTO",
    "VP Sales",
    "Head of Marketing",
    "Engineering Manager",
    "Product Manager",
    "Procurement Lead",
    "Operations Director",
    "Data Analyst",
    "Founder",
)
TAGS = ("vip", "newsletter", "webinar-2026", "trial", "partner", "event-lead", "churn-risk")
LIFECYCLE_WEIGHTS = {
    LifecycleStage.SUBSCRIBER: 15,
    LifecycleStage.LEAD: 45,
    LifecycleStage.OPPORTUNITY: 20,
    LifecycleStage.CUSTOMER: 15,
    LifecycleStage.OTHER: 5,
}
# "Sales pipeline" is also the default pipeline a fresh database gets: reused when it is there.
SALES_PIPELINE = "Sales pipeline"
PIPELINES = {
    SALES_PIPELINE: [
        ("Qualified", 10, 14),
        ("Contact made", 20, 14),
        ("Demo scheduled", 40, 10),
        ("Proposal made", 60, 10),
        ("Negotiation", 80, 7),
    ],
    "Renewals": [("Upcoming", 50, 30), ("In discussion", 70, 14), ("Committed", 90, 7)],
}
# The default lost reasons' names (reused when they exist).
LOST_REASONS = ("Price", "Competitor", "No budget", "No decision", "Timing", "Other")
DEAL_PRODUCTS = ("Platform licence", "Onboarding package", "Enterprise plan", "Pilot", "Expansion", "Support")
DEMO_USERS = [
    ("alex", "Alex", "Morgan", Role.SALES),
    ("sam", "Sam", "Lee", Role.SALES),
    ("jordan", "Jordan", "Kim", Role.MARKETING),
]
DEMO_EMAIL_DOMAIN = "cdp-crm.example"
ACTIVITIES = [
    (ActivityKind.CALL, "Discovery call", "Walked through their current stack and who signs off."),
    (ActivityKind.EMAIL, "Pricing overview", "Sent the Growth and Enterprise tiers; they asked about SSO."),
    (ActivityKind.MEETING, "Product demo", "Showed segments and the pipeline board to their team."),
    (ActivityKind.NOTE, "Champion found", "Their ops lead is pushing for this internally; budget in Q1."),
    (ActivityKind.CALL, "Security questions", "Answered the questionnaire; sending the DPA next."),
    (ActivityKind.EMAIL, "Proposal sent", "12-month term with the onboarding package."),
]
# Besides the default "pricing" rule (a migration adds it; made again here if it was deleted).
HOT_RULES = [
    {"name": "pricing", "path_contains": "/pricing", "min_views": 2, "window_hours": 24},
    {"name": "demo booking", "path_contains": "/book-demo", "min_views": 1, "window_hours": 72},
]
SEGMENTS = [
    (
        "Viewed pricing this week",
        "People who looked at /pricing in the last 7 days.",
        {
            "op": "and",
            "conditions": [
                {
                    "type": "page",
                    "where": [{"property": "path", "operator": "contains", "value": "/pricing"}],
                    "within_days": 7,
                },
            ],
        },
    ),
    (
        "Leads from Google Ads",
        "Leads who came to the site from a Google Ads click.",
        {
            "op": "and",
            "conditions": [
                {"type": "field", "field": "lifecycle_stage", "operator": "eq", "value": "lead"},
                {
                    "type": "page",
                    "where": [{"property": "search", "operator": "contains", "value": "utm_source=google"}],
                },
            ],
        },
    ),
    (
        "Started a trial (30 days)",
        "Trial Started in the last 30 days.",
        {"op": "and", "conditions": [{"type": "event", "name": "Trial Started", "within_days": 30}]},
    ),
]


def is_demo_database() -> bool:
    """Whether seed_demo filled this database (its owners exist): demo_setup may then reset the
    demo login, which it never does to a database someone else's data is in."""
    return (
        get_user_model()
        .objects.filter(username__in=[u[0] for u in DEMO_USERS], email__endswith="@" + DEMO_EMAIL_DOMAIN)
        .exists()
    )


class Command(BaseCommand):
    help = "Load realistic, deterministic demo data (idempotent: existing rows are left alone)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=200, help="number of contacts (default 200)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--login", help="the demo's login: a few of the hot deals are theirs")

    @transaction.atomic
    def handle(self, *args, contacts: int, seed: int, login: str | None, **options):
        started = time.monotonic()
        rng = random.Random(seed)
        now = timezone.now().replace(microsecond=0)
        owners = self._users()
        sales_owners = [u for u, role in owners if role == Role.SALES]
        companies = self._companies(rng, sales_owners)
        created_contacts = self._contacts(rng, contacts, companies, sales_owners, now)
        created_deals = self._deals(rng, companies, sales_owners, now, seed=seed)
        source, source_created = Source.objects.get_or_create(
            name="Website", defaults={"kind": SourceKind.WEB}
        )
        self.stdout.write(
            f"demo data: {len(companies)} companies, {created_contacts} new contacts, "
            f"{created_deals} new deals, source {source.name!r}{' created' if source_created else ''}"
        )
        self._hot_rules()
        login_user = get_user_model().objects.filter(username=login).first() if login else None
        stitch_started = timezone.now()
        web = web_traffic_seed(source=source, seed=seed, now=now, count=contacts, login=login_user)
        if not web.skipped:
            # Contacts the site created were "created" by the worker just now; live, that is when
            # their first event came in.
            Contact.objects.filter(created_at__gte=stitch_started, first_seen__lt=F("created_at")).update(
                created_at=F("first_seen")
            )
        segments = self._segments()
        # What the worker does after each batch, at once: the owners of deals whose people just
        # viewed pricing hear of it (it is also queued on commit; alerts are claimed once).
        viewers = ContactEvent.objects.filter(type="page").values_list("contact_id", flat=True).distinct()
        alerts = 0 if web.skipped else hot.hot_deals_notify(contact_ids=list(viewers))
        if web.skipped:
            self.stdout.write("web traffic: already there")
        else:
            self.stdout.write(
                f"web traffic: {web.events} events from {web.visitors} visitors ({web.identified} "
                f"identified), stitched in {web.seconds:.1f} s; {segments} new segments, "
                f"{alerts} hot-deal alerts"
            )
        self.stdout.write(f"demo ready in {time.monotonic() - started:.1f} s")

    def _hot_rules(self) -> None:
        for values in HOT_RULES:
            if not HotRule.objects.filter(name__iexact=values["name"]).exists():
                hot.hot_rule_create(actor=None, **values)

    def _segments(self) -> int:
        """The demo's segments, computed now (not by a worker later): they have members at once."""
        created = 0
        for name, description, definition in SEGMENTS:
            if Segment.objects.filter(name=name).exists():
                continue
            segment = segment_services.segment_create(
                actor=None, name=name, description=description, definition=definition
            )
            segment_services.segment_refresh(segment=segment)
            created += 1
        return created

    def _users(self):
        User = get_user_model()
        result = []
        for username, first, last, role in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                # No password: demo owners exist to own records; log in as the admin to see them.
                user = account_services.user_create(
                    username=username,
                    password=None,
                    role=role,
                    email=f"{username}@{DEMO_EMAIL_DOMAIN}",
                    first_name=first,
                    last_name=last,
                )
            result.append((user, role))
        return result

    def _companies(self, rng, owners):
        companies = []
        for name, domain, industry, size in COMPANIES:
            company, _ = Company.objects.get_or_create(
                domain=domain,
                defaults={"name": name, "industry": industry, "size": size, "owner": rng.choice(owners)},
            )
            companies.append(company)
        return companies

    def _contacts(self, rng, count, companies, owners, now) -> int:
        existing = set(Contact.objects.filter(email__isnull=False).values_list("email", flat=True))
        stages, weights = zip(*LIFECYCLE_WEIGHTS.items(), strict=True)
        new = []
        for i in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            company = rng.choice(companies)
            email = f"{first}.{last}{i}@{company.domain}".lower()
            created = now - timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1440))
            contact = Contact(
                first_name=first,
                last_name=last,
                email=email,
                phone=f"+1 555 01{i % 100:02d} {rng.randint(1000, 9999)}",
                title=rng.choice(TITLES),
                company=company,
                owner=rng.choice(owners) if rng.random() < 0.85 else None,
                lifecycle_stage=rng.choices(stages, weights)[0],
                tags=sorted(rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2)))),
                first_seen=created,
                last_seen=min(created + timedelta(days=rng.randint(0, 30)), now),
            )
            if email not in existing:
                new.append((contact, created))
        Contact.objects.bulk_create([c for c, _ in new], ignore_conflicts=True, batch_size=1000)
        # created_at is auto_now_add; spread it over the year so lists and reports look lived in.
        ids = dict(Contact.objects.filter(email__in=[c.email for c, _ in new]).values_list("email", "pk"))
        stamped = [Contact(pk=ids[c.email], created_at=created) for c, created in new if c.email in ids]
        Contact.objects.bulk_update(stamped, ["created_at"], batch_size=1000)
        # A company is on record since its first contact was (it was created just now).
        for company in companies:
            first = min((created for c, created in new if c.company is company), default=None)
            if first is not None and first < company.created_at:
                Company.objects.filter(pk=company.pk).update(created_at=first)
                company.created_at = first
        return len(new)

    def _deals(self, rng, companies, owners, now, *, seed: int) -> int:
        reasons = []
        for position, name in enumerate(LOST_REASONS):
            reason, _ = LostReason.objects.get_or_create(name=name, defaults={"position": position})
            reasons.append(reason.name)
        created = 0
        for position, (pipeline_name, stage_specs) in enumerate(PIPELINES.items()):
            pipeline, _ = Pipeline.objects.get_or_create(name=pipeline_name, defaults={"position": position})
            stages = []
            for stage_position, (name, probability, rotting) in enumerate(stage_specs):
                stage, _ = Stage.objects.get_or_create(
                    pipeline=pipeline,
                    name=name,
                    defaults={
                        "position": stage_position,
                        "probability": probability,
                        "rotting_days": rotting,
                    },
                )
                stages.append(stage)
            existing = set(pipeline.deals.values_list("title", flat=True))
            for company in companies:
                contact = company.contacts.order_by("pk").first()
                for product in rng.sample(DEAL_PRODUCTS, 2 if pipeline_name == SALES_PIPELINE else 1):
                    title = f"{company.name} — {product}"
                    # Every random draw happens before the skip, so a re-run sees the same sequence.
                    status = rng.choices((DealStatus.OPEN, DealStatus.WON, DealStatus.LOST), (70, 20, 10))[0]
                    amount = Decimal(rng.randrange(2_000, 120_000, 500))
                    stage = rng.choice(stages)
                    owner = rng.choice(owners)
                    reason = rng.choice(reasons)
                    # Dates in order: created <= stage entered <= closed <= now. A deal is opened
                    # after its person is on record, a few days to half a year ago.
                    on_record = contact.created_at if contact else company.created_at
                    opened = max(now - timedelta(days=rng.randint(5, 180)), on_record)
                    opened = min(opened + timedelta(hours=rng.randint(1, 72)), now)
                    closed = opened + (now - opened) * rng.uniform(0.2, 0.95)
                    until = now if status == DealStatus.OPEN else closed
                    stage_entered = opened + (until - opened) * rng.uniform(0.3, 1.0)
                    expected = (now + timedelta(days=rng.randint(-20, 120))).date()
                    # A next step on most open deals, some overdue, some today, most ahead: the
                    # board's badges and "My day" show something real on first run.
                    task_due = now + timedelta(days=rng.randint(-4, 12), hours=rng.randint(1, 8))
                    has_task = status == DealStatus.OPEN and rng.random() < 0.7
                    if title in existing:
                        continue
                    deal = Deal.objects.create(
                        title=title,
                        amount=amount,
                        pipeline=pipeline,
                        stage=stage,
                        company=company,
                        contact=contact,
                        owner=owner,
                        status=status,
                        # Closed deals were expected to close about when they did.
                        expected_close_date=max(expected, opened.date())
                        if status == DealStatus.OPEN
                        else closed.date(),
                        lost_reason=reason if status == DealStatus.LOST else "",
                        closed_at=None if status == DealStatus.OPEN else closed,
                        stage_entered_at=stage_entered,
                    )
                    # created_at is auto_now_add: the deal was opened back then.
                    Deal.objects.filter(pk=deal.pk).update(created_at=opened)
                    if has_task:
                        Task.objects.create(
                            title=f"Follow up: {product}", due_at=max(task_due, opened + timedelta(hours=1)),
                            assignee=deal.owner, deal=deal, contact=deal.contact,
                        )  # fmt: skip
                    # Its own random stream: the deals' draws stay the same with or without it.
                    self._activities(random.Random(f"{seed}:{title}"), deal, opened=opened, until=until)
                    deal_activity_dates_refresh(deal_id=deal.pk)
                    created += 1
        return created

    def _activities(self, rng, deal, *, opened, until) -> None:
        """Calls, emails, meetings and notes logged on the deal between its opening and its close
        (or now), most of them recent: the activity reports and timelines have something to show."""
        kinds = rng.sample(ACTIVITIES, rng.choice((0, 1, 2, 2, 3, 4)))
        moments = sorted(until - (until - opened) * rng.random() ** 2 for _ in kinds)
        Activity.objects.bulk_create(
            Activity(
                kind=kind,
                subject=subject,
                body=body,
                deal=deal,
                contact=deal.contact,
                author=deal.owner,
                occurred_at=at,
            )
            for (kind, subject, body), at in zip(kinds, moments, strict=True)
        )
