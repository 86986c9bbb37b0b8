"""Replies that cost tokens, written straight to the database at a chosen moment (for usage and quota tests)."""

from __future__ import annotations

import datetime as dt

from chat import services
from chat.models import Conversation, Message


def spend(conversation: Conversation, tokens: int, *, at: dt.datetime | None = None, credential=None,
          speaker=None, prompt_share: float = 0.9) -> Message:
    """A question and its reply costing `tokens` (split into prompt and completion), created at `at`."""
    question = services.message_add_user(conversation=conversation, text="问一句", parent=conversation.active_leaf)
    prompt = round(tokens * prompt_share)
    reply = services.reply_save(conversation=conversation, parent=question, content="答一句",
                                status=Message.Status.COMPLETE, model="qwen-plus", provider="openai_compatible",
                                prompt_tokens=prompt, completion_tokens=tokens - prompt, speaker=speaker)
    if at is not None:
        Message.objects.filter(pk__in=[question.pk, reply.pk]).update(created_at=at)
    if credential is not None:
        Message.objects.filter(pk=reply.pk).update(credential=credential)
    return reply
