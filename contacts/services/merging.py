"""Duplicate contacts: finding likely pairs (a read) and merging two of them (a write).

The merge moves every row that points at the loser, in any app, without this app importing the
others: it walks the reverse relations Django knows about and repoints each foreign key
generically. The loser stays as a tombstone (`merged_into`) so its old URLs redirect.
"""

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import CharField, Count, F, Func, IntegerField, Q, Value
from django.db.models.functions import Length, Lower, Right, Trim
from django.utils.module_loading import import_string
from psycopg import sql

from contacts import permissions
from contacts.models import Contact, ContactMerge, CustomField, MergeReason
from contacts.services import records
from contacts.services.consent import consent_newer
from core.db import lock_rows
from core.errors import Conflict

Actor = AbstractBaseUser | None

# The values a person chooses between, field by field. Tags are always unioned; custom fields are
# chosen per key; CDP data (traits, first/last seen, attribution) is combined by rule.
MERGE_FIELDS = ["first_name", "last_name", "email", "phone", "title", "company", "owner", "lifecycle_stage"]
WINNER, LOSER = "winner", "loser"
# Rows that must keep pointing at the loser: the merge audit itself.
_NOT_MOVED = {(ContactMerge, "winner"), (ContactMerge, "loser")}


def _value(contact: Contact, name: str) -> Any:
    model_field = Contact._meta.get_field(name)
    return getattr(contact, model_field.attname if model_field.is_relation else name)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def default_choices(*, winner: Contact, loser: Contact) -> dict[str, str]:
    """Keep the winner's values, except where the winner has none and the loser has one."""
    choices = {}
    for name in MERGE_FIELDS:
        choices[name] = LOSER if _blank(_value(winner, name)) and not _blank(_value(loser, name)) else WINNER
    for key in sorted(set(winner.custom_fields) | set(loser.custom_fields)):
        choices[f"custom_fields.{key}"] = WINNER if key in winner.custom_fields else LOSER
    return choices


def snapshot(contact: Contact) -> dict[str, Any]:
    """The contact's own values, JSON-ready (related records by id), for the audit row."""
    data = {name: _value(contact, name) for name in MERGE_FIELDS}
    data.update(
        id=contact.pk,
        tags=list(contact.tags),
        custom_fields=dict(contact.custom_fields),
        traits=dict(contact.traits),
        attribution=dict(contact.attribution),
        consent=dict(contact.consent),
        first_seen=contact.first_seen.isoformat() if contact.first_seen else None,
        last_seen=contact.last_seen.isoformat() if contact.last_seen else None,
        is_identified=contact.is_identified,
        created_at=contact.created_at.isoformat(),
    )
    return data


def _relations() -> list[tuple[type[models.Model], str]]:
    """(model, name of its foreign key column to Contact) for every row that can point at a contact.

    Contact._meta.related_objects leaves out relations declared with related_name="+", which the
    other apps use on purpose; get_fields(include_hidden=True) has them all. Many-to-many links
    are rows of their through table, repointed the same way.
    """
    found = []
    for rel in Contact._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete):
            continue
        if rel.many_to_many:
            found.append((rel.through, rel.field.m2m_reverse_field_name()))
        else:
            found.append((rel.related_model, rel.field.name))
    for m2m in Contact._meta.many_to_many:
        found.append((m2m.remote_field.through, m2m.m2m_field_name()))
    return [(model, name) for model, name in found if (model, name) not in _NOT_MOVED]


def related_counts(*, contact: Contact) -> dict[str, int]:
    """Rows in other tables pointing at `contact` (what a merge would move), by table."""
    counts: dict[str, int] = {}
    for model, name in _relations():
        if n := model._default_manager.filter(**{name: contact.pk}).count():
            label = "merged contacts" if model is Contact else str(model._meta.verbose_name_plural)
            counts[label] = counts.get(label, 0) + n
    return counts


