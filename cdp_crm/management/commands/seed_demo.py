"""Realistic, deterministic demo data. Running it again adds nothing that is already there."""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Role
from contacts.models import Company, Contact, LifecycleStage
from events.models import Source, SourceKind
from pipeline.activities import deal_activity_dates_refresh
from pipeline.models import Deal, DealStatus, Pipeline, Stage, Task

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
PIPELINES = {
    "Sales": [
        ("Qualified", 10, 14),
        ("Contact made", 20, 14),
        ("Demo scheduled", 40, 10),
        ("Proposal made", 60, 10),
        ("Negotiation", 80, 7),
    ],
    "Renewals": [("Upcoming", 50, 30), ("In discussion", 70, 14), ("Committed", 90, 7)],
}
DEAL_PRODUCTS = ("Platform licence", "Onboarding package", "Enterprise plan", "Pilot", "Expansion", "Support")
DEMO_USERS = [
    ("alex", "Alex", "Morgan", Role.SALES),
    ("sam", "Sam", "Lee", Role.SALES),
    ("jordan", "Jordan", "Kim", Role.MARKETING),
]


class Command(BaseCommand):
    help = "Load realistic, deterministic demo data (idempotent: existing rows are left alone)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=200, help="number of contacts (default 200)")
        parser.add_argument("--seed", type=int, default=42)

    @transaction.atomic
    def handle(self, *args, contacts: int, seed: int, **options):
        rng = random.Random(seed)
        now = timezone.now().replace(microsecond=0)
        owners = self._users()
        sales_owners = [u for u, role in owners if role == Role.SALES]
        companies = self._companies(rng, sales_owners)
        created_contacts = self._contacts(rng, contacts, companies, sales_owners, now)
        created_deals = self._deals(rng, companies, sales_owners, now)
        source, source_created = Source.objects.get_or_create(
            name="Website", defaults={"kind": SourceKind.WEB}
        )
        self.stdout.write(
            f"demo data: {len(companies)} companies, {created_contacts} new contacts, "
            f"{created_deals} new deals, source {source.name!r}{' created' if source_created else ''}"
        )

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
                    email=f"{username}@cdp-crm.example",
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
                last_seen=created + timedelta(days=rng.randint(0, 30)),
            )
            if email not in existing:
                new.append((contact, created))
        Contact.objects.bulk_create([c for c, _ in new], ignore_conflicts=True, batch_size=1000)
        # created_at is auto_now_add; spread it over the year so lists and reports look lived in.
        ids = dict(Contact.objects.filter(email__in=[c.email for c, _ in new]).values_list("email", "pk"))
        stamped = [Contact(pk=ids[c.email], created_at=created) for c, created in new if c.email in ids]
        Contact.objects.bulk_update(stamped, ["created_at"], batch_size=1000)
        return len(new)

    def _deals(self, rng, companies, owners, now) -> int:
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
                for product in rng.sample(DEAL_PRODUCTS, 2 if pipeline_name == "Sales" else 1):
                    title = f"{company.name} — {product}"
                    # Every random draw happens before the skip, so a re-run sees the same sequence.
                    status = rng.choices((DealStatus.OPEN, DealStatus.WON, DealStatus.LOST), (70, 20, 10))[0]
                    deal = Deal(
                        title=title,
                        amount=Decimal(rng.randrange(2_000, 120_000, 500)),
                        pipeline=pipeline,
                        stage=rng.choice(stages),
                        company=company,
                        contact=company.contacts.order_by("pk").first(),
                        owner=rng.choice(owners),
                        status=status,
                        expected_close_date=(now + timedelta(days=rng.randint(-20, 120))).date(),
                        lost_reason="Chose a competitor" if status == DealStatus.LOST else "",
                        closed_at=now - timedelta(days=rng.randint(1, 60)),
                        stage_entered_at=now - timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23)),
                    )
                    if status == DealStatus.OPEN:
                        deal.closed_at = None
                    # A next step on most open deals, some overdue, some today, most ahead: the
                    # board's badges and "My day" show something real on first run.
                    task_due = now + timedelta(days=rng.randint(-4, 12), hours=rng.randint(1, 8))
                    has_task = status == DealStatus.OPEN and rng.random() < 0.7
                    if title in existing:
                        continue
                    deal.save()
                    if has_task:
                        Task.objects.create(
                            title=f"Follow up: {product}", due_at=task_due, assignee=deal.owner, deal=deal,
                            contact=deal.contact,
                        )  # fmt: skip
                        deal_activity_dates_refresh(deal_id=deal.pk)
                    created += 1
        return created
