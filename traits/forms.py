"""The Settings → Traits form: fields as people fill them in; the rules are the service's
(`traits.services.trait_definition_clean`), whose errors land on these fields."""

import json

from django import forms
from django.core.exceptions import ValidationError

from core.forms import style_fields
from traits.models import EventType, TraitDefinition, TraitKind


class TraitForm(forms.Form):
    name = forms.CharField(max_length=100)
    key = forms.CharField(max_length=50, help_text="Names the trait in segments, merge fields and the API.")
    kind = forms.ChoiceField(choices=TraitKind.choices)
    event_type = forms.ChoiceField(choices=EventType.choices, required=False, label="Events")
    event_name = forms.CharField(max_length=200, required=False, help_text="Exact name; empty: any.")
    property = forms.CharField(max_length=100, required=False, help_text="The event property read.")
    window_days = forms.IntegerField(required=False, label="Last N days", help_text="Empty: ever.")
    conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON, all must hold: [{"property": "plan", "operator": "eq", "value": "pro"}]; '
        "operators eq, neq, contains, not_contains, gt, gte, lt, lte.",
    )
    source = forms.ModelChoiceField(
        queryset=TraitDefinition.objects.none(), required=False, label="Contact trait rolled up"
    )

    def __init__(self, *args, instance: TraitDefinition | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        sources = TraitDefinition.objects.exclude(kind__startswith="account_")
        if instance is not None:
            sources = sources.exclude(pk=instance.pk)
        self.fields["source"].queryset = sources.order_by("name")
        style_fields(self)

    @staticmethod
    def initial_for(trait: TraitDefinition) -> dict:
        return {
            "name": trait.name,
            "key": trait.key,
            "kind": trait.kind,
            "event_type": trait.event_type,
            "event_name": trait.event_name,
            "property": trait.property_key,
            "window_days": trait.window_days,
            "conditions": json.dumps(trait.conditions) if trait.conditions else "",
            "source": trait.source_id,
        }

    def clean_conditions(self):
        raw = (self.cleaned_data.get("conditions") or "").strip()
        if not raw:
            return []
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        data["source"] = data["source"].pk if data.get("source") else None
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        for name, messages in exc.message_dict.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
