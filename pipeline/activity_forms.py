"""Forms for the activity composer, the task form and the "My day" filters: parse input only."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from contacts.forms import style_fields
from pipeline.activities import body_too_long_message
from pipeline.models import ACTIVITY_BODY_MAX_LENGTH, ActivityKind

DATETIME_LOCAL = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(
        choices=ActivityKind.choices, initial=ActivityKind.NOTE, widget=forms.RadioSelect
    )
    subject = forms.CharField(max_length=200, required=False)
    # No maxlength attribute: a browser would cut a long paste silently; the error says why.
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    occurred_at = forms.DateTimeField(
        label="When", required=False, input_formats=DATETIME_LOCAL, widget=DateTimeLocalInput()
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_fields(self)
        self.fields["kind"].widget.attrs["class"] = "btn-check"
        self.fields["subject"].widget.attrs["placeholder"] = "Subject"
        self.fields["body"].widget.attrs["placeholder"] = "What happened?"

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if len(body) > ACTIVITY_BODY_MAX_LENGTH:
            raise forms.ValidationError(body_too_long_message(len(body)))
        return body

    def clean(self):
        data = super().clean()
        if not (data.get("subject") or "").strip() and not (data.get("body") or "").strip():
            self.add_error("body", "Write a subject or a few words.")
        return data


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200)
    due_at = forms.DateTimeField(
        label="Due", required=False, input_formats=DATETIME_LOCAL, widget=DateTimeLocalInput()
    )
    assignee = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [(u.pk, u.get_full_name() or u.username) for u in users]
        style_fields(self)
        self.fields["title"].widget.attrs["placeholder"] = "Follow up with…"


class MyDayFilterForm(forms.Form):
    user = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    q = forms.CharField(required=False)
    show_done = forms.BooleanField(required=False, label="Show done")

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [(u.pk, u.get_full_name() or u.username) for u in users]
        style_fields(self)
        self.fields["q"].widget.attrs.update(placeholder="Search tasks", type="search")


def default_due() -> str:
    """Tomorrow 9:00 local time, the usual follow-up slot, as a datetime-local value."""
    tomorrow = timezone.localtime() + timedelta(days=1)
    return tomorrow.replace(hour=9, minute=0).strftime("%Y-%m-%dT%H:%M")