def contacts_with_related_rows(*, contact_ids: list[int], ignore: frozenset[str]) -> set[int]:
    """Which of `contact_ids` some row in another table points at, leaving out the relations
    named in `ignore` (see `relation_label`): what tells a record people worked on."""
    found: set[int] = set()
    for model, name in _relations():
        if _label(model, name) in ignore:
            continue
        rows = model._default_manager.filter(**{f"{name}__in": contact_ids}).values_list(name, flat=True)
        found.update(rows.distinct())
    return found


def _label(model: type[models.Model], name: str) -> str:
    return f"{model._meta.label}.{name}"


def _repoint(
    model: type[models.Model], name: str, *, loser: Contact, winner: Contact, moved_pks: list | None = None
) -> tuple[int, int]:
    """Point every `model.name == loser` row at the winner: (moved, left on the loser).

    One UPDATE normally. When a unique constraint refuses it (the winner already has that row,
    say the same segment membership), rows move one by one and the duplicates stay on the
    tombstone, where nothing is lost. The primary keys of the moved rows are appended to
    `moved_pks` when it is given (what a split sends back).
    """
    rows = model._default_manager.filter(**{name: loser.pk})
    try:
        with transaction.atomic():
            if moved_pks is None:
                return rows.update(**{name: winner.pk}), 0
            # The rows are locked by the UPDATE ... RETURNING itself: no other writer can slip a
            # row in between reading the ids and moving them.
            pks = _update_returning_pks(model, name, loser=loser, winner=winner)
            moved_pks.extend(pks)
            return len(pks), 0
    except IntegrityError:
        pass
    moved = left = 0
    for pk in rows.values_list("pk", flat=True).order_by("pk"):
        try:
            with transaction.atomic():
                n = model._default_manager.filter(pk=pk).update(**{name: winner.pk})
        except IntegrityError:
            left += 1
            continue
        moved += n
        if n and moved_pks is not None:
            moved_pks.append(pk)
    return moved, left


def _update_returning_pks(model: type[models.Model], name: str, *, loser: Contact, winner: Contact) -> list:
    meta = model._meta
    column = meta.get_field(name).column
    query = sql.SQL("UPDATE {table} SET {col} = %s WHERE {col} = %s RETURNING {pk}").format(
        table=sql.Identifier(meta.db_table), col=sql.Identifier(column), pk=sql.Identifier(meta.pk.column)
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), [winner.pk, loser.pk])
        return sorted(row[0] for row in cursor.fetchall())


def _check_choices(field_choices: dict[str, str], winner: Contact, loser: Contact) -> None:
    allowed = set(MERGE_FIELDS) | {
        f"custom_fields.{k}" for k in {*winner.custom_fields, *loser.custom_fields}
    }
    errors = [
        f"{name}: choose {WINNER} or {LOSER}"
        for name, side in field_choices.items()
        if name not in allowed or side not in (WINNER, LOSER)
    ]
    if errors:
        raise ValidationError(errors)


def relation_label(model: type[models.Model], name: str) -> str:
    """How `moved` / `moved_ids` and the `untracked` / `staying` arguments name a relation:
    "<app_label>.<Model>.<field>", e.g. "identity.Identity.contact"."""
    return _label(model, name)


