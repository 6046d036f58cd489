"""Hot deals: when a deal's person matches a hot rule (e.g. /pricing viewed twice in 24 h), the deal's
owner is told, once per deal per rule window.

The stitching worker calls `hot_deals_after_views` after each batch: it checks the contacts that
viewed a page whose path an enabled rule names, and those the batch merged into (a merge brings
history along: pricing views made anonymously count once the visitor signs in). A view of any other
page cannot turn a rule true, so it checks nothing: a deal opened after its person's pricing views
is flagged at their next matching view or merge, not at an unrelated one. A person's merge (the
duplicates page) calls `hot_deals_after_merge` once it is committed. The rule is evaluated on
`ContactEvent` (exact timestamps; the daily rollups cannot answer "within 24 hours"). Who was told
when lives in `HotDealAlert`, claimed by one conditional upsert per rule: concurrent or repeated
calls notify once.
"""

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.permissions import ensure_admin
from accounts.services import notifications
from contacts.models import Contact
from core.errors import Conflict, DomainError
from identity.models import ContactEvent, HotDealAlert, HotRule
from pipeline import selectors as pipeline_selectors
from pipeline.models import Deal

RULE_FIELDS = ("name", "path_contains", "min_views", "window_hours", "score_model_id", "min_score", "enabled")


# --- the rules (Admins edit them in Settings)

ADMIN_ONLY = "Only Admins change hot-deal rules."


