"""Tell open chat sockets that a conversation changed over HTTP (stage, style, shown branch)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def conversation_group(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def conversation_changed(conversation_id: int) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(conversation_group(conversation_id), {"type": "conversation.changed"})