@transaction.atomic
def contact_merge(
    *,
    winner: Contact,
    loser: Contact,
    field_choices: dict[str, str],
    actor: Actor,
    reason: str = MergeReason.MANUAL,
    event_id: int | None = None,
    untracked: frozenset[str] = frozenset(),
    staying: frozenset[str] = frozenset(),
) -> Contact:
    """Fold `loser` into `winner` and return the winner.

    `field_choices` maps a field name (or "custom_fields.<key>") to "winner" or "loser": whose
    value survives; a field left out keeps the winner's value unless it has none. Tags are
    unioned. Every row pointing at the loser moves to the winner; the loser becomes a tombstone;
    a ContactMerge row (with the moved rows' primary keys and the winner's values before, so a
    split can undo it) and the winner's field history record it all. Merging a pair again is a
    no-op.

    `actor` None is the system (the identity worker): no permission check. `reason` and
    `event_id` say why an automatic merge happened. Relations named (see `relation_label`) in
    `untracked` move without their ids recorded (high-volume rows the owner knows how to send
    back), and those in `staying` do not move at all (rows that describe the loser itself).

    Apps above this one take part through settings.CONTACT_MERGE_HOOKS (this app imports none of
    them): each is called with winner= and loser= once both are locked, before any row moves,
    and returns the relation labels to add to `untracked` and `staying`.
    """
    if winner.pk == loser.pk:
        raise ValidationError("A contact cannot be merged into itself.")
    # Both rows locked in pk order, whichever is the winner: two merges of the same pair started
    # from opposite ends wait for each other instead of deadlocking.
    locked = {c.pk: c for c in lock_rows(Contact.objects.filter(pk__in=[winner.pk, loser.pk]))}
    if len(locked) != 2:
        raise Conflict("One of the two contacts no longer exists.", code="not_found")
    winner, loser = locked[winner.pk], locked[loser.pk]
    if loser.merged_into_id == winner.pk:
        return winner  # already done
    permissions.ensure_can_change(actor, winner)
    permissions.ensure_can_change(actor, loser)
    if loser.merged_into_id is not None:
        raise Conflict(
            f"Contact {loser.pk} was already merged into contact {loser.merged_into_id}.", code="merged"
        )
    if winner.merged_into_id is not None:
        raise Conflict(f"Contact {winner.pk} was merged into contact {winner.merged_into_id}.", code="merged")
    _check_choices(field_choices, winner, loser)
    # settings.CONTACT_MERGE_HOOKS wires this; identity provides
    # identity.services.merging.contact_merge_prepare.
    for path in getattr(settings, "CONTACT_MERGE_HOOKS", ()):
        more_untracked, more_staying = import_string(path)(winner=winner, loser=loser)
        untracked, staying = untracked | more_untracked, staying | more_staying
    choices = {**default_choices(winner=winner, loser=loser), **field_choices}
    loser_data = snapshot(loser)
    winner_data = snapshot(winner)

    # The loser leaves the live set first, so its email may pass to the winner under the
    # unique-among-live-contacts constraint.
    loser.merged_into = winner
    loser.save(update_fields=["merged_into", "updated_at"])

    moved: dict[str, Any] = {}
    moved_ids: dict[str, list] = {}
    for model, name in _relations():
        label = _label(model, name)
        if label in staying:
            continue
        pks: list | None = None if label in untracked else []
        n, left = _repoint(model, name, loser=loser, winner=winner, moved_pks=pks)
        if n or left:
            moved[label] = {"moved": n, "left": left} if left else n
        if pks:
            moved_ids[label] = pks

    before = {name: _value(winner, name) for name in records.CONTACT_FIELDS}
    fields: dict[str, Any] = {name: getattr(loser, name) for name in MERGE_FIELDS if choices[name] == LOSER}
    fields["tags"] = [*winner.tags, *loser.tags]
    changed = records.contact_prepare(contact=winner, fields=fields)
    custom = {}
    for key in sorted(set(winner.custom_fields) | set(loser.custom_fields)):
        source = loser if choices[f"custom_fields.{key}"] == LOSER else winner
        if key in source.custom_fields:
            custom[key] = source.custom_fields[key]
    if custom != winner.custom_fields:
        winner.custom_fields = custom
        changed.append("custom_fields")
    # CDP data is combined by rule: the winner's traits win key by key, the earliest first touch
    # keeps its attribution (a record's first event need not be a touch: a server's identify),
    # and the person is identified if either record was.
    winner.traits = {**loser.traits, **winner.traits}
    loser_touch, winner_touch = loser.first_touch_at, winner.first_touch_at
    if loser_touch and (winner_touch is None or loser_touch < winner_touch):
        winner.attribution = loser.attribution
    if loser.first_seen and (winner.first_seen is None or loser.first_seen < winner.first_seen):
        winner.first_seen = loser.first_seen
    if loser.last_seen and (winner.last_seen is None or loser.last_seen > winner.last_seen):
        winner.last_seen = loser.last_seen
    winner.is_identified = winner.is_identified or loser.is_identified
    if consent_newer(candidate=loser.consent, current=winner.consent):
        winner.consent = loser.consent
    winner.save()
    records.field_changes_record(
        entity="contact", instance=winner, before=before, changed=changed, actor=actor
    )
    ContactMerge.objects.create(
        winner=winner,
        loser=loser,
        actor=actor,
        field_choices=choices,
        loser_snapshot=loser_data,
        winner_snapshot=winner_data,
        moved=moved,
        moved_ids=moved_ids,
        reason=reason,
        event_id=event_id,
    )
    return winner


