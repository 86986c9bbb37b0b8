"""Tell open chat sockets that a conversation changed outside them (HTTP: stage, style, shown branch;
the worker: a new summary or greeting)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def conversation_group(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


async def aconversation_changed(conversation_id: int) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(conversation_group(conversation_id), {"type": "conversation.changed"})


def conversation_changed(conversation_id: int) -> None:
    async_to_sync(aconversation_changed)(conversation_id)


async def aconversation_titled(conversation_id: int, title: str) -> None:
    """The conversation got its title (the title job, or the reply's local fallback): open pages show it."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(conversation_group(conversation_id), {"type": "conversation.titled", "title": title})


def conversation_titled(conversation_id: int, title: str) -> None:
    async_to_sync(aconversation_titled)(conversation_id, title)
