"""Generated histories with a known (or no) signal, written straight into the rollups."""

import datetime as dt
import random

from django.utils import timezone

from contacts.models import Contact
from identity.models import ActivityKind, DailyActivity

GOAL = "Order Completed"


def _row(pk: int, day: dt.date, kind: str, key: str, count: int = 1) -> DailyActivity:
    return DailyActivity(contact_id=pk, day=day, kind=kind, key=key, count=count)


def history(
    *, people: int, days: int = 150, signal: bool = True, seed: int = 1, today: dt.date | None = None
) -> list[int]:
    """`people` identified contacts created `days` ago. With a signal, half of them are keen: they
    view /pricing every few days and complete an order in about half of any 30 days; the others read
    /docs and rarely order. Without one, everyone browses alike and orders at the same random rate."""
    rng = random.Random(seed)
    today = today or timezone.now().date()
    start = today - dt.timedelta(days=days)
    created = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    contacts = Contact.objects.bulk_create(
        Contact(first_name=f"P{i}", email=f"p{seed}-{i}@example.com", lifecycle_stage="lead")
        for i in range(people)
    )
    ids = [c.pk for c in contacts]
    Contact.objects.filter(pk__in=ids).update(created_at=created)
    rows = []
    for pk in ids:
        keen = rng.random() < 0.5
        for offset in range(days):
            day = start + dt.timedelta(days=offset)
            if signal:
                if keen and rng.random() < 0.25:
                    rows.append(
                        DailyActivity(contact_id=pk, day=day, kind=ActivityKind.PAGE, key="/pricing", count=2)
                    )
                if rng.random() < 0.15:
                    rows.append(
                        DailyActivity(contact_id=pk, day=day, kind=ActivityKind.PAGE, key="/docs", count=1)
                    )
                if rng.random() < (0.025 if keen else 0.0015):
                    rows.append(
                        DailyActivity(contact_id=pk, day=day, kind=ActivityKind.EVENT, key=GOAL, count=1)
                    )
            else:
                if rng.random() < 0.15:
                    key = rng.choice(["/pricing", "/docs", "/blog"])
                    rows.append(
                        DailyActivity(contact_id=pk, day=day, kind=ActivityKind.PAGE, key=key, count=1)
                    )
                if rng.random() < 0.01:
                    rows.append(
                        DailyActivity(contact_id=pk, day=day, kind=ActivityKind.EVENT, key=GOAL, count=1)
                    )
    DailyActivity.objects.bulk_create(rows, batch_size=5000)
    return ids


def trained_model(*, name: str = "Buyers", people: int = 60, seed: int = 3):
    """A small published model (minimums lowered to 5/5 so 60 people are enough)."""
    from predictions import services
    from predictions.models import Goal

    history(people=people, seed=seed)
    model = services.prediction_model_create(
        actor=None,
        name=name,
        goal=Goal.EVENT,
        event_name=GOAL,
        horizon_days=30,
        min_positives=5,
        min_negatives=5,
    )
    return services.prediction_model_train(model=model)
