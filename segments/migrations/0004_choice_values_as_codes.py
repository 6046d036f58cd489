"""Saved definitions name choice values by their code.

Since the compiler checks choice fields against their codes (a contact's lifecycle stage, a deal's
status), a segment saved earlier with the label people see ("Customer", "Won") or another case
("LEAD") no longer compiled: its page said "Invalid definition" and its recompute failed. Those
values always meant the code (the column stores codes, so they matched nothing before), so this
rewrites each to its code, matching label or code ignoring case and surrounding space. Values that
are neither stay as they are, for the segment page to name.

The choices are written out here, as they were when this migration was made: a migration must not
change with the models.
"""

from django.db import migrations

LIFECYCLE_STAGES = {
    "visitor": "Visitor",
    "subscriber": "Subscriber",
    "lead": "Lead",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "other": "Other",
}
DEAL_STATUSES = {"open": "Open", "won": "Won", "lost": "Lost"}


def _code(value, choices: dict[str, str]):
    if not isinstance(value, str) or value in choices:
        return value
    wanted = value.strip().casefold()
    for code, label in choices.items():
        if wanted in (code.casefold(), label.casefold()):
            return code
    return value


def _fix_filter(node: dict, choices: dict[str, str]) -> None:
    value = node.get("value")
    if isinstance(value, list):
        node["value"] = [_code(v, choices) for v in value]
    else:
        node["value"] = _code(value, choices)


def _walk(node) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "field" and node.get("field") == "lifecycle_stage" and "value" in node:
        _fix_filter(node, LIFECYCLE_STAGES)
    if node.get("type") == "deal":
        for where in node.get("where") or []:
            if isinstance(where, dict) and where.get("field") == "status" and "value" in where:
                _fix_filter(where, DEAL_STATUSES)
    _walk(node.get("conditions"))


def choice_values_as_codes(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for segment in Segment.objects.only("pk", "definition").iterator():
        before = repr(segment.definition)
        _walk(segment.definition)
        if repr(segment.definition) != before:
            Segment.objects.filter(pk=segment.pk).update(definition=segment.definition)


class Migration(migrations.Migration):
    dependencies = [("segments", "0003_crm_edit_triggers")]

    operations = [migrations.RunPython(choice_values_as_codes, migrations.RunPython.noop)]
