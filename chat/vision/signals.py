"""A deleted picture (or its message, conversation or owner) takes its file with it."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from chat.models import MessageImage


@receiver(post_delete, sender=MessageImage, dispatch_uid="message_image_delete_file")
def delete_attachment_file(sender, instance: MessageImage, **kwargs) -> None:
    if instance.image:
        name, storage = instance.image.name, instance.image.storage
        # After the commit: a rolled-back delete must not lose the picture.
        transaction.on_commit(lambda: storage.delete(name))
