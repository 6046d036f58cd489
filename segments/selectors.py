"""Segment reads: lists, members, previews, the contact page's "why" panel, builder suggestions."""

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Window
from django.db.models.functions import Coalesce
from django.utils import timezone

from contacts import selectors as contact_selectors
from contacts.models import Contact, CustomFieldEntity, CustomFieldType
from core.errors import NotFound
from core.replica import replica_reads
from identity.models import ActivityKind, DailyActivity
from pipeline import selectors as pipeline_selectors
from pipeline.models import Pipeline, Stage

from .definition import compiler
from .models import ChangeKind, Membership, MembershipChange, Segment, SizeSample, Webhook, WebhookDelivery
from .permissions import ensure_can_manage, ensure_can_read

PREVIEW_SAMPLE = 10


def _ctx(scope: list[int] | None = None) -> compiler.Context:
    return compiler.Context(today=timezone.now().astimezone(dt.UTC).date(), scope=scope)


def segment_list(*, user: AbstractBaseUser) -> QuerySet[Segment]:
    ensure_can_read(user)
    return Segment.objects.order_by("name", "pk")


def segment_get(*, user: AbstractBaseUser, segment_id: int) -> Segment:
    ensure_can_read(user)
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(f"Segment {segment_id} does not exist.")
    return segment


def segment_members(*, user: AbstractBaseUser, segment: Segment) -> QuerySet[Contact]:
    """Current members, most recent entries first."""
    ensure_can_read(user)
    current = Membership.objects.filter(segment=segment, exited_at__isnull=True).values("contact_id")
    return Contact.objects.filter(pk__in=current).select_related("company").order_by("-pk")


@replica_reads  # the builder's live count: a heavy read that may be a little behind
def segment_preview(
    *, user: AbstractBaseUser, definition: Any, sample: int = PREVIEW_SAMPLE
) -> dict[str, Any]:
    """Count and a sample of the contacts an unsaved definition matches (DefinitionError if bad)."""
    ensure_can_read(user)
    tree = compiler.parse(definition)
    compiler.check_values(tree)  # an owner or option that does not exist: say so, not "0"
    matching = compiler.matching_contacts(tree, _ctx())
    # One query: the window count rides along with the sample rows (running the definition
    # twice, for count() and for the sample, doubled the preview's time).
    rows = list(matching.annotate(preview_total=Window(Count("pk"))).order_by("-pk")[:sample])
    return {"count": rows[0].preview_total if rows else 0, "sample": rows}


def contact_segments(*, user: AbstractBaseUser, contact: Contact) -> list[dict[str, Any]]:
    """The contact's current segments, each with the conditions that held ("why")."""
    ensure_can_read(user)
    memberships = list(
        Membership.objects.filter(contact=contact, exited_at__isnull=True)
        .select_related("segment")
        .order_by("segment__name", "segment_id")
    )
    names = dict(Segment.objects.values_list("pk", "name"))
    trees: dict[int, compiler.Group] = {}
    for membership in memberships:
        if not membership.segment.is_static:
            try:
                trees[membership.pk] = compiler.parse(membership.segment.definition)
            except compiler.DefinitionError:
                trees[membership.pk] = compiler.Group(path="definition", op="and")
    labels = value_labels(trees=list(trees.values()))
    rows = []
    for membership in memberships:
        why = None
        if tree := trees.get(membership.pk):
            flags = compiler.leaf_flags(tree, _ctx(), contact_id=contact.pk)
            why = compiler.outline(tree, flags=flags, segment_names=names, value_labels=labels)
        rows.append({"segment": membership.segment, "entered_at": membership.entered_at, "why": why})
    return rows


def segment_changes(*, segment: Segment, limit: int = 50) -> list[MembershipChange]:
    return list(
        MembershipChange.objects.filter(segment=segment)
        .select_related("contact")
        .order_by("-at", "-pk")[:limit]
    )


def segment_sizes(*, segment: Segment, days: int = 30) -> list[SizeSample]:
    since = timezone.now() - dt.timedelta(days=days)
    samples = SizeSample.objects.filter(segment=segment, at__gte=since).order_by("-at")[:500]
    return list(reversed(samples))


