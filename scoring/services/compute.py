"""Computing and storing scores. One function computes a model's scores for a set of contacts
(or all): the realtime path (`scores_refresh`, called by the segments drain before segments
re-evaluate the same contacts), the full recompute (`score_model_recompute`, a Celery task on
model save) and the daily decay refresh (`scores_decay_refresh`, beat) all run it, so they
agree by construction; tests/scoring check that they do.

Set-based: fit rules are one query over contacts (a CASE per rule); each engagement rule is one
aggregate over the daily rollups (`identity_dailyactivity`), or over the event projection joined
to the event log when it has property conditions. Python only combines per-(contact, rule) sums:
caps, rounding and the explanation.
"""

import datetime as dt
import time
from dataclasses import dataclass

import orjson
from django.db import connection, transaction
from django.db.models import BooleanField, Case, FloatField, Func, Q, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Lower
from django.utils import timezone

from contacts.models import Contact
from events.models import Event
from identity import services as identity_services
from identity.models import ActivityKind, ContactEvent, DailyActivity, HotRule
from scoring import definition
from scoring.models import Score, ScoreDay, ScoreModel

LOCK_NAMESPACE = 7301  # pg_advisory_xact_lock(namespace, score model id)
WRITE_CHUNK = 5_000
# ScoreDay rows beyond this many days are pruned to the newest one ("a week ago" needs one).
HISTORY_DAYS = 8


@dataclass
class Result:
    score: int
    fit: int
    engagement: int
    explanation: list[dict]

    def row(self) -> tuple:
        return (self.score, self.fit, self.engagement, self.explanation)


