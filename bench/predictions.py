"""Predictive model figures at 100k contacts and 2M events' worth of rollups over 180 days.

    .venv/bin/python bench/predictions.py [--database NAME] [--reseed] [--horizon 30]

Seeds a separate database (default `cdp_crm_predict_bench`) with generate_series straight into
contacts_contact, contacts_company and identity_dailyactivity: 2M page/track events over 180 days,
skewed towards busy contacts (random()^2), aggregated into the daily rollups the stitching worker
would have written. A planted signal: one contact in four is "keen" (views /pricing more and
completes orders about 5x as often), so the model has something to find.

Prints, in one run on the same database:
- the floor: COPY of the rollup rows the training snapshots read (each snapshot's 365-day window,
  to /dev/null) — reading the data at all, with no aggregation, features or fitting;
- training an "Order Completed within 30 days" model end to end (population, point-in-time
  features for 3 training snapshots and the holdout, both candidates with calibration, metrics),
  with the split by phase and the ratio to the floor; target ≤ 60 s;
- scoring every contact (features as of today, probability, percentile, explanations, upsert);
- the realtime path: rescoring 500 contacts (one segments drain batch);
- the same goal published with gradient boosting (its explanations cost more): full scoring and
  the realtime path again.
"""

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import setup_django  # noqa: E402

CONTACTS = 100_000
EVENTS = 2_000_000
DAYS = 180

SEED_SQL = [
    "SELECT setseed(0.17)",
    """
    INSERT INTO contacts_company (name, domain, industry, size, custom_fields, created_at, updated_at)
    SELECT 'Company ' || g, 'co' || g || '.example',
        (ARRAY['Software', 'Retail', 'Finance', 'Health', 'Education'])[1 + g % 5],
        (ARRAY['1-10', '11-50', '51-200', '201-1000', '1000+'])[1 + g % 5], '{}'::jsonb, now(), now()
    FROM generate_series(1, 5000) g
    """,
    f"""
    INSERT INTO contacts_contact (first_name, last_name, email, phone, title, company_id, lifecycle_stage,
        tags, custom_fields, traits, first_seen, last_seen, attribution, is_identified, created_at,
        updated_at, consent)
    SELECT 'First' || g, 'Last' || g, 'person' || g || '@bench.example', '', '', 1 + g % 5000,
        (ARRAY['lead', 'lead', 'subscriber', 'opportunity', 'customer'])[1 + g % 5],
        ARRAY[]::varchar[], '{{}}'::jsonb, '{{}}'::jsonb, now() - interval '{DAYS + 20} days', now(),
        jsonb_build_object(
            'utm_source', (ARRAY['google', 'newsletter', 'linkedin', 'partner'])[1 + g % 4],
            'touched_at', to_char(now() - interval '{DAYS + 10} days', 'YYYY-MM-DD"T"HH24:MI:SS+00:00')),
        true, now() - interval '{DAYS + 20} days', now(), '{{}}'::jsonb
    FROM generate_series(1, {CONTACTS}) g
    """,
    # One statement: 2M generated events, grouped into (contact, day, kind, key) rollups.
    f"""
    INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
    SELECT contact, day, kind, key, count(*)
    FROM (
        SELECT base.contact, (now() AT TIME ZONE 'UTC')::date - floor(random() * {DAYS})::int AS day,
            CASE WHEN base.r < 0.75 THEN 'page' ELSE 'event' END AS kind,
            CASE WHEN base.r < 0.75 THEN
                    CASE WHEN base.keen AND base.p < 0.35 THEN '/pricing'
                         ELSE (ARRAY['/', '/docs', '/blog/segments', '/features', '/pricing',
                                     '/pricing/teams', '/signup', '/docs/api', '/about', '/blog/cdp']
                              )[1 + floor(base.p * 10)::int] END
                 WHEN base.r < (CASE WHEN base.keen THEN 0.80 ELSE 0.76 END) THEN 'Order Completed'
                 WHEN base.r < 0.84 THEN 'Signed Up'
                 WHEN base.r < 0.94 THEN 'Product Viewed'
                 ELSE 'Login' END AS key
        FROM generate_series(1, {EVENTS}) g,
        LATERAL (
            SELECT c AS contact, c % 4 = 0 AS keen, random() AS r, random() AS p
            FROM (SELECT 1 + floor({CONTACTS} * power(random(), 2))::int AS c, g AS _g) x
        ) base
    ) ev
    GROUP BY 1, 2, 3, 4
    """,
    "ANALYZE",
]


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
            "TRUNCATE contacts_contact, contacts_company, identity_dailyactivity, "
            "predictions_predictionmodel RESTART IDENTITY CASCADE"
        )
        for sql in SEED_SQL:
            cursor.execute(sql)
        cursor.execute("SELECT count(*), sum(count) FROM identity_dailyactivity")
        rows, events = cursor.fetchone()
    took = time.perf_counter() - started
    print(f"seeded in {took:.0f} s: {CONTACTS} contacts, {rows} rollup rows ({events} events)")


