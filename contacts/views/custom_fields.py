"""Settings → Custom fields: Admins define the extra fields of contacts and companies."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import ensure_admin
from contacts import services
from contacts.models import CustomField, CustomFieldEntity, CustomFieldType
from core.errors import domain_errors


class CustomFieldCreateForm(forms.Form):
    entity = forms.ChoiceField(choices=CustomFieldEntity.choices, initial=CustomFieldEntity.CONTACT)
    label = forms.CharField(max_length=100)
    field_type = forms.ChoiceField(choices=CustomFieldType.choices, label="Type")
    choices = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Choice fields: one per line."
    )


class CustomFieldEditForm(forms.Form):
    label = forms.CharField(max_length=100)
    choices = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="One per line."
    )
    position = forms.IntegerField(min_value=0)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)


@require_http_methods(["GET", "POST"])
@domain_errors
def custom_field_list(request: HttpRequest) -> HttpResponse:
    ensure_admin(request.user, message=services.CUSTOM_FIELDS_ADMIN_ONLY)
    form = CustomFieldCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                field = services.custom_field_create(
                    actor=request.user,
                    entity=data["entity"],
                    label=data["label"],
                    field_type=data["field_type"],
                    choices=_lines(data["choices"]),
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"Field “{field.label}” added with the key {field.key}.")
                return redirect("contacts_tools:custom_fields")
        status = 400
    fields = CustomField.objects.order_by("entity", "position", "pk")
    return render(request, "contacts/custom_fields.html", {"fields": fields, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@domain_errors
def custom_field_edit(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_admin(request.user, message=services.CUSTOM_FIELDS_ADMIN_ONLY)
    field = get_object_or_404(CustomField, pk=pk)
    initial = {"label": field.label, "choices": "\n".join(field.choices), "position": field.position}
    form = CustomFieldEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.custom_field_update(
                actor=request.user,
                field=field,
                label=data["label"],
                choices=_lines(data["choices"]),
                position=data["position"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Field “{data['label']}” saved.")
            return redirect("contacts_tools:custom_fields")
    status = 400 if request.method == "POST" else 200
    return render(request, "contacts/custom_field_edit.html", {"field": field, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@domain_errors
def custom_field_delete(request: HttpRequest, pk: int) -> HttpResponse:
    ensure_admin(request.user, message=services.CUSTOM_FIELDS_ADMIN_ONLY)
    field = get_object_or_404(CustomField, pk=pk)
    if request.method == "POST":
        services.custom_field_delete(actor=request.user, field=field)
        messages.success(
            request, f"Field “{field.label}” deleted. Stored values were kept but are no longer shown."
        )
        return redirect("contacts_tools:custom_fields")
    return render(request, "contacts/custom_field_delete.html", {"field": field})
