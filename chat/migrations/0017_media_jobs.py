"""Image jobs become media jobs of several kinds (docs/media.md); existing jobs keep their rows and files."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import chat.models

MIMES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


def fill_mime(apps, schema_editor):
    MediaJob = apps.get_model("chat", "MediaJob")
    for job in MediaJob.objects.exclude(file="").only("pk", "file"):
        mime = MIMES.get(job.file.name.rsplit(".", 1)[-1].lower(), "image/png")
        MediaJob.objects.filter(pk=job.pk).update(mime=mime)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0016_salon_seats"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel("ImageJob", "MediaJob"),
        migrations.RenameField("mediajob", "image", "file"),
        migrations.AlterField(
            "mediajob", "file", models.FileField(blank=True, max_length=200, upload_to=chat.models.media_upload_to)
        ),
        migrations.AddField("mediajob", "mime", models.CharField(blank=True, max_length=40)),
        migrations.AddField(
            "mediajob", "kind",
            models.CharField(choices=[("image", "图片"), ("image_edit", "改图"), ("video", "视频"), ("music", "谱曲"),
                                      ("midjourney", "Midjourney")], default="image", max_length=12),
        ),
        migrations.AddField("mediajob", "params", models.JSONField(blank=True, default=dict)),
        migrations.AddField("mediajob", "result", models.JSONField(blank=True, default=dict)),
        migrations.AddField("mediajob", "progress", models.PositiveSmallIntegerField(blank=True, null=True)),
        migrations.AddField(
            "mediajob", "source_job",
            models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                              to="chat.mediajob"),
        ),
        migrations.AlterField(
            "mediajob", "owner",
            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="media_jobs",
                              to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            "mediajob", "conversation",
            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="media_jobs",
                              to="chat.conversation"),
        ),
        migrations.AlterModelOptions(
            "mediajob", {"ordering": ["-created_at", "-pk"], "verbose_name": "媒体任务", "verbose_name_plural": "媒体任务"}
        ),
        migrations.RenameIndex("mediajob", new_name="chat_mediaj_status_2d79c3_idx", old_name="chat_imagej_status_8de166_idx"),
        migrations.RenameIndex("mediajob", new_name="chat_mediaj_convers_0fbb10_idx",
                               old_name="chat_imagej_convers_16e96c_idx"),
        migrations.RunPython(fill_mime, migrations.RunPython.noop),
    ]
