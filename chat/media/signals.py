"""A deleted job (or its conversation, or its owner) takes its file with it."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from chat.models import MediaJob


@receiver(post_delete, sender=MediaJob, dispatch_uid="media_job_delete_file")
def delete_media_file(sender, instance: MediaJob, **kwargs) -> None:
    if instance.file:
        name, storage = instance.file.name, instance.file.storage
        # After the commit: a rolled-back delete must not lose the file.
        transaction.on_commit(lambda: storage.delete(name))