# Webhooks and their delivery log are for the roles that manage them: a webhook URL is often a
# credential (Slack, Zapier and similar hooks carry their token in the path).
def segment_webhooks(*, user: AbstractBaseUser, segment: Segment) -> list[Webhook]:
    ensure_can_manage(user)
    return list(Webhook.objects.filter(segment=segment).order_by("pk"))


def webhook_get(*, user: AbstractBaseUser, webhook_id: int) -> Webhook:
    ensure_can_read(user)
    hook = Webhook.objects.select_related("segment").filter(pk=webhook_id).first()
    if hook is None:
        raise NotFound(f"Webhook {webhook_id} does not exist.")
    return hook


def webhook_delivery_list(*, user: AbstractBaseUser, segment: Segment) -> QuerySet[WebhookDelivery]:
    ensure_can_manage(user)
    return WebhookDelivery.objects.filter(webhook__segment=segment).order_by("-created_at", "-pk")


def webhook_deliveries(*, user: AbstractBaseUser, segment: Segment, limit: int = 30) -> list[WebhookDelivery]:
    ensure_can_manage(user)
    return list(
        WebhookDelivery.objects.filter(webhook__segment=segment)
        .select_related("webhook")
        .order_by("-created_at", "-pk")[:limit]
    )


def segment_names(*, segment_ids: set[int]) -> dict[int, str]:
    return dict(Segment.objects.filter(pk__in=segment_ids).values_list("pk", "name"))


SUGGESTIONS_TTL = 300


def builder_suggestions() -> dict[str, list[str]]:
    """Event names, page paths and trait keys seen in the data, for the builder's pickers.
    Cached: they feed autocompletion, where a few minutes' lag is harmless."""
    cached = cache.get("segments:suggestions")
    if cached is not None:
        return cached
    since = timezone.now().date() - dt.timedelta(days=90)

    def top(kind: str) -> list[str]:
        rows = (
            DailyActivity.objects.filter(kind=kind, day__gte=since)
            .values("key")
            .annotate(n=Sum("count"))
            .order_by("-n")[:200]
        )
        return sorted(r["key"] for r in rows if r["key"])

    with connection.cursor() as cursor:
        # A sample keeps this cheap on large tables; keys are few and repeat across contacts.
        cursor.execute(
            "SELECT DISTINCT k FROM (SELECT traits FROM contacts_contact "
            "WHERE jsonb_typeof(traits) = 'object' LIMIT 5000) t, jsonb_object_keys(t.traits) k "
            "ORDER BY k LIMIT 200"
        )
        trait_keys = [row[0] for row in cursor.fetchall()]
    suggestions = {
        "events": top(ActivityKind.EVENT),
        "paths": top(ActivityKind.PAGE),
        "traits": trait_keys,
    }
    cache.set("segments:suggestions", suggestions, SUGGESTIONS_TTL)
    return suggestions


def memberships_of_contacts(*, contact_ids: list[int]) -> list[dict[str, Any]]:
    """Every membership row (current and past) of these contacts, for privacy's export."""
    rows = Membership.objects.filter(contact_id__in=contact_ids).select_related("segment").order_by("pk")
    return [
        {
            "segment_id": m.segment_id,
            "segment": m.segment.name,
            "contact_id": m.contact_id,
            "entered_at": m.entered_at,
            "exited_at": m.exited_at,
        }
        for m in rows
    ]


def segment_movements(
    *, user: AbstractBaseUser, now: dt.datetime | None = None, days: int = 7, limit: int = 10
) -> list[Segment]:
    """Segments that people entered or left in the last `days` days, the busiest first; each
    carries `entered` and `exited`. One query: a count per segment on the change log's
    (segment, -at) index, so the cost follows the number of segments, not the log's size."""
    ensure_can_read(user)
    since = (now or timezone.now()) - dt.timedelta(days=days)

    def moved(kind: str) -> Coalesce:
        changes = (
            MembershipChange.objects.filter(segment=OuterRef("pk"), kind=kind, at__gte=since)
            .order_by()
            .values("segment")
            .annotate(n=Count("*"))
            .values("n")
        )
        return Coalesce(Subquery(changes, output_field=IntegerField()), 0)

    segments = (
        Segment.objects.annotate(entered=moved(ChangeKind.ENTERED), exited=moved(ChangeKind.EXITED))
        .annotate(moves=F("entered") + F("exited"))
        .filter(moves__gt=0)
        .order_by("-moves", "name", "pk")
    )
    return list(segments[:limit])


