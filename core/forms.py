"""Form helpers every app's UI shares."""

from django import forms


def style_fields(form: forms.Form, *, small: bool = True) -> None:
    """Bootstrap classes on every widget, so `{{ form.field }}` renders ready to use."""
    size = " form-select-sm" if small else ""
    for form_field in form.fields.values():
        widget = form_field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = "form-select" + size
        else:
            css = "form-control" + (" form-control-sm" if small else "")
        widget.attrs["class"] = css