# --- finding duplicates (a read)

# How strongly each rule suggests the same person; a pair matched by several rules adds them up.
RULES = {"phone": 3, "name_company": 3, "name_email_local": 2}
RULE_LABELS = {
    "phone": "same phone number",
    "name_company": "same name at the same company",
    "name_email_local": "same name and email name",
}


@dataclass
class DuplicateGroup:
    ids: tuple[int, ...]
    reasons: list[str] = field(default_factory=list)
    score: int = 0
    contacts: list[Contact] = field(default_factory=list)

    @property
    def reason_labels(self) -> list[str]:
        return [RULE_LABELS[r] for r in self.reasons]


class _RegexpReplace(Func):
    function = "regexp_replace"
    output_field = CharField()


def _groups(rule: str, limit: int) -> list[tuple[int, ...]]:
    live = Contact.objects.filter(merged_into__isnull=True, is_identified=True)
    first, last = Lower(Trim("first_name")), Lower(Trim("last_name"))
    if rule == "phone":
        # Digits only, compared on the last 9 so "+44 20 7946 0958" meets "020 7946 0958".
        digits = _RegexpReplace(F("phone"), Value(r"\D"), Value(""), Value("g"))
        query = (
            live.annotate(digits=digits)
            .annotate(n_digits=Length("digits", output_field=IntegerField()))
            .filter(n_digits__gte=7)
            .annotate(k1=Right("digits", 9))
            .values("k1")
        )
    elif rule == "name_company":
        query = (
            live.exclude(company__isnull=True)
            .annotate(k1=first, k2=last)
            .exclude(Q(k1="") | Q(k2=""))
            .values("k1", "k2", "company_id")
        )
    else:
        local = Func(Lower("email"), Value("@"), Value(1), function="split_part", output_field=CharField())
        query = (
            live.exclude(email__isnull=True)
            .annotate(k1=first, k2=last, k3=local)
            .exclude(Q(k1="") | Q(k2=""))
            .values("k1", "k2", "k3")
        )
    query = query.annotate(n=Count("pk"), ids=ArrayAgg("pk", order_by="pk")).filter(n__gt=1).order_by("-n")
    return [tuple(row["ids"]) for row in query[:limit]]


def contact_duplicate_groups(*, user: AbstractBaseUser, limit: int = 50) -> list[DuplicateGroup]:
    """Live, identified contacts that look like the same person, strongest evidence first.

    (Same email cannot happen among live contacts: a unique constraint forbids it.)
    """
    permissions.ensure_can_read(user)
    groups: dict[tuple[int, ...], DuplicateGroup] = {}
    for rule, weight in RULES.items():
        for ids in _groups(rule, limit * 2):
            group = groups.setdefault(ids, DuplicateGroup(ids=ids))
            group.reasons.append(rule)
            group.score += weight
    ranked = sorted(groups.values(), key=lambda g: (-g.score, -len(g.ids), g.ids))[:limit]
    wanted = {pk for g in ranked for pk in g.ids}
    contacts = Contact.objects.select_related("company", "owner").in_bulk(wanted)
    for group in ranked:
        group.contacts = [contacts[pk] for pk in group.ids if pk in contacts]
    return ranked


def custom_field_labels() -> dict[str, str]:
    return {d.key: d.label for d in CustomField.objects.filter(entity="contact")}