def _clean_rule(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = str(values.get("name") or "").strip()
    path = str(values.get("path_contains") or "").strip()
    if not name:
        errors["name"] = ["Give the rule a name (it labels the signal: “viewed pricing 3x this week”)."]
    if not path:
        errors["path_contains"] = ["Say what the page path must contain, e.g. /pricing."]
    try:
        min_views = int(values.get("min_views", 2))
        if min_views < 1:
            raise ValueError
    except (TypeError, ValueError):
        errors["min_views"] = ["A whole number of views, 1 or more."]
        min_views = 0
    try:
        window_hours = int(values.get("window_hours", 24))
        if not 1 <= window_hours <= 720:
            raise ValueError
    except (TypeError, ValueError):
        errors["window_hours"] = ["Between 1 and 720 hours (30 days)."]
        window_hours = 0
    score_model_id, min_score = _clean_score(values, errors)
    if errors:
        raise DomainError("The rule is not valid.", fields=errors)
    return {
        "name": name[:60],
        "path_contains": path[:200],
        "min_views": min_views,
        "window_hours": window_hours,
        "score_model_id": score_model_id,
        "min_score": min_score,
        "enabled": bool(values.get("enabled", True)),
    }


def score_model_choices() -> list[tuple[int, str]]:
    """(id, name) of the lead-score models a rule may name, from settings.HOT_RULE_SCORE_HOOKS
    ("choices"; provider: scoring.selectors.score_model_choices); [] without the scoring app."""
    path = getattr(settings, "HOT_RULE_SCORE_HOOKS", {}).get("choices")
    return import_string(path)() if path else []


def _clean_score(values: dict[str, Any], errors: dict[str, list[str]]) -> tuple[int | None, int | None]:
    """The optional "and the lead score in model M is at least N": both or neither."""
    model_id, min_score = values.get("score_model_id"), values.get("min_score")
    if model_id in (None, "") and min_score in (None, ""):
        return None, None
    try:
        model_id = int(model_id)
        if model_id not in dict(score_model_choices()):
            raise ValueError
    except (TypeError, ValueError):
        errors["score_model_id"] = ["Pick a score model for the minimum score (or clear the minimum)."]
        model_id = None
    try:
        min_score = int(min_score)
        if not 0 <= min_score <= 1_000_000:
            raise ValueError
    except (TypeError, ValueError):
        errors["min_score"] = ["A whole number of points, 0 or more, with the score model."]
        min_score = None
    return model_id, min_score


@transaction.atomic
def hot_rule_create(*, actor: AbstractBaseUser | None, **values: Any) -> HotRule:
    ensure_admin(actor, message=ADMIN_ONLY)
    cleaned = _clean_rule(values)
    if HotRule.objects.filter(name__iexact=cleaned["name"]).exists():
        raise Conflict("A rule with this name exists.", fields={"name": ["A rule with this name exists."]})
    return HotRule.objects.create(**cleaned)


@transaction.atomic
def hot_rule_update(*, actor: AbstractBaseUser | None, rule: HotRule, **values: Any) -> HotRule:
    ensure_admin(actor, message=ADMIN_ONLY)
    cleaned = _clean_rule(values)
    if HotRule.objects.filter(name__iexact=cleaned["name"]).exclude(pk=rule.pk).exists():
        raise Conflict("A rule with this name exists.", fields={"name": ["A rule with this name exists."]})
    rule = HotRule.objects.select_for_update().get(pk=rule.pk)
    for name, value in cleaned.items():
        setattr(rule, name, value)
    rule.save()
    return rule


@transaction.atomic
def hot_rule_delete(*, actor: AbstractBaseUser | None, rule: HotRule) -> None:
    ensure_admin(actor, message=ADMIN_ONLY)
    HotRule.objects.filter(pk=rule.pk).delete()


# --- matching and notifying


def _contacts_matching(rule: HotRule, *, contact_ids: list[int], now: datetime) -> dict[int, int]:
    """contact id -> views matching the rule within its window ending at `now`, for those at or
    over the threshold. Served by the (contact, -timestamp) index: one range per contact."""
    since = now - timedelta(hours=rule.window_hours)
    views = dict(
        ContactEvent.objects.filter(
            contact_id__in=contact_ids,
            type="page",
            is_bot=False,
            timestamp__gt=since,
            timestamp__lte=now,
            path__icontains=rule.path_contains,
        )
        .values("contact_id")
        .annotate(views=Count("pk"))
        .filter(views__gte=rule.min_views)
        .values_list("contact_id", "views")
    )
    if rule.min_score is not None and views:
        scoring = _scoring_at_least(rule, contact_ids=list(views))
        views = {cid: n for cid, n in views.items() if cid in scoring}
    return views


def _scoring_at_least(rule: HotRule, *, contact_ids: list[int]) -> set[int]:
    """Of these contacts, those whose lead score in the rule's model is at least its minimum
    (settings.HOT_RULE_SCORE_HOOKS "scoring"; provider: scoring.selectors.contacts_scoring).
    Without the hook no one qualifies: a rule that asks for a score is never true unscored."""
    path = getattr(settings, "HOT_RULE_SCORE_HOOKS", {}).get("scoring")
    if not path:
        return set()
    scoring = import_string(path)
    rows = scoring(model_id=rule.score_model_id, op="gte", value=rule.min_score, contact_ids=contact_ids)
    found = {row["contact_id"] for row in rows}
    if rule.min_score <= 0:  # no score row is a score of 0
        found |= set(contact_ids)
    return found


def _claim(rule: HotRule, *, deal_ids: list[int], now: datetime) -> set[int]:
    """Record that `rule` alerted these deals at `now`, except those it alerted within its window;
    return the deals claimed. One statement: the unique (rule, deal) row serialises concurrent
    callers, and the loser of a race sees the winner's fresh `notified_at` and claims nothing."""
    if not deal_ids:
        return set()
    table = connection.ops.quote_name(HotDealAlert._meta.db_table)
    statement = f"""
        INSERT INTO {table} (rule_id, deal_id, notified_at)
        SELECT %s, deal_id, %s FROM unnest(%s::bigint[]) AS deal_id
        ON CONFLICT (rule_id, deal_id) DO UPDATE SET notified_at = EXCLUDED.notified_at
        WHERE {table}.notified_at <= EXCLUDED.notified_at - make_interval(hours => %s)
        RETURNING deal_id
    """  # the table name is our model's; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(statement, [rule.pk, now, sorted(deal_ids), rule.window_hours])
        return {row[0] for row in cursor.fetchall()}


def hot_deals_notify(*, contact_ids: Collection[int], now: datetime | None = None) -> int:
    """Tell owners about their open deals whose people (primary contact or participants) among
    `contact_ids` match an enabled hot rule now. Once per deal per rule window: calling again,
    or concurrently, notifies no one twice. Deals without an active owner are skipped (and not
    claimed, so an owner assigned later is told). Returns the number of notifications created."""
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    if not ids:
        return 0
    rules = list(HotRule.objects.filter(enabled=True).order_by("pk"))
    if not rules:
        return 0
    # Most people (visitors) are on no open deal: find the deals first, then match the rules
    # against the people on them only.
    on_deals = [
        d
        for d in pipeline_selectors.open_deals_for_contacts(contact_ids=ids)
        if d.owner_id is not None and d.owner.is_active
    ]
    if not on_deals:
        return 0
    people = pipeline_selectors.deal_contact_ids(deal_ids=[d.pk for d in on_deals])
    wanted = set(ids)
    candidates = sorted({cid for cids in people.values() for cid in cids} & wanted)
    created = 0
    for rule in rules:
        matched = _contacts_matching(rule, contact_ids=candidates, now=now)
        if not matched:
            continue
        deals = [d for d in on_deals if any(cid in matched for cid in people.get(d.pk, []))]
        if not deals:
            continue
        names = {c.pk: c.display_name for c in Contact.objects.filter(pk__in=matched.keys())}
        with transaction.atomic():
            claimed = _claim(rule, deal_ids=[d.pk for d in deals], now=now)
            for deal in deals:
                if deal.pk in claimed:
                    _notify(rule, deal=deal, matched=matched, people=people.get(deal.pk, []), names=names)
                    created += 1
    return created


def hot_deals_after_views(*, viewed: dict[int, set[str]], merged: Collection[int] = ()) -> int:
    """The stitching worker's call, once its batch is committed: `viewed` maps the contacts that
    viewed pages to the paths they viewed, `merged` the contacts a merge brought history to. A
    contact can only have turned a rule true by a view whose path the rule names (or by a merge),
    so the rest are not looked at; `hot_deals_notify` for those that can."""
    needles = list(HotRule.objects.filter(enabled=True).values_list("path_contains", flat=True))
    if not needles:
        return 0
    contact_ids = set(merged)
    for contact_id, paths in viewed.items():
        if any(_path_contains(path, needle) for needle in needles for path in paths):
            contact_ids.add(contact_id)
    return hot_deals_notify(contact_ids=contact_ids)


def _path_contains(path: str, needle: str) -> bool:
    # As `path__icontains` (UPPER(path) LIKE UPPER(%needle%)), or wider: a false match only
    # costs a query, a missed one a notification.
    return needle.upper() in path.upper() or needle.lower() in path.lower()


def hot_deals_after_merge(*, contact_id: int) -> int:
    """`hot_deals_notify` for the contact a committed merge folded history into, or for the one
    it has been merged into since (a tombstone holds no events)."""
    merged_into = Contact.objects.filter(pk=contact_id).values_list("merged_into_id", flat=True).first()
    return hot_deals_notify(contact_ids=[merged_into or contact_id])


def _notify(rule: HotRule, *, deal: Deal, matched: dict[int, int], people: list[int], names: dict) -> None:
    hottest = max((cid for cid in people if cid in matched), key=lambda cid: matched[cid])
    who = names.get(hottest) or f"Contact #{hottest}"
    notifications.notification_create(
        user=deal.owner,
        title=f"Hot deal: {deal.title}",
        body=(
            f"{who} viewed pages with “{rule.path_contains}” in the path {matched[hottest]} times "
            f"in the last {rule.window_hours} h"
            + (f", with a lead score of at least {rule.min_score}" if rule.min_score is not None else "")
            + f" (rule “{rule.name}”)."
        ),
        url=reverse("pipeline:deal_detail", args=[deal.pk]),
    )
