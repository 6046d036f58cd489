"""Forms for the contact and company pages: they parse the shape of input. Normalising and
validating values is the services' job; their ValidationError/Conflict land back on these fields."""

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from contacts import selectors
from contacts.custom_fields import clean_value
from contacts.models import Company, CustomField, CustomFieldType, LifecycleStage
from core.errors import DomainError
from core.forms import style_fields
from core.params import parse_id

CF_PREFIX = "cf_"
# The filter boxes of higher apps' list columns (contacts.selectors.ListColumn).
COLUMN_PREFIX = "col_"


def custom_form_field(definition: CustomField, *, for_filter: bool = False) -> forms.Field:
    """A form field for an Admin-defined custom field (typed input, values checked by the service)."""
    label = definition.label
    kind = definition.field_type
    if kind == CustomFieldType.CHOICE:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "—")] + [(c, c) for c in definition.choices]
        )
    if kind == CustomFieldType.BOOLEAN:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "—"), ("yes", "Yes"), ("no", "No")]
        )
    if kind == CustomFieldType.DATE:
        return forms.CharField(label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}))
    if kind == CustomFieldType.NUMBER:
        return forms.CharField(
            label=label, required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"})
        )
    return forms.CharField(label=label, required=False, max_length=None if for_filter else 1000)


class OwnerChoiceField(forms.ChoiceField):
    """An owner picker: blank means no owner."""

    def __init__(self, **kwargs):
        super().__init__(required=False, choices=(), **kwargs)

    def set_users(self, users) -> None:
        self._users = {str(u.pk): u for u in users}
        self.choices = [("", "No owner")] + [(str(u.pk), u.get_username()) for u in users]

    def clean(self, value):
        value = super().clean(value)
        return self._users.get(value) if value else None


class CompanyPickerField(forms.CharField):
    """A company by name, or the picker's 'Name (#id)' form; blank means no company."""

    _ID = re.compile(r"\(#([0-9]+)\)\s*$")

    def clean(self, value):
        value = (super().clean(value) or "").strip()
        if not value:
            return None
        if match := self._ID.search(value):
            company_id = parse_id(match.group(1))
            company = Company.objects.filter(pk=company_id).first() if company_id is not None else None
            if company is None:
                raise ValidationError("That company no longer exists.")
            return company
        found = list(Company.objects.filter(name__iexact=value)[:2])
        if not found:
            raise ValidationError(
                f"No company is named “{value}”. Create it first, or pick one from the list."
            )
        if len(found) > 1:
            raise ValidationError(f"Several companies are named “{value}”; pick one from the list.")
        return found[0]


def company_picker_value(company: Company | None) -> str:
    return f"{company.name} (#{company.pk})" if company else ""


