import json

from django import forms

from core.forms import style_fields

FIT_EXAMPLE = '[{"label": "VP or Head", "field": "title", "op": "contains", "value": "VP", "points": 10}]'
ENGAGEMENT_EXAMPLE = (
    '[{"label": "Pricing views", "kind": "page", "match": "contains", "path": "/pricing", '
    '"points": 5, "max_points": 20, "half_life_days": 30}]'
)


class _RulesField(forms.CharField):
    """A JSON array of rules; its shape is checked by the service, whose errors land on the field."""

    widget = forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "font-monospace"})

    def __init__(self, *, max_length: int, **kwargs) -> None:
        super().__init__(**kwargs)
        # The limit is on the text typed, checked before parsing: CharField's own validator would
        # measure the parsed value (len() of a list, or a TypeError on a number).
        self.text_max_length = max_length

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return []
        if len(text) > self.text_max_length:
            raise forms.ValidationError(f"At most {self.text_max_length:,} characters ({len(text):,} given).")
        try:
            rules = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc
        if not isinstance(rules, list):
            raise forms.ValidationError("Expected a JSON list of rules: [ {...}, {...} ].")
        return rules

    def prepare_value(self, value):
        if isinstance(value, list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value


class ScoreModelForm(forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Give the model a name."})
    description = forms.CharField(max_length=500, required=False)
    enabled = forms.BooleanField(required=False, initial=True)
    fit_rules = _RulesField(required=False, max_length=200_000, help_text=f"For example {FIT_EXAMPLE}")
    engagement_rules = _RulesField(
        required=False, max_length=200_000, help_text=f"For example {ENGAGEMENT_EXAMPLE}"
    )
    fit_cap = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, help_text="Empty: no cap.")
    engagement_cap = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, help_text="Empty: no cap."
    )
    total_cap = forms.IntegerField(min_value=1, max_value=1_000_000, initial=100)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        style_fields(self)
        for name in ("fit_rules", "engagement_rules"):
            self.fields[name].widget.attrs["class"] += " font-monospace"
