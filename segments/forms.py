from django import forms

from .models import SegmentKind

MAX_UPLOAD = 5 * 1024 * 1024


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": "Give the segment a name to save it."})
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)
    kind = forms.ChoiceField(
        choices=SegmentKind.choices, initial=SegmentKind.DYNAMIC, widget=forms.RadioSelect
    )

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if editing:  # the kind is chosen once
            del self.fields["kind"]


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=500, assume_scheme="https")
    on_enter = forms.BooleanField(required=False, initial=True)
    on_exit = forms.BooleanField(required=False, initial=True)
    allow_private = forms.BooleanField(
        required=False, help_text="Admin only: allow private, loopback and link-local addresses."
    )


class MembersAddForm(forms.Form):
    entries = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Contact ids or emails, one per line"}),
        max_length=2_000_000,
    )
    file = forms.FileField(required=False, help_text="CSV with an email or id column.")

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > MAX_UPLOAD:
            raise forms.ValidationError("The file is larger than 5 MB.")
        return upload