class RecordForm(forms.Form):
    """Shared by contact and company forms: custom fields, owner, and mapping service errors back."""

    entity = ""

    def __init__(self, *args, definitions: list[CustomField] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if definitions is None:
            definitions = selectors.custom_field_definitions(entity=self.entity)
        self.definitions = definitions
        for definition in definitions:
            self.fields[CF_PREFIX + definition.key] = custom_form_field(definition)
        if "owner" in self.fields:
            self.fields["owner"].set_users(selectors.owner_choices())
        style_fields(self)

    @property
    def custom_field_names(self) -> list[str]:
        return [CF_PREFIX + d.key for d in self.definitions]

    def service_values(self, names: list[str] | None = None) -> dict[str, Any]:
        """cleaned_data as keyword arguments for the services (custom fields folded into one dict)."""
        values: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for name in names or list(self.fields):
            if name not in self.cleaned_data:
                continue
            value = self.cleaned_data[name]
            if name.startswith(CF_PREFIX):
                custom[name.removeprefix(CF_PREFIX)] = value
            elif name == "tags":
                values["tags"] = [t for t in (value or "").split(",") if t.strip()]
            else:
                values[name] = value
        if custom:
            values["custom_fields"] = custom
        return values

    def add_service_error(self, exc: ValidationError | DomainError) -> None:
        """Put a service's ValidationError (or a Conflict's field errors) on the fields it names."""
        if isinstance(exc, DomainError):
            errors = exc.fields or {None: [exc.message]}
        elif hasattr(exc, "error_dict"):
            errors = exc.message_dict
        else:
            errors = {None: exc.messages}
        for name, messages in errors.items():
            for message in messages:
                if name == "custom_fields":
                    # "key: message" from contacts.custom_fields.clean_values
                    key, _, text = message.partition(": ")
                    target = CF_PREFIX + key
                    if target in self.fields:
                        self.add_error(target, text)
                        continue
                self.add_error(name if name in self.fields else None, message)


class ContactForm(RecordForm):
    entity = "contact"

    first_name = forms.CharField(required=False, max_length=100)
    last_name = forms.CharField(required=False, max_length=100)
    email = forms.CharField(required=False, max_length=254, widget=forms.EmailInput)
    phone = forms.CharField(required=False, max_length=40)
    title = forms.CharField(required=False, max_length=150)
    company = CompanyPickerField(required=False, max_length=260)
    owner = OwnerChoiceField()
    lifecycle_stage = forms.ChoiceField(choices=LifecycleStage.choices, initial=LifecycleStage.LEAD)
    tags = forms.CharField(required=False, help_text="Comma separated.")

    @classmethod
    def initial_for(cls, contact) -> dict[str, Any]:
        initial = {
            name: getattr(contact, name)
            for name in ("first_name", "last_name", "email", "phone", "title", "lifecycle_stage")
        }
        initial["email"] = contact.email or ""
        initial["company"] = company_picker_value(contact.company)
        initial["owner"] = str(contact.owner_id or "")
        initial["tags"] = ", ".join(contact.tags)
        initial.update(_custom_initial(contact.custom_fields))
        return initial


class CompanyForm(RecordForm):
    entity = "company"

    name = forms.CharField(max_length=200)
    domain = forms.CharField(required=False, max_length=253)
    industry = forms.CharField(required=False, max_length=100)
    size = forms.CharField(required=False, max_length=20)
    owner = OwnerChoiceField()

    @classmethod
    def initial_for(cls, company) -> dict[str, Any]:
        initial = {name: getattr(company, name) for name in ("name", "industry", "size")}
        initial["domain"] = company.domain or ""
        initial["owner"] = str(company.owner_id or "")
        initial.update(_custom_initial(company.custom_fields))
        return initial


def _custom_initial(values: dict) -> dict[str, Any]:
    initial = {}
    for key, value in (values or {}).items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        initial[CF_PREFIX + key] = value
    return initial


# --- list filters


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class ListFilterForm(forms.Form):
    """The list page's query string. Unparseable values are dropped (and shown as errors)."""

    entity = ""

    q = forms.CharField(required=False, max_length=200)
    owner = forms.CharField(required=False, max_length=20)

    def __init__(
        self, *args, definitions: list[CustomField] | None = None, columns: list | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        if definitions is None:
            definitions = selectors.custom_field_definitions(entity=self.entity)
        self.definitions = definitions
        for definition in definitions:
            self.fields[CF_PREFIX + definition.key] = custom_form_field(definition, for_filter=True)
        # Higher apps' list columns that filter (contacts.selectors.ListColumn), by field name.
        self.columns = {COLUMN_PREFIX + c.key: c for c in columns or () if c.filter is not None}
        for name, column in self.columns.items():
            self.fields[name] = column.filter_field()
            self.fields[name].required = False
            self.fields[name].label = self.fields[name].label or column.label
        style_fields(self)

    def clean_owner(self) -> str | int | None:
        value = (self.cleaned_data.get("owner") or "").strip().lower()
        if not value:
            return None
        if value in ("me", "none"):
            return value
        if (user_id := parse_id(value)) is not None:
            return user_id
        raise ValidationError('Expected a user id, "me" or "none".')

    def filters(self) -> dict[str, Any]:
        """The selector's filters from the valid fields (an invalid one is left out, not fatal)."""
        self.is_valid()
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "", False)}
        filters: dict[str, Any] = {}
        custom = {}
        for name, value in data.items():
            if name.startswith(CF_PREFIX):
                custom[name.removeprefix(CF_PREFIX)] = self._custom_value(name.removeprefix(CF_PREFIX), value)
            elif name in self.columns:
                filters.setdefault("columns", []).append((self.columns[name], value))
            else:
                filters[name] = value
        custom = {k: v for k, v in custom.items() if v is not None}
        if custom:
            filters["custom_fields"] = custom
        return self.adapt(filters)

    def adapt(self, filters: dict[str, Any]) -> dict[str, Any]:
        return filters

    def _custom_value(self, key: str, value: str) -> Any:
        definition = next(d for d in self.definitions if d.key == key)
        if definition.field_type == CustomFieldType.TEXT:
            return value
        try:
            return clean_value(definition, value)
        except ValidationError as exc:
            self.add_error(CF_PREFIX + key, exc)
            return None

    @property
    def active_count(self) -> int:
        """How many filters (beyond the search box) are set, for the 'Filters (n)' button."""
        return sum(1 for k, v in self.cleaned_data.items() if k != "q" and v not in (None, "", False))


