import re

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from contacts.forms import CompanyPickerField
from contacts.models import Contact
from core.params import parse_id
from pipeline.selectors import BoardFilters


class ContactPickerField(forms.CharField):
    """A contact in the picker's 'Name <email> (#id)' form, or an email; blank means none."""

    _ID = re.compile(r"\(#(\d+)\)\s*$")

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
