"""A fresh installation gets the default "Sales pipeline" and lost reasons (pipeline.services.defaults):
without them no deal could be created or lost until an Admin configured the pipeline."""

from django.db import migrations


def install(apps, schema_editor):
    from pipeline.services.defaults import install_defaults

    install_defaults(apps)


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0002_deal_history_activities_tasks")]

    # Nothing to undo on the way back: the rows may hold deals by then, and they are valid data.
    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
