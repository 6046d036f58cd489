"""Settings → Traits (Admin and Marketing), and the contact and company pages' lazy trait slots."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import selectors as contact_selectors
from core.errors import domain_errors
from traits import permissions, selectors, services
from traits.forms import TraitForm


def _ensure_manage(request: HttpRequest) -> None:
    if not permissions.can_manage(request.user):
        raise PermissionDenied("Only Admin and Marketing may change computed traits.")


@require_GET
@domain_errors
def trait_list(request: HttpRequest) -> HttpResponse:
    _ensure_manage(request)
    traits = selectors.trait_list(user=request.user)
    return render(request, "traits/trait_list.html", {"traits": traits})


@require_http_methods(["GET", "POST"])
@domain_errors
def trait_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _ensure_manage(request)
    trait = selectors.trait_get(user=request.user, trait_id=pk) if pk else None
    if request.method == "GET":
        form = TraitForm(initial=TraitForm.initial_for(trait) if trait else {}, instance=trait)
        return render(request, "traits/trait_form.html", {"form": form, "trait": trait})
    form = TraitForm(request.POST, instance=trait)
    if form.is_valid():
        try:
            if trait is None:
                trait = services.trait_definition_create(actor=request.user, values=form.values())
                messages.success(request, f"Created “{trait.name}”: its values are being computed.")
            else:
                trait = services.trait_definition_update(
                    actor=request.user, trait=trait, values=form.values()
                )
                messages.success(request, f"Saved “{trait.name}”: its values are being recomputed.")
            return redirect("traits:list")
        except ValidationError as exc:
            form.add_service_errors(exc)
    return render(request, "traits/trait_form.html", {"form": form, "trait": trait}, status=422)


@require_POST
@domain_errors
def trait_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_manage(request)
    trait = selectors.trait_get(user=request.user, trait_id=pk)
    try:
        services.trait_definition_delete(actor=request.user, trait=trait)
        messages.success(request, f"Deleted “{trait.name}” and its values.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("traits:list")


@require_POST
@domain_errors
def trait_recompute(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_manage(request)
    trait = selectors.trait_get(user=request.user, trait_id=pk)
    services.trait_recompute_request(actor=request.user, trait=trait)
    messages.success(request, f"Recomputing “{trait.name}” for everyone.")
    return redirect("traits:list")


@require_GET
@domain_errors
def contact_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact page's lazy "Traits" slot."""
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    rows = selectors.contact_trait_rows(user=request.user, contact_id=contact.pk)
    return render(
        request,
        "traits/values_panel.html",
        {"rows": rows, "can_manage": permissions.can_manage(request.user), "noun": "contact"},
    )


@require_GET
@domain_errors
def company_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The company page's lazy "Traits" slot: account-level traits."""
    company = contact_selectors.company_get(user=request.user, company_id=pk)
    rows = selectors.company_trait_rows(user=request.user, company_id=company.pk)
    return render(
        request,
        "traits/values_panel.html",
        {"rows": rows, "can_manage": permissions.can_manage(request.user), "noun": "company"},
    )
