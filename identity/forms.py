from django import forms

from identity.models import HotRule, IdentityKind, WarningKind
from identity.services import hot

_SMALL = {"class": "form-control form-control-sm"}


class HotRuleForm(forms.Form):
    name = forms.CharField(max_length=60, widget=forms.TextInput(attrs={**_SMALL, "placeholder": "pricing"}))
    path_contains = forms.CharField(
        max_length=200,
        label="Path contains",
        widget=forms.TextInput(attrs={**_SMALL, "placeholder": "/pricing"}),
    )
    min_views = forms.IntegerField(
        min_value=1, initial=2, label="Views", widget=forms.NumberInput(attrs=_SMALL)
    )
    window_hours = forms.IntegerField(
        min_value=1, max_value=720, initial=24, label="Within (hours)", widget=forms.NumberInput(attrs=_SMALL)
    )
    score_model_id = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="And lead score in",
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    min_score = forms.IntegerField(
        required=False, min_value=0, label="at least", widget=forms.NumberInput(attrs=_SMALL)
    )
    enabled = forms.BooleanField(
        required=False, initial=True, widget=forms.CheckboxInput(attrs={"class": "form-check-input"})
    )

    def __init__(self, *args, instance: HotRule | None = None, form_id: str = "", **kwargs) -> None:
        if instance is not None:
            kwargs.setdefault("initial", {name: getattr(instance, name) for name in self.base_fields})
        super().__init__(*args, **kwargs)
        # The lead-score models come from the scoring app, through a settings hook (hot.py).
        self.fields["score_model_id"].choices = [("", "—"), *hot.score_model_choices()]
        if form_id:  # a table row's inputs belong to the row's form, which cannot wrap a <tr>
            for field in self.fields.values():
                field.widget.attrs["form"] = form_id


class BlockedValueForm(forms.Form):
    value = forms.CharField(
        max_length=300,
        strip=True,
        required=False,  # the empty string is a legitimate junk value to block
        widget=forms.TextInput(attrs={**_SMALL, "placeholder": "e.g. undefined"}),
    )
    kind = forms.ChoiceField(
        choices=[("", "Any kind"), *IdentityKind.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )


class WarningFilterForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("", "All warnings"), *WarningKind.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm w-auto"}),
    )
