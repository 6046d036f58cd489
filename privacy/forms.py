from django import forms

from contacts.models import Contact
from privacy.selectors import erase_confirmation_answers


class EraseConfirmForm(forms.Form):
    confirm = forms.CharField(max_length=300, label="Type the person's email or full name to confirm")

    def __init__(self, *args, contact: Contact, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.contact = contact

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"]
        if value.strip().lower() not in erase_confirmation_answers(self.contact):
            raise forms.ValidationError("That is not this person's email or full name.")
        return value
