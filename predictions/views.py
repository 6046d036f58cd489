"""Settings → Predictions: the models, their quality, training on demand; the contact page slot."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts import selectors as contact_selectors
from core.errors import DomainError, domain_errors

from . import permissions, selectors, services
from .forms import PredictionModelForm
from .models import PredictionModel
from .services import training


def _ensure_manage(request: HttpRequest) -> None:
    if not permissions.can_manage(request.user):
        raise PermissionDenied("Only Admin and Marketing may change predictive models.")


@require_GET
@domain_errors
def model_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "predictions/model_list.html",
        {
            "models": list(selectors.prediction_model_list(user=request.user)),
            "can_manage": permissions.can_manage(request.user),
        },
    )


def _initial(model: PredictionModel) -> dict:
    return {
        "name": model.name,
        "goal": model.goal,
        "event_name": model.event_name,
        "pipeline": model.pipeline_id,
        "horizon_days": model.horizon_days,
        "min_positives": model.min_positives,
        "min_negatives": model.min_negatives,
    }


@require_http_methods(["GET", "POST"])
@domain_errors
def model_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _ensure_manage(request)
    model = selectors.prediction_model_get(user=request.user, model_id=pk) if pk else None
    if request.method == "GET":
        form = PredictionModelForm(initial=_initial(model) if model else None)
    else:
        form = PredictionModelForm(request.POST)
        if form.is_valid():
            try:
                if model is None:
                    model = services.prediction_model_create(actor=request.user, **form.cleaned_data)
                    messages.success(request, "Model saved. Train it to see its quality.")
                else:
                    model = services.prediction_model_update(
                        actor=request.user, model=model, **form.cleaned_data
                    )
                    messages.success(request, "Model saved.")
            except DomainError as exc:
                for name, errors in exc.fields.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
                if not exc.fields:
                    form.add_error(None, exc.message)
            else:
                return redirect(model.get_absolute_url())
    return render(request, "predictions/model_form.html", {"form": form, "model": model})


@require_GET
@domain_errors
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = selectors.prediction_model_get(user=request.user, model_id=pk)
    metrics = model.metrics or {}
    return render(
        request,
        "predictions/model_detail.html",
        {
            "model": model,
            "metrics": metrics,
            "chosen": metrics.get("chosen") or {},
            "candidates": sorted((metrics.get("candidates") or {}).items()),
            "top": selectors.top_predictions(user=request.user, model=model),
            "can_manage": permissions.can_manage(request.user),
            "thresholds": {
                "good_auc": training.GOOD_AUC,
                "good_lift": training.GOOD_LIFT,
                "fair_auc": training.FAIR_AUC,
            },
        },
    )


@require_POST
@domain_errors
def model_train(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_manage(request)
    model = selectors.prediction_model_get(user=request.user, model_id=pk)
    services.prediction_model_train_request(actor=request.user, model=model)
    messages.success(request, "Training queued: this page shows the result when the worker is done.")
    return redirect(model.get_absolute_url())


@require_POST
@domain_errors
def model_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _ensure_manage(request)
    model = selectors.prediction_model_get(user=request.user, model_id=pk)
    services.prediction_model_delete(actor=request.user, model=model)
    messages.success(request, f"Model “{model.name}” deleted.")
    return redirect("predictions:list")


@require_GET
@domain_errors
def contact_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The contact page's lazy "Predictions" slot: each published model's score and its reasons."""
    contact = contact_selectors.contact_get(user=request.user, contact_id=pk)
    rows = selectors.contact_predictions(user=request.user, contact=contact)
    return render(request, "predictions/contact_predictions.html", {"contact": contact, "rows": rows})