def today_utc(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(dt.UTC).date()


def rules_of(model: ScoreModel) -> definition.Rules:
    return definition.parse(fit_rules=model.fit_rules, engagement_rules=model.engagement_rules)


# --- fit: one query over contacts


class JsonNumber(Func):
    """A JSON value as float8 when it is a JSON number, else NULL (never a cast error)."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(CASE WHEN jsonb_typeof({sql}) = 'number' THEN ({sql} #>> '{{}}')::float8 END)", [
            *params,
            *params,
        ]


def _fit_condition(rule: definition.FitRule, alias: str) -> tuple[dict, Q]:
    """(annotations, Q) that hold for contacts the rule gives points to."""
    name, op, value = rule.field, rule.op, rule.value
    if name == "tags":
        tags = Q(tags__contains=[str(value).strip().lower()]) if op == "contains" else ~Q(tags=[])
        return {}, tags if op != "is_not_set" else Q(tags=[])
    if name == "owner":
        return {}, Q(owner__isnull=(op == "is_not_set"))
    if name == "is_identified":
        return {}, Q(is_identified=bool(value))
    annotations: dict = {}
    if name.startswith(("custom.", "trait.", "company.custom.")):
        prefix = next(p for p in ("company.custom.", "custom.", "trait.") if name.startswith(p))
        key = name[len(prefix) :]
        column = {
            "custom.": "custom_fields",
            "trait.": "traits",
            "company.custom.": "company__custom_fields",
        }[prefix]
        if op in definition.NUMBER_OPS:
            annotations[alias] = JsonNumber(KeyTransform(key, column))
            return annotations, Q(**{f"{alias}__{op}": value})
        annotations[alias] = KeyTextTransform(key, column)
        target = alias
    else:
        target = name.replace("company.", "company__")
    if op == "is_set":
        return annotations, Q(**{f"{target}__isnull": False}) & ~Q(**{target: ""})
    if op == "is_not_set":
        return annotations, Q(**{f"{target}__isnull": True}) | Q(**{target: ""})
    if op == "in":
        annotations[alias + "l"] = Lower(target)
        return annotations, Q(**{f"{alias}l__in": [v.strip().lower() for v in value]})
    lookup = {
        "equals": "iexact",
        "not_equals": "iexact",
        "contains": "icontains",
        "starts_with": "istartswith",
        "ends_with": "iendswith",
    }[op]
    q = Q(**{f"{target}__{lookup}": value})
    return annotations, ~q if op == "not_equals" else q


def _fit_hits(rules: tuple[definition.FitRule, ...], contact_ids: list[int] | None) -> dict[int, list[int]]:
    """contact id -> indexes of the fit rules that hold for it (contacts with none are left out)."""
    if not rules:
        return {}
    contacts = Contact.objects.filter(merged_into__isnull=True)
    if contact_ids is not None:
        contacts = contacts.filter(pk__in=contact_ids)
    annotations: dict = {}
    flags: dict = {}
    any_hit = Q()
    for rule in rules:
        extra, q = _fit_condition(rule, f"_f{rule.index}")
        annotations.update(extra)
        flags[f"_hit{rule.index}"] = Case(
            When(q, then=Value(True)), default=Value(False), output_field=BooleanField()
        )
        any_hit |= q
    names = list(flags)
    rows = contacts.annotate(**annotations).filter(any_hit).annotate(**flags).values_list("pk", *names)
    hits: dict[int, list[int]] = {}
    for pk, *flags_ in rows:
        hits[pk] = [rule.index for rule, hit in zip(rules, flags_, strict=True) if hit]
    return hits


# --- engagement: one aggregate per rule


def _quoted(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _property_sql(condition: definition.Condition) -> tuple[str, list]:
    p = condition.property
    value = condition.value
    if condition.op == "equals":
        return "(e.properties ->> %s) = %s", [p, value]
    if condition.op == "not_equals":
        return "(e.properties ->> %s) IS DISTINCT FROM %s", [p, value]
    if condition.op == "contains":
        return "strpos(lower(e.properties ->> %s), lower(%s)) > 0", [p, value]
    if condition.op == "exists":
        return "jsonb_exists(e.properties, %s)", [p]
    operator = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[condition.op]
    return (
        "(CASE WHEN jsonb_typeof(e.properties -> %s) = 'number' THEN (e.properties ->> %s)::float8 END)"
        f" {operator} %s",
        [p, p, float(value)],
    )


def _engagement_sums(
    rule: definition.EngagementRule, *, contact_ids: list[int] | None, today: dt.date
) -> list[tuple[int, float, int]]:
    """(contact id, decayed points before the rule's cap, occurrences) for live contacts."""
    # Every table and column name is ours; every value is a parameter.
    decay = "1.0"
    decay_params: list = []
    if rule.half_life_days:
        decay = "power(0.5, GREATEST(%s::date - {day}, 0)::float8 / %s)"
        decay_params = [today, rule.half_life_days]
    scope, scope_params = "", []
    if contact_ids is not None:
        scope, scope_params = " AND {contact} = ANY(%s::bigint[])", [_ids(contact_ids)]
    if not rule.where:
        key_sql = {
            "equals": "da.key = %s",
            "contains": "strpos(lower(da.key), lower(%s)) > 0",
            "starts_with": "starts_with(da.key, %s)",
        }[rule.match if rule.kind == "page" else "equals"]
        window, window_params = "da.day <= %s", [today]
        if rule.within_days:
            window += " AND da.day > %s"
            window_params.append(today - dt.timedelta(days=rule.within_days))
        sql = f"""
            SELECT da.contact_id, SUM(da.count * {decay.format(day="da.day")}), SUM(da.count)
            FROM {_quoted(DailyActivity)} da JOIN {_quoted(Contact)} c ON c.id = da.contact_id
            WHERE c.merged_into_id IS NULL AND da.kind = %s AND {key_sql} AND {window}
                  {scope.format(contact="da.contact_id")}
            GROUP BY da.contact_id
        """
        kind = ActivityKind.PAGE if rule.kind == "page" else ActivityKind.EVENT
        params = [*decay_params, kind, rule.key, *window_params, *scope_params]
    else:
        day = "(ce.timestamp AT TIME ZONE 'UTC')::date"
        end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        window, window_params = "ce.timestamp < %s", [end]
        if rule.within_days:
            window += " AND ce.timestamp >= %s"
            window_params.append(end - dt.timedelta(days=rule.within_days))
        conditions, condition_params = [], []
        for condition in rule.where:
            sql_, params_ = _property_sql(condition)
            conditions.append(sql_)
            condition_params.extend(params_)
        sql = f"""
            SELECT ce.contact_id, SUM({decay.format(day=day)}), COUNT(*)
            FROM {_quoted(ContactEvent)} ce
            JOIN {_quoted(Event)} e ON e.id = ce.event_id AND e.received_at = ce.received_at
            JOIN {_quoted(Contact)} c ON c.id = ce.contact_id
            WHERE c.merged_into_id IS NULL AND ce.type = 'track' AND ce.name = %s AND NOT ce.is_bot
                  AND {window} AND {" AND ".join(conditions)} {scope.format(contact="ce.contact_id")}
            GROUP BY ce.contact_id
        """
        params = [*decay_params, rule.key, *window_params, *condition_params, *scope_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, float(raw), int(n)) for pk, raw, n in cursor.fetchall()]


def _ids(ids) -> str:
    return "{" + ",".join(str(int(pk)) for pk in sorted(set(ids))) + "}"


# --- combining: caps, rounding, the explanation


def _line(part: str, label: str, points: int, **extra) -> dict:
    return {"part": part, "label": label, "points": points, **extra}


def combine(
    model: ScoreModel,
    rules: definition.Rules,
    *,
    fit_hits: list[int],
    engagement: dict[int, tuple[float, int]],
) -> Result | None:
    """One contact's score from its fit hits and per-rule engagement sums; None when no rule
    gives it points. The explanation's points add up to the score exactly: every line is a whole
    number, and a cap is a line of its own."""
    lines: list[dict] = []
    by_index = {r.index: r for r in rules.fit}
    fit = 0
    for index in fit_hits:
        rule = by_index[index]
        lines.append(_line("fit", rule.label, rule.points, rule=index))
        fit += rule.points
    if model.fit_cap is not None and fit > model.fit_cap:
        lines.append(_line("fit", f"Fit capped at {model.fit_cap}", model.fit_cap - fit, cap=True))
        fit = model.fit_cap
    engaged = 0
    for rule in rules.engagement:
        if rule.index not in engagement:
            continue
        raw, occurrences = engagement[rule.index]
        value = raw * rule.points
        capped = value
        if rule.max_points is not None:
            capped = max(-rule.max_points, min(rule.max_points, value))
        # Rounded to 6 places first, so that summing the same rows in another order cannot
        # flip a whole point.
        points = round(round(capped, 6))
        if points == 0:
            continue
        extra = {"rule": rule.index, "occurrences": occurrences, "raw": round(value, 2)}
        if capped != value:
            extra["capped"] = True
        lines.append(_line("engagement", rule.label, points, **extra))
        engaged += points
    if not lines:
        return None
    if model.engagement_cap is not None and engaged > model.engagement_cap:
        lines.append(
            _line(
                "engagement",
                f"Engagement capped at {model.engagement_cap}",
                model.engagement_cap - engaged,
                cap=True,
            )
        )
        engaged = model.engagement_cap
    total = fit + engaged
    if total > model.total_cap:
        lines.append(_line("total", f"Score capped at {model.total_cap}", model.total_cap - total, cap=True))
        total = model.total_cap
    elif total < 0:
        lines.append(_line("total", "A score is never below 0", -total, cap=True))
        total = 0
    return Result(score=total, fit=fit, engagement=engaged, explanation=lines)


def scores_compute(*, model: ScoreModel, contact_ids: list[int] | None, today: dt.date) -> dict[int, Result]:
    """The model's scores for these live contacts (None: every live contact), as of UTC day
    `today`; a contact no rule gives points scores 0 with an empty explanation."""
    rules = rules_of(model)
    fit_hits = _fit_hits(rules.fit, contact_ids)
    engagement: dict[int, dict[int, tuple[float, int]]] = {}
    for rule in rules.engagement:
        for pk, raw, n in _engagement_sums(rule, contact_ids=contact_ids, today=today):
            engagement.setdefault(pk, {})[rule.index] = (raw, n)
    live = Contact.objects.filter(merged_into__isnull=True)
    if contact_ids is not None:
        live = live.filter(pk__in=contact_ids)
    # Every live contact gets a row, 0 where no rule applies: the contact list sorts by score with
    # an inner join on the (model, score, contact) index, which needs a row for everyone.
    results = {}
    for pk in live.values_list("pk", flat=True).iterator(chunk_size=10_000):
        if pk in fit_hits or pk in engagement:
            result = combine(model, rules, fit_hits=fit_hits.get(pk, []), engagement=engagement.get(pk, {}))
        else:
            result = None
        results[pk] = result or Result(score=0, fit=0, engagement=0, explanation=[])
    return results


# --- writing


def lock_model(model_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, model_id])


