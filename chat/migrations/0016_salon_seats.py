import django.db.models.deletion
from django.db import migrations, models


def seats_from_partners(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    SalonSeat = apps.get_model("chat", "SalonSeat")
    SalonSeat.objects.bulk_create(
        SalonSeat(conversation_id=pk, persona_id=partner_id, position=1)
        for pk, partner_id in Conversation.objects.filter(partner__isnull=False).values_list("pk", "partner_id")
    )


def partners_from_seats(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    SalonSeat = apps.get_model("chat", "SalonSeat")
    # A two-figure scene goes back whole; the third and fourth figures of a salon cannot.
    for seat in SalonSeat.objects.filter(position=1):
        Conversation.objects.filter(pk=seat.conversation_id).update(partner_id=seat.persona_id)


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0015_speech"),
        ("personas", "0006_figure_relations"),
    ]

    operations = [
        migrations.CreateModel(
            name="SalonSeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveSmallIntegerField(verbose_name="座次")),
                ("conversation", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="seats",
                                                   to="chat.conversation")),
                ("persona", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                              to="personas.persona", verbose_name="同场人物")),
            ],
            options={
                "verbose_name": "同场人物",
                "verbose_name_plural": "同场人物",
                "ordering": ["position"],
                "constraints": [
                    models.UniqueConstraint(fields=("conversation", "persona"), name="one_seat_per_figure"),
                    models.UniqueConstraint(fields=("conversation", "position"), name="one_figure_per_seat"),
                ],
            },
        ),
        migrations.RunPython(seats_from_partners, partners_from_seats),
        migrations.RemoveField(model_name="conversation", name="partner"),
    ]
