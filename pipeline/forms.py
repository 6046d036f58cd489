"""Forms for deals and the board filters, the activity composer, the task forms and the "My day"
filters: parse input only."""

import re
from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from contacts.forms import CompanyPickerField
from contacts.models import Contact
from core.forms import style_fields
from core.params import parse_id
from pipeline.models import (
    ACTIVITY_BODY_MAX_LENGTH,
    MAX_CALL_MINUTES,
    ActivityKind,
    CallOutcome,
    Deal,
    TaskKind,
    TaskPriority,
)
from pipeline.selectors import BoardFilters
from pipeline.services.activities import body_too_long_message


class ContactPickerField(forms.CharField):
    """A contact in the picker's 'Name <email> (#id)' form, or an email; blank means none."""

    _ID = re.compile(r"\(#([0-9]+)\)\s*$")  # ASCII digits: int() also reads other scripts' digits

    def clean(self, value):
        value = (super().clean(value) or "").strip()
        if not value:
            return None
        if match := self._ID.search(value):
            contact = Contact.objects.filter(pk=int(match.group(1)), merged_into=None).first()
            if contact is None:
                raise ValidationError("That contact no longer exists.")
            return contact
        contact = Contact.objects.filter(email__iexact=value, merged_into=None).first()
        if contact is None:
            raise ValidationError("Pick a contact from the list, or type their exact email.")
        return contact


def contact_label(contact: Contact | None) -> str:
    return f"{contact} (#{contact.pk})" if contact else ""


class BoardFilterForm(forms.Form):
    owner = forms.CharField(required=False)
    close_from = forms.DateField(required=False, label="Expected close from")
    close_to = forms.DateField(required=False, label="to")
    amount_min = forms.DecimalField(required=False, min_value=0, label="Amount from")
    amount_max = forms.DecimalField(required=False, min_value=0, label="to")

    def filters(self, *, default_owner: str) -> BoardFilters:
        """The valid filters; a bad value is ignored rather than failing the whole board."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        owner = (data.get("owner") or self.data.get("owner") or default_owner).strip().lower()
        if owner not in {"mine", "all", "none"} and parse_id(owner) is None:
            owner = default_owner
        return BoardFilters(
            owner=owner,
            close_from=data.get("close_from"),
            close_to=data.get("close_to"),
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
        )


class DealForm(forms.Form):
    title = forms.CharField(max_length=200)
    amount = forms.DecimalField(required=False, min_value=0, max_digits=14, decimal_places=2)
    currency = forms.CharField(max_length=3, initial="USD")
    contact = ContactPickerField(required=False)
    company = CompanyPickerField(required=False)
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True), required=False)
    expected_close_date = forms.DateField(required=False)

    def values(self) -> dict:
        """The fields the request sent (a field left out keeps its value or its default)."""
        data = {name: value for name, value in self.cleaned_data.items() if name in self.data}
        if "amount" in data and data["amount"] is None:
            data["amount"] = 0
        return data


class LostForm(forms.Form):
    lost_reason = forms.CharField(required=False)


# --- activities and tasks

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
    # Calls only; the service refuses them on other kinds, the form drops them there (a note
    # composed after picking "Call" and back must not fail on a stale outcome).
    call_outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Outcome…"), *CallOutcome.choices]
    )
    duration_minutes = forms.IntegerField(
        label="Minutes", required=False, min_value=0, max_value=MAX_CALL_MINUTES
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_fields(self)
        self.fields["kind"].widget.attrs["class"] = "btn-check"
        self.fields["subject"].widget.attrs["placeholder"] = "Subject"
        self.fields["body"].widget.attrs["placeholder"] = "What happened?"
        self.fields["duration_minutes"].widget.attrs.update(placeholder="Minutes", inputmode="numeric")

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if len(body) > ACTIVITY_BODY_MAX_LENGTH:
            raise forms.ValidationError(body_too_long_message(len(body)))
        return body

    def clean(self):
        data = super().clean()
        is_call = data.get("kind") == ActivityKind.CALL
        if not is_call:
            data["call_outcome"], data["duration_minutes"] = "", None
        has_text = (data.get("subject") or "").strip() or (data.get("body") or "").strip()
        if not has_text and not (is_call and data.get("call_outcome")):
            self.add_error("body", "Write a subject or a few words.")
        return data


class DealPickerField(forms.CharField):
    """A deal in the picker's 'Title (#id)' form, or an exact title; blank means none."""

    _ID = re.compile(r"\(#([0-9]+)\)\s*$")  # ASCII digits: int() also reads other scripts' digits

    def clean(self, value):
        value = (super().clean(value) or "").strip()
        if not value:
            return None
        if match := self._ID.search(value):
            deal = Deal.objects.filter(pk=int(match.group(1))).first()
            if deal is None:
                raise ValidationError("That deal no longer exists.")
            return deal
        found = list(Deal.objects.filter(title__iexact=value)[:2])
        if not found:
            raise ValidationError("Pick a deal from the list.")
        if len(found) > 1:
            raise ValidationError(f"Several deals are titled “{value}”; pick one from the list.")
        return found[0]


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200)
    # Optional so a quick post with a title alone (older forms, scripts) still makes a to-do.
    kind = forms.ChoiceField(label="Type", choices=TaskKind.choices, initial=TaskKind.TODO, required=False)
    priority = forms.ChoiceField(choices=TaskPriority.choices, initial=TaskPriority.NORMAL, required=False)
    due_at = forms.DateTimeField(
        label="Due", required=False, input_formats=DATETIME_LOCAL, widget=DateTimeLocalInput()
    )
    assignee = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [(u.pk, u.get_full_name() or u.username) for u in users]
        style_fields(self)
        self.fields["title"].widget.attrs["placeholder"] = "Follow up with…"
        self.fields["notes"].widget.attrs["placeholder"] = "Notes"

    def service_values(self, users) -> dict:
        """cleaned_data as task_create keywords, the assignee id resolved among `users`."""
        data = dict(self.cleaned_data)
        data["kind"] = data.get("kind") or TaskKind.TODO
        data["priority"] = data.get("priority") or TaskPriority.NORMAL
        assignee_id = data.pop("assignee", None)
        data["assignee"] = next((u for u in users if u.pk == assignee_id), None)
        return data


class MyDayTaskForm(TaskForm):
    """ "+ Task" on My day: a task of its own, optionally on a contact and/or a deal."""

    contact = ContactPickerField(required=False)
    deal = DealPickerField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_fields(self)
        self.fields["title"].widget.attrs["placeholder"] = "What needs doing?"


class TaskEditForm(forms.Form):
    """Edit a task in place: what it is, when, how urgent (the record it is on stays)."""

    title = forms.CharField(max_length=200)
    kind = forms.ChoiceField(label="Type", choices=TaskKind.choices)
    priority = forms.ChoiceField(choices=TaskPriority.choices)
    due_at = forms.DateTimeField(
        label="Due", required=False, input_formats=DATETIME_LOCAL, widget=DateTimeLocalInput()
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_fields(self)


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
