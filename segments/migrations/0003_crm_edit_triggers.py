"""Tag and deal conditions now have realtime triggers ("profile", "deal"): CRM edits reach the
segments through contacts.changes. Segments saved before keep their stored triggers until saved
again, so add the new ones here (walking the stored definition, not importing the compiler: a
migration must not change meaning when the compiler does)."""

from django.db import migrations


def _types(node, found):
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            found.add(node["type"])
        for value in node.values():
            _types(value, found)
    elif isinstance(node, list):
        for value in node:
            _types(value, found)
    return found


def add_triggers(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for segment in Segment.objects.filter(kind="dynamic").only("pk", "definition", "triggers"):
        types = _types(segment.definition, set())
        wanted = set(segment.triggers or [])
        if "tag" in types:
            wanted.add("profile")
        if "deal" in types:
            wanted.add("deal")
        if wanted != set(segment.triggers or []):
            Segment.objects.filter(pk=segment.pk).update(triggers=sorted(wanted))


class Migration(migrations.Migration):
    dependencies = [("segments", "0002_rollup_indexes")]

    operations = [migrations.RunPython(add_triggers, migrations.RunPython.noop)]
