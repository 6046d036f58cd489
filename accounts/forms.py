from django import forms
from django.contrib.auth import get_user_model, password_validation

from accounts.models import Role
from accounts.roles import LEAST_PRIVILEGED_ROLE


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="API token")


class UserCreateForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        validators=[get_user_model().username_validator],
        help_text="Letters, digits and @ . + - _ only.",
    )
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=LEAST_PRIVILEGED_ROLE)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A user with this username already exists.")
        return username

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            user = get_user_model()(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(cleaned["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class NotificationPreferencesForm(forms.Form):
    email_notifications = forms.BooleanField(
        required=False, label="Email me my notifications (e.g. when one of my deals gets hot)"
    )
