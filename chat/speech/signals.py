"""A deleted message (or its conversation, or its owner) takes its audio files with it."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from chat.models import MessageSpeech


@receiver(post_delete, sender=MessageSpeech, dispatch_uid="message_speech_delete_file")
def delete_audio_file(sender, instance: MessageSpeech, **kwargs) -> None:
    if instance.audio:
        name, storage = instance.audio.name, instance.audio.storage
        # After the commit: a rolled-back delete must not lose the audio.
        transaction.on_commit(lambda: storage.delete(name))
