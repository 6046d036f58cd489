"""Duplicate finder and the side-by-side merge of two contacts."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from contacts import permissions
from contacts.models import Contact
from contacts.services import merging
from core.errors import Conflict, Forbidden
from core.params import parse_id


def _ensure_may_merge(request: HttpRequest) -> None:
    if not permissions.can_merge(request.user):
        raise PermissionDenied("Your role may not merge contacts.")


@require_GET
def duplicate_list(request: HttpRequest) -> HttpResponse:
    _ensure_may_merge(request)
    groups = merging.contact_duplicate_groups(user=request.user)
    for group in groups:
        # Suggested winner: the oldest record (as the identity worker picks), the others fold into it.
        keeper = group.contacts[0] if group.contacts else None
        group.merges = [
            (
                other,
                permissions.can_change(request.user, keeper) and permissions.can_change(request.user, other),
            )
            for other in group.contacts[1:]
        ]
    return render(request, "contacts/duplicates.html", {"groups": groups})


def _pair(request: HttpRequest) -> tuple[Contact, Contact]:
    params = request.POST if request.method == "POST" else request.GET
    winner_id, loser_id = parse_id(params.get("winner")), parse_id(params.get("loser"))
    if winner_id is None or loser_id is None:
        raise Http404("Choose two contacts to merge.")
    contacts = Contact.objects.select_related("company", "owner").in_bulk([winner_id, loser_id])
    if winner_id == loser_id or len(contacts) != 2:
        raise Http404("Choose two different, existing contacts.")
    return contacts[winner_id], contacts[loser_id]


def _rows(winner: Contact, loser: Contact, choices: dict[str, str]) -> list[dict]:
    labels = {name: Contact._meta.get_field(name).verbose_name.capitalize() for name in merging.MERGE_FIELDS}
    rows = []
    for name in merging.MERGE_FIELDS:
        a, b = getattr(winner, name), getattr(loser, name)
        if name == "lifecycle_stage":
            a, b = winner.get_lifecycle_stage_display(), loser.get_lifecycle_stage_display()
        rows.append({"name": name, "label": labels[name], "winner": a, "loser": b, "choice": choices[name]})
    custom_labels = merging.custom_field_labels()
    for key in sorted(set(winner.custom_fields) | set(loser.custom_fields)):
        name = f"custom_fields.{key}"
        rows.append(
            {
                "name": name,
                "label": custom_labels.get(key, f"{key} (deleted field)"),
                "winner": winner.custom_fields.get(key),
                "loser": loser.custom_fields.get(key),
                "choice": choices[name],
            }
        )
    for row in rows:
        row["differs"] = row["winner"] != row["loser"]
    return rows


@require_http_methods(["GET", "POST"])
def contact_merge(request: HttpRequest) -> HttpResponse:
    """?winner=&loser=: pick, field by field, which record's value survives; then merge."""
    _ensure_may_merge(request)
    winner, loser = _pair(request)
    if not (permissions.can_change(request.user, winner) and permissions.can_change(request.user, loser)):
        raise PermissionDenied("You may merge only contacts you may change.")
    error = None
    choices = merging.default_choices(winner=winner, loser=loser)
    if request.method == "POST":
        posted = {
            name: request.POST[f"choice:{name}"] for name in choices if f"choice:{name}" in request.POST
        }
        choices.update(posted)
        try:
            merging.contact_merge(winner=winner, loser=loser, field_choices=posted, actor=request.user)
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from None
        except (Conflict, ValidationError) as exc:
            error = exc.message if isinstance(exc, Conflict) else " ".join(exc.messages)
        else:
            messages.success(
                request,
                f"Merged {loser.display_name} (#{loser.pk}) into {winner.display_name} (#{winner.pk}).",
            )
            return redirect("contacts_tools:duplicates")
    context = {
        "winner": winner,
        "loser": loser,
        "rows": _rows(winner, loser, choices),
        "tags": sorted(set(winner.tags) | set(loser.tags)),
        "moving": merging.related_counts(contact=loser),
        "already_merged": loser.merged_into_id is not None,
        "swap_url": reverse("contacts_tools:merge") + f"?winner={loser.pk}&loser={winner.pk}",
        "error": error,
    }
    return render(request, "contacts/merge.html", context, status=400 if error else 200)
