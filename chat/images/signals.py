"""A deleted job (or its conversation, or its owner) takes its image file with it."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from chat.models import ImageJob


@receiver(post_delete, sender=ImageJob, dispatch_uid="image_job_delete_file")
def delete_image_file(sender, instance: ImageJob, **kwargs) -> None:
    if instance.image:
        name, storage = instance.image.name, instance.image.storage
        # After the commit: a rolled-back delete must not lose the picture.
        transaction.on_commit(lambda: storage.delete(name))