def floor_read(dates: list[dt.date]) -> float:
    """COPY the rollup rows each snapshot's widest window (365 days) covers, discarding them."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for as_of in dates:
            with cursor.copy(
                "COPY (SELECT contact_id, day, kind, key, count FROM identity_dailyactivity "
                "WHERE day < %s AND day >= %s) TO STDOUT",
                [as_of, as_of - dt.timedelta(days=365)],
            ) as copy:
                for _ in copy:
                    pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="cdp_crm_predict_bench")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--horizon", type=int, default=30)
    args = parser.parse_args()
    setup_django(args.database)
    seed(reseed=args.reseed)

    from django.utils import timezone

    from predictions import services
    from predictions.models import Goal, Prediction, PredictionModel
    from predictions.services import scoring, training

    PredictionModel.objects.all().delete()
    model = services.prediction_model_create(
        actor=None,
        name="Orders (bench)",
        goal=Goal.EVENT,
        event_name="Order Completed",
        horizon_days=args.horizon,
    )
    today = timezone.now().date()
    test_as_of, train_dates = training.snapshot_dates(model=model, today=today)
    floor = floor_read([*train_dates, test_as_of])
    print(f"floor: COPY of the rollup rows of {len(train_dates) + 1} snapshots      {floor:6.1f} s")

    started = time.perf_counter()
    model = services.prediction_model_train(model=model)
    total = time.perf_counter() - started
    timings = model.metrics.get("timings", {})
    train_s = timings.get("total_train_s", total)
    m = model.metrics
    print(f"status {model.status} {model.status_reason}")
    print(
        f"train ({m.get('fitted_rows', 0)} rows fitted of {m['train_positives'] + m['train_negatives']}, "
        f"{m['features']} features)      {train_s:6.1f} s  = {train_s / floor:.1f}x the floor"
    )
    print(
        f"  features {timings.get('features_s', 0):.1f} s, "
        f"logistic fit {timings.get('fit_logistic_s', 0):.1f} s, "
        f"boosting fit {timings.get('fit_boosting_s', 0):.1f} s"
    )
    if model.metrics.get("candidates"):
        for name, q in model.metrics["candidates"].items():
            print(
                f"  {name:<9} AUC {q['auc']:.3f}  lift@10% {q['lift_top_decile']:.2f}  "
                f"log loss {q['log_loss']:.4f}  holdout +{q['positives']}/-{q['negatives']}"
            )
        print(f"  chosen {model.algorithm}, verdict {model.verdict}")
    print(f"train + first scoring (as the task runs it)  {total:6.1f} s")

    started = time.perf_counter()
    n = scoring.predictions_score(model=model)
    score_s = time.perf_counter() - started
    print(f"score all contacts ({n})                    {score_s:6.1f} s  = {score_s / floor:.1f}x the floor")

    ids = list(
        Prediction.objects.filter(model=model).order_by("?").values_list("contact_id", flat=True)[:500]
    )
    started = time.perf_counter()
    scoring.predictions_score(model=model, contact_ids=ids)
    print(f"realtime: rescore 500 contacts               {time.perf_counter() - started:6.2f} s")

    # The same goal published with gradient boosting: its explanations re-predict only the rows
    # whose value and the feature's mean fall on different sides of a split (scoring.contributions).
    boosted = services.prediction_model_create(
        actor=None,
        name="Orders (boosting)",
        goal=Goal.EVENT,
        event_name="Order Completed",
        horizon_days=args.horizon,
    )
    boosted = services.prediction_model_train(model=boosted, algorithm="boosting")
    started = time.perf_counter()
    n = scoring.predictions_score(model=boosted)
    score_s = time.perf_counter() - started
    print(f"score all contacts, boosting ({n})          {score_s:6.1f} s  = {score_s / floor:.1f}x the floor")
    started = time.perf_counter()
    scoring.predictions_score(model=boosted, contact_ids=ids)
    print(f"realtime, boosting: rescore 500 contacts     {time.perf_counter() - started:6.2f} s")


if __name__ == "__main__":
    main()
