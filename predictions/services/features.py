"""Point-in-time features: what was known about each contact at the start of a day (`as_of`).

Every source reads only rows dated strictly before `as_of` (rollup days, deal creation and close
times, field-history entries, first-touch dates), so a snapshot's features cannot see the label
window that starts on that day (tests/predictions/test_features.py proves it per source).

A feature source is ONE function `source(ctx: FeatureContext) -> FeatureBlock`, named in
`settings.PREDICTION_FEATURE_SOURCES`. At training (`ctx.training`) a source that needs choices
(which event keys, which industries) makes them from data before `ctx.spec["fit_before"]` and
stores them in `ctx.spec[<its name>]`; at scoring it reads them back, so the columns stay the
model's. Computed traits and email engagement join as one more function each.
"""

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.utils.module_loading import import_string

from contacts.models import ATTRIBUTION_TOUCHED_AT, Contact, FieldChange, LifecycleStage
from identity.models import ActivityKind, DailyActivity
from pipeline.models import Deal, DealStatus

# Event/page keys that get their own columns: the most frequent ones before the fit date.
ACTIVITY_KEYS = 15
ACTIVITY_WINDOWS = (7, 30, 90)
# Recency is capped: "not seen for a year" and "never seen" look the same to the model.
RECENCY_CAP_DAYS = 365
# A contact list this short is filtered in SQL; a longer one reads the window and drops the rest.
FILTER_IN_SQL_BELOW = 5_000
TOP_CATEGORIES = 8


@dataclass
class FeatureContext:
    as_of: dt.date
    contact_ids: np.ndarray
    spec: dict = field(default_factory=dict)
    training: bool = False
    # The earliest and latest snapshot days of the run, and what sources read once for all of them.
    span: tuple[dt.date, dt.date] | None = None
    shared: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.contact_ids = np.asarray(self.contact_ids, dtype=np.int64)
        if len(self.contact_ids) > 1 and np.any(np.diff(self.contact_ids) <= 0):
            raise ValueError("contact_ids must be sorted and distinct: the sources look rows up by bisection")
        self.index = {int(pk): row for row, pk in enumerate(self.contact_ids)}
        if self.span is None:
            self.span = (self.as_of, self.as_of)

    @property
    def as_of_at(self) -> dt.datetime:
        return dt.datetime.combine(self.as_of, dt.time.min, tzinfo=dt.UTC)

    def few(self) -> bool:
        # A run of several snapshots shares its reads, so it reads every contact's rows once.
        return len(self.contact_ids) < FILTER_IN_SQL_BELOW and self.span[0] == self.span[1]

    def contact_filter(self, name: str = "contact_id") -> Q:
        return Q(**{f"{name}__in": [int(pk) for pk in self.contact_ids]}) if self.few() else Q()


@dataclass
class FeatureBlock:
    names: list[str]
    labels: list[str]
    values: np.ndarray


FeatureSource = Callable[[FeatureContext], FeatureBlock]


def feature_sources() -> list[FeatureSource]:
    return [import_string(path) for path in settings.PREDICTION_FEATURE_SOURCES]


def features_build(*, ctx: FeatureContext) -> FeatureBlock:
    """Every source's block side by side, in the settings' order."""
    blocks = [source(ctx) for source in feature_sources()]
    names = [n for b in blocks for n in b.names]
    labels = [label for b in blocks for label in b.labels]
    if not blocks:
        return FeatureBlock(names=[], labels=[], values=np.zeros((len(ctx.contact_ids), 0)))
    return FeatureBlock(names=names, labels=labels, values=np.hstack([b.values for b in blocks]))


def _fit_before(ctx: FeatureContext) -> dt.date:
    return dt.date.fromisoformat(ctx.spec.get("fit_before", ctx.as_of.isoformat()))


def _one_hot(values: list[str | None], choices: list[str]) -> np.ndarray:
    out = np.zeros((len(values), len(choices)))
    where = {c: i for i, c in enumerate(choices)}
    for row, value in enumerate(values):
        col = where.get(value) if value is not None else None
        if col is not None:
            out[row, col] = 1.0
    return out


def _top(counter: Counter, n: int) -> list[str]:
    return [value for value, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n] if value]


# --- rollups: counts per event/page key over recent windows, activity days, recency ----------

_EPOCH = dt.date(2000, 1, 1)