class ContactFilterForm(ListFilterForm):
    entity = "contact"

    lifecycle_stage = forms.ChoiceField(required=False, choices=[("", "Any stage")] + LifecycleStage.choices)
    tag = forms.CharField(required=False, max_length=50)
    company = forms.IntegerField(required=False, min_value=1)
    created_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    seen_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    seen_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    anon = forms.BooleanField(required=False, label="Include anonymous visitors")

    def adapt(self, filters: dict[str, Any]) -> dict[str, Any]:
        # Dates are whole days in the site's time zone: "to" includes its day.
        for name, target in (
            ("created_from", "created_from"),
            ("seen_from", "last_seen_from"),
        ):
            if name in filters:
                filters[target] = _day_start(filters.pop(name))
        for name, target in (("created_to", "created_to"), ("seen_to", "last_seen_to")):
            if name in filters:
                filters[target] = _day_start(filters.pop(name) + timedelta(days=1))
        if filters.pop("anon", False):
            filters["include_anonymous"] = True
        return filters


class CompanyFilterForm(ListFilterForm):
    entity = "company"


# --- list settings


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=100)
    query = forms.CharField(required=False, max_length=2000)


class BulkForm(forms.Form):
    """The rows a bulk action applies to: at most one page's worth, chosen with the checkboxes."""

    MAX_IDS = 500

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here; which rows exist and may be changed is the service's call.
        self.fields["ids"].valid_value = lambda value: parse_id(str(value)) is not None

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"]
        if len(ids) > self.MAX_IDS:
            raise ValidationError(f"Select at most {self.MAX_IDS} rows at a time.")
        return ids


class ContactBulkEditForm(BulkForm):
    owner = forms.CharField(required=False)  # "" keep, "none" clear, an id
    lifecycle_stage = forms.ChoiceField(required=False, choices=[("", "Keep")] + LifecycleStage.choices)
    add_tags = forms.CharField(required=False, max_length=500)
    remove_tags = forms.CharField(required=False, max_length=500)

    def clean_owner(self):
        value = (self.cleaned_data.get("owner") or "").strip()
        if not value:
            return ...  # keep as is
        if value == "none":
            return None
        users = {str(u.pk): u for u in selectors.owner_choices()}
        if value not in users:
            raise ValidationError("Pick an owner from the list.")
        return users[value]

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        changes: dict[str, Any] = {}
        if data["owner"] is not ...:
            changes["owner"] = data["owner"]
        if data["lifecycle_stage"]:
            changes["lifecycle_stage"] = data["lifecycle_stage"]
        for name in ("add_tags", "remove_tags"):
            if tags := [t for t in data[name].split(",") if t.strip()]:
                changes[name] = tags
        return changes