def _write(
    *, model: ScoreModel, results: dict[int, Result], scope: list[int] | None, now: dt.datetime
) -> list[int]:
    """Store `results` (every live contact of `scope`; None: all): the database compares each row
    with the stored one and writes only those that differ (no stored explanation travels back),
    rows of contacts no longer live are deleted, and each score that moved is recorded in
    ScoreDay. Returns the contacts whose row changed."""
    table = _quoted(Score)
    contacts = _quoted(Contact)
    changed: list[int] = []
    moved: dict[int, int] = {}
    with connection.cursor() as cursor:
        # Rows of contacts merged or deleted since (results only hold live contacts).
        scoped = " AND s.contact_id = ANY(%s::bigint[])" if scope is not None else ""
        cursor.execute(
            f"""
            DELETE FROM {table} s WHERE s.model_id = %s{scoped} AND NOT EXISTS (
                SELECT 1 FROM {contacts} c WHERE c.id = s.contact_id AND c.merged_into_id IS NULL)
            RETURNING s.contact_id, s.score
            """,
            [model.pk, *([_ids(scope)] if scope is not None else [])],
        )
        for pk, old in cursor.fetchall():
            changed.append(pk)
            if old:
                moved[pk] = 0
        ids = sorted(results)
        for start in range(0, len(ids), WRITE_CHUNK):
            chunk = ids[start : start + WRITE_CHUNK]
            # One statement: the old scores (the CTE sees the rows as they were), the upsert of
            # rows that differ, and which of them moved.
            cursor.execute(
                f"""
                WITH new AS (
                    SELECT * FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::int[], %s::text[])
                        AS t(c, s, f, g, x)
                ), old AS (
                    SELECT contact_id, score FROM {table}
                    WHERE model_id = %s AND contact_id = ANY(%s::bigint[])
                ), up AS (
                    INSERT INTO {table}
                        (model_id, contact_id, score, fit, engagement, explanation, updated_at)
                    SELECT %s, c, s, f, g, x::jsonb, %s FROM new
                    ON CONFLICT (model_id, contact_id) DO UPDATE SET
                        score = EXCLUDED.score, fit = EXCLUDED.fit, engagement = EXCLUDED.engagement,
                        explanation = EXCLUDED.explanation, updated_at = EXCLUDED.updated_at
                    WHERE ({table}.score, {table}.fit, {table}.engagement, {table}.explanation)
                        IS DISTINCT FROM
                        (EXCLUDED.score, EXCLUDED.fit, EXCLUDED.engagement, EXCLUDED.explanation)
                    RETURNING contact_id, score
                )
                SELECT up.contact_id, COALESCE(old.score, 0), up.score
                FROM up LEFT JOIN old USING (contact_id)
                """,
                [
                    chunk,
                    [results[pk].score for pk in chunk],
                    [results[pk].fit for pk in chunk],
                    [results[pk].engagement for pk in chunk],
                    [orjson.dumps(results[pk].explanation).decode() for pk in chunk],
                    model.pk,
                    chunk,
                    model.pk,
                    now,
                ],
            )
            for pk, old, new in cursor.fetchall():
                changed.append(pk)
                if old != new:
                    moved[pk] = new
    _history_record(model=model, scores=moved, now=now)
    return sorted(changed)