# A select holds this many tags at most; more than that is no longer a picker.
MAX_TAG_CHOICES = 500


def builder_choices(*, user: AbstractBaseUser, kinds: set[str]) -> dict[str, Any]:
    """The real values of the builder's choice fields, as (stored code, label) for its selects:
    lifecycle stages, owners and contact custom fields (all for the field list, the choice ones
    with their options) for field conditions; deal statuses, owners, pipelines and stages for
    deal conditions; the tags in use for tag conditions. Only the condition types in `kinds` are
    looked up (the tag list reads every live contact). Not cached, unlike the suggestions: a
    select that lacks a tag or stage made a minute ago cannot pick it."""
    choices: dict[str, Any] = {"field": {}, "custom_fields": [], "custom_kinds": {}, "deal": {}, "tag": []}
    owners = (
        [(str(u.pk), _owner_label(u)) for u in contact_selectors.owner_choices()]
        if kinds & {"field", "deal"}
        else []
    )
    if "field" in kinds:
        custom = contact_selectors.custom_field_definitions(entity=CustomFieldEntity.CONTACT)
        field = {name: list(values.items()) for name, values in compiler.CONTACT_CHOICES.items()}
        field["owner"] = owners
        for f in custom:
            if f.field_type == CustomFieldType.CHOICE:
                field[f"custom.{f.key}"] = [(c, c) for c in f.choices]
        choices["field"] = field
        choices["custom_fields"] = [(f"custom.{f.key}", f.label) for f in custom]
        choices["custom_kinds"] = {f"custom.{f.key}": f.field_type for f in custom}
    if "deal" in kinds:
        pipelines = pipeline_selectors.pipeline_list(user=user)
        deal = {name: list(values.items()) for name, values in compiler.DEAL_CHOICES.items()}
        deal["owner"] = owners
        deal["pipeline"] = [(str(p.pk), p.name) for p in pipelines]
        deal["stage"] = [(str(s.pk), f"{p.name} / {s.name}") for p in pipelines for s in p.stages.all()]
        choices["deal"] = deal
    if "tag" in kinds:
        with connection.cursor() as cursor:
            # Tags live in an array column: the distinct values on live contacts are the choices.
            cursor.execute(
                "SELECT DISTINCT t FROM contacts_contact, unnest(tags) t "
                "WHERE merged_into_id IS NULL AND tags <> '{}' ORDER BY t LIMIT %s",
                [MAX_TAG_CHOICES],
            )
            choices["tag"] = [(row[0], row[0]) for row in cursor.fetchall()]
    return choices


def _owner_label(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


def value_labels(*, trees: list[compiler.Group]) -> dict[str, dict[int, str]]:
    """Names for the owner, stage and pipeline ids the definitions compare with (compiler.describe),
    one query per kind that appears."""
    wanted: dict[str, set[int]] = {}
    for tree in trees:
        for name, ids in compiler.referenced_ids(tree).items():
            wanted.setdefault(name, set()).update(ids)
    labels: dict[str, dict[int, str]] = {}
    if wanted.get("owner"):
        labels["owner"] = {
            u.pk: _owner_label(u) for u in get_user_model().objects.filter(pk__in=wanted["owner"])
        }
    if wanted.get("stage"):
        stages = Stage.objects.filter(pk__in=wanted["stage"]).select_related("pipeline")
        labels["stage"] = {s.pk: str(s) for s in stages}
    if wanted.get("pipeline"):
        labels["pipeline"] = dict(
            Pipeline.objects.filter(pk__in=wanted["pipeline"]).values_list("pk", "name")
        )
    return labels
