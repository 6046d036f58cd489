from django import forms

from core.forms import style_fields
from pipeline.models import Pipeline

from .models import Goal


class PredictionModelForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": "Give the model a name."})
    goal = forms.ChoiceField(choices=Goal.choices, initial=Goal.DEAL_WON)
    event_name = forms.CharField(
        max_length=200, required=False, help_text="For an event goal: the track event, e.g. Order Completed."
    )
    pipeline = forms.ModelChoiceField(
        queryset=Pipeline.objects.order_by("position", "pk"),
        required=False,
        empty_label="Any pipeline",
        help_text="For a deal goal: only this pipeline's deals count.",
    )
    horizon_days = forms.IntegerField(min_value=1, max_value=365, initial=30, label="Within (days)")
    min_positives = forms.IntegerField(min_value=1, max_value=1_000_000, initial=100)
    min_negatives = forms.IntegerField(min_value=1, max_value=1_000_000, initial=100)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        style_fields(self)

    def clean(self):
        data = super().clean()
        if data.get("goal") == Goal.EVENT and not (data.get("event_name") or "").strip():
            self.add_error("event_name", "Name the track event to predict.")
        return data
