from django.db import migrations


def add_defaults(apps, schema_editor):
    from identity.models import DEFAULT_BLOCKED_VALUES

    BlockedValue = apps.get_model("identity", "BlockedValue")
    BlockedValue.objects.bulk_create(
        [BlockedValue(kind="", value=value) for value in DEFAULT_BLOCKED_VALUES], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("identity", "0001_identity_graph")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
