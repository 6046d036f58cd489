"""The reports page: four reports as Chart.js charts with tables of the same numbers."""

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from contacts.selectors import owner_choices
from core.errors import domain_errors
from core.forms import style_fields
from pipeline.selectors import reports as report_selectors
from pipeline.selectors.reports import ReportFilters


class ReportFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    owner = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Owner")

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", "Everyone")] + [(u.pk, u.username) for u in users]
        style_fields(self)

    def filters(self) -> ReportFilters:
        if not self.is_valid():
            return ReportFilters()
        data = self.cleaned_data
        return ReportFilters(date_from=data["date_from"], date_to=data["date_to"], owner_id=data["owner"])


@require_GET
@domain_errors
def reports(request: HttpRequest) -> HttpResponse:
    form = ReportFilterForm(request.GET, users=owner_choices())
    filters = form.filters()
    by_stage = report_selectors.pipeline_by_stage(user=request.user, filters=filters)
    forecast = report_selectors.forecast_by_month(user=request.user, filters=filters)
    win_rates = report_selectors.win_rate_by_owner(user=request.user, filters=filters)
    per_week = report_selectors.activities_per_rep_week(user=request.user, filters=filters)
    weeks = sorted({row["week"] for row in per_week})
    reps = sorted({row["author_name"] or "—" for row in per_week})
    counts = {(row["week"], row["author_name"] or "—"): row["count"] for row in per_week}
    week_table = [{"week": week, "counts": [counts.get((week, rep), 0) for rep in reps]} for week in weeks]
    charts = {
        "stages": {
            "labels": [f"{row['pipeline_name']} / {row['name']}" for row in by_stage],
            "value": [float(row["value"]) for row in by_stage],
            "weighted": [float(row["weighted"]) for row in by_stage],
        },
        "forecast": {
            "labels": [f"{row['month']:%Y-%m}" for row in forecast],
            "value": [float(row["value"]) for row in forecast],
            "weighted": [float(row["weighted"]) for row in forecast],
        },
        "winRate": {
            "labels": [row["owner_name"] or "—" for row in win_rates],
            "rate": [row["win_rate"] for row in win_rates],
        },
        "activities": {
            "labels": [f"{week:%Y-%m-%d}" for week in weeks],
            "series": [
                {"label": rep, "data": [row["counts"][i] for row in week_table]} for i, rep in enumerate(reps)
            ],
        },
    }
    context = {
        "form": form,
        "by_stage": by_stage,
        "forecast": forecast,
        "win_rates": win_rates,
        "reps": reps,
        "week_table": week_table,
        "charts": charts,
    }
    return render(request, "pipeline/reports.html", context)
