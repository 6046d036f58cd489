"""Which lost reason needs a note becomes a flag on the reason, instead of its name being "Other"
(matched without case): an Admin who renamed "Other" lost the rule, and no other reason could ask
for one. Every reason named "other" in any case gets the flag, as the name rule gave it."""

from django.db import migrations, models


def flag_other(apps, schema_editor):
    LostReason = apps.get_model("pipeline", "LostReason")
    LostReason.objects.filter(name__iexact="other").update(note_required=True)


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0005_task_kind_priority_notes_call_outcome")]

    operations = [
        migrations.AddField(
            model_name="lostreason",
            name="note_required",
            field=models.BooleanField(default=False, db_default=False),
        ),
        migrations.RunPython(flag_other, migrations.RunPython.noop),
    ]
