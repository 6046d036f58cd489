"""Settings → Scoring (Admin and Marketing) and the contact page's lazy "Lead scores" panel."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import selectors as contact_selectors
from core.errors import DomainError, domain_errors
from scoring import permissions, selectors, services
from scoring.forms import ScoreModelForm


@require_GET
@domain_errors
def model_list(request: HttpRequest) -> HttpResponse:
    permissions.ensure_can_manage(request.user)
    models = selectors.score_model_list(user=request.user)
    return render(request, "scoring/model_list.html", {"models": models})


@require_http_methods(["GET", "POST"])
@domain_errors
def model_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    permissions.ensure_can_manage(request.user)
    model = selectors.score_model_get(user=request.user, model_id=pk) if pk else None
    if request.method == "GET":
        initial = {}
        if model is not None:
            initial = {name: getattr(model, name) for name in ScoreModelForm.base_fields}
        return render(
            request, "scoring/model_form.html", {"form": ScoreModelForm(initial=initial), "model": model}
        )
    form = ScoreModelForm(request.POST)
    if form.is_valid():
        try:
            if model is None:
                model = services.score_model_create(actor=request.user, **form.cleaned_data)
            else:
                model = services.score_model_update(actor=request.user, model=model, **form.cleaned_data)
        except DomainError as exc:
            for name, problems in exc.fields.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"Score model “{model.name}” saved; its scores are being recomputed.")
            return redirect("scoring:list")
    return render(request, "scoring/model_form.html", {"form": form, "model": model}, status=422)


@require_POST
@domain_errors
def model_delete(request: HttpRequest, pk: int) -> HttpResponse:
    model = selectors.score_model_get(user=request.user, model_id=pk)
    services.score_model_delete(actor=request.user, model=model)
    messages.success(request, f"Score model “{model.name}” deleted with its scores.")
    return redirect("scoring:list")


@require_GET
@domain_errors
def contact_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact page's lazy "Lead scores" slot: each model's score and the rules behind it."""
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    scores = selectors.contact_scores(user=request.user, contact_id=contact.pk)
    return render(request, "scoring/contact_scores.html", {"contact": contact, "scores": scores})