def _rollup_rows(ctx: FeatureContext, keys: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """The rollup rows of the run's whole span (every snapshot's 365 days), read once per run and
    kept in `ctx.shared`: the snapshots of one training read the table once, not once each.
    Columns: contact id, day (days since 2000-01-01), is-an-event, the key's column (-1: none)."""
    cached = ctx.shared.get("activity_rows")
    if cached is not None:
        return cached
    first, last = ctx.span
    names = [f"{kind}:{key}" for kind, key in keys]
    sql = (
        "SELECT contact_id, day - %s, kind = %s, "
        "COALESCE(array_position(%s::text[], kind || ':' || key), 0) - 1, count "
        "FROM identity_dailyactivity WHERE day >= %s AND day < %s"
    )
    params: list = [_EPOCH, ActivityKind.EVENT, names, first - dt.timedelta(days=RECENCY_CAP_DAYS), last]
    if ctx.few():
        sql += " AND contact_id = ANY(%s)"
        params.append([int(pk) for pk in ctx.contact_ids])
    chunks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(200_000):
            chunks.append(np.array(batch, dtype=np.int64))
    table = np.vstack(chunks) if chunks else np.zeros((0, 5), dtype=np.int64)
    rows = {
        "contact": table[:, 0],
        "day": table[:, 1],
        "event": table[:, 2].astype(bool),
        "key": table[:, 3],
        "count": table[:, 4].astype(float),
    }
    ctx.shared["activity_rows"] = rows
    return rows


def activity_features(ctx: FeatureContext) -> FeatureBlock:
    spec = ctx.spec.get("activity")
    if spec is None:
        fit_before = _fit_before(ctx)
        top = (
            DailyActivity.objects.filter(day__lt=fit_before, day__gte=fit_before - dt.timedelta(days=180))
            .values_list("kind", "key")
            .annotate(n=Sum("count"))
            .order_by("-n", "kind", "key")[:ACTIVITY_KEYS]
        )
        spec = ctx.spec["activity"] = {"keys": [[kind, key] for kind, key, _ in top]}
    keys = [(kind, key) for kind, key in spec["keys"]]
    rows = _rollup_rows(ctx, keys)
    n, nw = len(ctx.contact_ids), len(ACTIVITY_WINDOWS)
    today = (ctx.as_of - _EPOCH).days
    # Rows of this snapshot's contacts, dated in its year before as_of.
    where = np.searchsorted(ctx.contact_ids, rows["contact"])
    where = np.minimum(where, max(n - 1, 0))
    mine = (rows["day"] < today) & (rows["day"] >= today - RECENCY_CAP_DAYS)
    if n:
        mine &= ctx.contact_ids[where] == rows["contact"]
    else:
        mine &= False
    row, day, count = where[mine], rows["day"][mine], rows["count"][mine]
    key, event = rows["key"][mine], rows["event"][mine]

    # Sums per (contact, column) with bincount over flattened indices (np.add.at is ~20x slower).
    def summed(sel: np.ndarray, cols: np.ndarray | int, width: int) -> np.ndarray:
        flat = row[sel] * width + cols
        return np.bincount(flat, weights=count[sel], minlength=n * width)[: n * width].reshape(n, width)

    per_key = np.zeros((n, len(keys) * nw))
    keyed = key >= 0
    for wi, w in enumerate(ACTIVITY_WINDOWS):
        sel = keyed & (day >= today - w)
        per_key += summed(sel, key[sel] * nw + wi, len(keys) * nw) if keys else 0
    totals = np.zeros((n, 5))
    last30, last90 = day >= today - 30, day >= today - 90
    totals[:, 0] = summed(last30 & ~event, 0, 1)[:, 0]
    totals[:, 1] = summed(last30 & event, 0, 1)[:, 0]
    for col, width, sel in ((2, 30, last30), (3, 90, last90)):
        seen = np.zeros((n, width), dtype=bool)  # (contact, days ago): one mark per active day
        seen[row[sel], today - day[sel] - 1] = True
        totals[:, col] = seen.sum(axis=1)
    # The latest day per contact: fewest days ago = the minimum of (today - day).
    ago = np.full(n, RECENCY_CAP_DAYS, dtype=np.int64)
    if len(row):
        order = np.lexsort((today - day, row))
        first_of = np.r_[True, row[order][1:] != row[order][:-1]]
        ago[row[order][first_of]] = (today - day)[order][first_of]
    totals[:, 4] = ago

    names, labels = [], []
    for kind, key_name in keys:
        what = "viewed" if kind != ActivityKind.EVENT else "did"
        for w in ACTIVITY_WINDOWS:
            names.append(f"activity:{kind}:{key_name}:{w}d")
            labels.append(f"{what} {key_name} (last {w} days)")
    names += ["activity:pages:30d", "activity:events:30d", "activity:days:30d", "activity:days:90d"]
    labels += [
        "page views (last 30 days)",
        "events (last 30 days)",
        "active days (last 30)",
        "active days (last 90)",
    ]
    names.append("activity:recency")
    labels.append("days since last activity")
    return FeatureBlock(names=names, labels=labels, values=np.hstack([per_key, totals]))


# --- CRM fields: age, lifecycle stage at the time, first-touch source, company -------------------


def _lifecycle_at(ctx: FeatureContext, current: dict[int, str]) -> dict[int, str]:
    """The stage each contact had at `as_of`: the old value of its first recorded change after
    then, else today's. (Stages set by the tracking worker are not in the field history; those
    moves are visitor → lead on identify, which the activity features see anyway.)"""
    changes = (
        FieldChange.objects.filter(
            Q(entity="contact", field="lifecycle_stage", changed_at__gte=ctx.as_of_at)
            & ctx.contact_filter("object_id")
        )
        .order_by("object_id", "changed_at", "pk")
        .values_list("object_id", "old_value")
    )
    seen: set[int] = set()
    at = dict(current)
    for object_id, old in changes.iterator(chunk_size=20_000):
        if object_id not in seen:
            seen.add(object_id)
            if object_id in at:
                at[object_id] = old if isinstance(old, str) else ""
    return at


def crm_features(ctx: FeatureContext) -> FeatureBlock:
    rows = ctx.shared.get("crm_rows")
    if rows is None:
        rows = ctx.shared["crm_rows"] = list(
            Contact.objects.filter(ctx.contact_filter("pk")).values_list(
                "pk",
                "created_at",
                "lifecycle_stage",
                "attribution__utm_source",
                f"attribution__{ATTRIBUTION_TOUCHED_AT}",
                "company__size",
                "company__industry",
            )
        )
    # Today's fields, shared by the run's snapshots; each keeps the contacts of its population.
    rows = [r for r in rows if r[0] in ctx.index]
    cutoff = ctx.as_of_at.isoformat()
    spec = ctx.spec.get("crm")
    if spec is None:
        fit_before = dt.datetime.combine(_fit_before(ctx), dt.time.min, tzinfo=dt.UTC).isoformat()
        sources = Counter(r[3] for r in rows if isinstance(r[3], str) and str(r[4] or "") < fit_before)
        spec = ctx.spec["crm"] = {
            "sources": _top(sources, TOP_CATEGORIES),
            "sizes": _top(Counter(r[5] for r in rows), TOP_CATEGORIES),
            "industries": _top(Counter(r[6] for r in rows), TOP_CATEGORIES),
        }
    stages = [s for s in LifecycleStage.values]
    lifecycle = _lifecycle_at(ctx, {r[0]: r[2] for r in rows})
    n = len(ctx.contact_ids)
    age = np.zeros((n, 1))
    stage_v: list[str | None] = [None] * n
    source_v: list[str | None] = [None] * n
    size_v: list[str | None] = [None] * n
    industry_v: list[str | None] = [None] * n
    for pk, created_at, _stage, source, touched_at, size, industry in rows:
        row = ctx.index[pk]
        age[row, 0] = max(0.0, (ctx.as_of_at - created_at).total_seconds() / 86400)
        stage_v[row] = lifecycle.get(pk)
        # The first touch counts only if it happened before the snapshot.
        if isinstance(source, str) and isinstance(touched_at, str) and touched_at < cutoff:
            source_v[row] = source
        size_v[row], industry_v[row] = size, industry
    names = ["crm:age_days"]
    labels = ["days since the contact was created"]
    names += [f"crm:lifecycle:{s}" for s in stages]
    labels += [f"lifecycle stage is {LifecycleStage(s).label}" for s in stages]
    names += [f"crm:source:{s}" for s in spec["sources"]]
    labels += [f"first touch from {s}" for s in spec["sources"]]
    names += [f"crm:company_size:{s}" for s in spec["sizes"]]
    labels += [f"company size {s}" for s in spec["sizes"]]
    names += [f"crm:industry:{s}" for s in spec["industries"]]
    labels += [f"industry {s}" for s in spec["industries"]]
    values = np.hstack(
        [
            age,
            _one_hot(stage_v, stages),
            _one_hot(source_v, spec["sources"]),
            _one_hot(size_v, spec["sizes"]),
            _one_hot(industry_v, spec["industries"]),
        ]
    )
    return FeatureBlock(names=names, labels=labels, values=values)


# --- deals: how many the person had, won, lost and open at the time ------------------------------


def deal_features(ctx: FeatureContext) -> FeatureBlock:
    at = ctx.as_of_at
    closed_before = Q(closed_at__lt=at)
    rows = (
        Deal.objects.filter(Q(contact__isnull=False, created_at__lt=at) & ctx.contact_filter())
        .values_list("contact_id")
        .annotate(
            created=Count("pk"),
            won=Count("pk", filter=closed_before & Q(status=DealStatus.WON)),
            lost=Count("pk", filter=closed_before & Q(status=DealStatus.LOST)),
            # Open at the time: not closed yet then, whatever it became since.
            open=Count("pk", filter=Q(closed_at__isnull=True) | Q(closed_at__gte=at)),
            last_won=Max("closed_at", filter=closed_before & Q(status=DealStatus.WON)),
        )
        .order_by()
    )
    values = np.zeros((len(ctx.contact_ids), 5))
    values[:, 4] = RECENCY_CAP_DAYS
    for contact_id, created, won, lost, open_, last_won in rows.iterator(chunk_size=20_000):
        row = ctx.index.get(contact_id)
        if row is not None:
            since_won = min(RECENCY_CAP_DAYS, (at - last_won).days) if last_won else RECENCY_CAP_DAYS
            values[row] = [created, won, lost, open_, since_won]
    names = ["deals:created", "deals:won", "deals:lost", "deals:open", "deals:days_since_won"]
    labels = ["deals created", "deals won", "deals lost", "open deals", "days since a deal was won"]
    return FeatureBlock(names=names, labels=labels, values=values)
