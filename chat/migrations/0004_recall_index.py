from django.db import migrations


def forwards(apps, schema_editor):
    from chat.recall.index import create_tables
    create_tables(schema_editor)


def backwards(apps, schema_editor):
    from chat.recall.index import drop_tables
    drop_tables(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_memory")]
    operations = [migrations.RunPython(forwards, backwards)]