def _history_record(*, model: ScoreModel, scores: dict[int, int], now: dt.datetime) -> None:
    if not scores:
        return
    ids = sorted(scores)
    table = _quoted(ScoreDay)
    for start in range(0, len(ids), WRITE_CHUNK):
        chunk = ids[start : start + WRITE_CHUNK]
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (model_id, contact_id, day, score)
                SELECT %s, c, %s, s FROM unnest(%s::bigint[], %s::int[]) AS t(c, s)
                ON CONFLICT (model_id, contact_id, day) DO UPDATE SET score = EXCLUDED.score
                """,
                [model.pk, today_utc(now), chunk, [scores[pk] for pk in chunk]],
            )


def _history_prune(*, model: ScoreModel, today: dt.date) -> int:
    """Rows older than HISTORY_DAYS, except each contact's newest such row."""
    cutoff = today - dt.timedelta(days=HISTORY_DAYS)
    table = _quoted(ScoreDay)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {table} d WHERE d.model_id = %s AND d.day < %s AND EXISTS (
                SELECT 1 FROM {table} n WHERE n.model_id = d.model_id AND n.contact_id = d.contact_id
                AND n.day > d.day AND n.day < %s)
            """,
            [model.pk, cutoff, cutoff],
        )
        return cursor.rowcount


def _mark_after_commit(contact_ids: list[int]) -> None:
    """Mark changed contacts for segments once the scores are committed: not under the model's
    lock, which the segments drain takes while it holds ProfileUpdate rows (marking them inside
    would wait for the drain while the drain waits for the lock)."""
    if contact_ids:
        ids = list(contact_ids)
        transaction.on_commit(lambda: identity_services.profile_updates_mark(contact_ids=ids), robust=True)


def _enabled_models() -> list[ScoreModel]:
    return list(ScoreModel.objects.filter(enabled=True).order_by("pk"))


def scores_refresh(*, contact_ids: list[int], now: dt.datetime | None = None) -> list[int]:
    """The realtime path: recompute every enabled model's scores for these contacts (tombstones
    among them lose theirs). Called inside the segments drain's transaction, before segments
    re-evaluate the same contacts. Returns the contacts whose score changed in any model."""
    if not contact_ids:
        return []
    now = now or timezone.now()
    today = today_utc(now)
    scope = sorted(set(contact_ids))
    changed: set[int] = set()
    with transaction.atomic():
        for model in _enabled_models():
            lock_model(model.pk)
            results = scores_compute(model=model, contact_ids=scope, today=today)
            changed.update(_write(model=model, results=results, scope=scope, now=now))
    if changed and HotRule.objects.filter(enabled=True, min_score__isnull=False).exists():
        # A hot-deal rule that asks for a score can turn true when the score does: ask again once
        # the new scores are committed (the stitching worker asked before they were computed).
        ids = sorted(changed)
        transaction.on_commit(lambda: identity_services.hot_deals_notify(contact_ids=ids), robust=True)
    return sorted(changed)


def score_model_recompute(*, model_id: int, now: dt.datetime | None = None) -> int | None:
    """Recompute one model for every contact (a disabled model's scores are deleted). Contacts
    whose score changed are marked for segment re-evaluation. Returns how many changed (None: the
    model is gone)."""
    started = time.monotonic()
    now = now or timezone.now()
    with transaction.atomic():
        lock_model(model_id)
        model = ScoreModel.objects.filter(pk=model_id).first()
        if model is None:
            return None
        results = scores_compute(model=model, contact_ids=None, today=today_utc(now)) if model.enabled else {}
        changed = _write(model=model, results=results, scope=None, now=now)
        _history_prune(model=model, today=today_utc(now))
        _mark_after_commit(changed)
        ScoreModel.objects.filter(pk=model.pk).update(
            computed_on=today_utc(now),
            recomputed_at=now,
            recompute_ms=int((time.monotonic() - started) * 1000),
        )
    return len(changed)


def scores_decay_refresh(*, now: dt.datetime | None = None) -> int:
    """Beat: decay and time frames move scores with no event. Once a UTC day, each enabled model
    whose rules decay is recomputed for the contacts holding a score in it (the only ones whose
    engagement can fall), and those that changed are marked for segments. Returns the changes."""
    now = now or timezone.now()
    today = today_utc(now)
    total = 0
    for model in _enabled_models():
        if model.computed_on == today:
            continue
        if not rules_of(model).decays:
            ScoreModel.objects.filter(pk=model.pk).update(computed_on=today)
            continue
        with transaction.atomic():
            lock_model(model.pk)
            # Only engagement decays; contacts without a row (a safety net: every live contact
            # should have one) are scored too.
            rows = Score.objects.filter(model=model)
            engaged = rows.exclude(engagement=0).values_list("contact_id", flat=True)
            missing = (
                Contact.objects.filter(merged_into__isnull=True)
                .exclude(pk__in=rows.values("contact_id"))
                .values_list("pk", flat=True)
            )
            scope = sorted({*engaged, *missing})
            changed: list[int] = []
            for start in range(0, len(scope), WRITE_CHUNK):
                chunk = scope[start : start + WRITE_CHUNK]
                results = scores_compute(model=model, contact_ids=chunk, today=today)
                changed.extend(_write(model=model, results=results, scope=chunk, now=now))
            _history_prune(model=model, today=today)
            _mark_after_commit(changed)
            ScoreModel.objects.filter(pk=model.pk).update(computed_on=today)
        total += len(changed)
    return total
