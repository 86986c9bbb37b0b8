"""Writes on share links. A link names the leaf shown when it was made; revoking deletes it."""

from __future__ import annotations

import secrets

from chat import durable
from chat.models import Conversation, Message, ShareLink, share_token_hash

# Enough for any real use; a runaway script cannot fill the table from one conversation.
MAX_LINKS_PER_CONVERSATION = 20


class ShareRefused(ValueError):
    """Why no link was made, fit to show."""


def share_create(*, conversation: Conversation) -> ShareLink:
    leaf = conversation.active_leaf
    if leaf is None:
        raise ShareRefused("这段对话还没有内容可以分享。")
    durable.recover([leaf])  # a reply whose process is gone counts as finished (interrupted)
    if leaf.status == Message.Status.STREAMING:
        raise ShareRefused("回答还在书写中，写完再分享。")
    if conversation.share_links.count() >= MAX_LINKS_PER_CONVERSATION:
        raise ShareRefused(f"这段对话的分享链接已有 {MAX_LINKS_PER_CONVERSATION} 个，请先撤销不用的。")
    token = secrets.token_urlsafe(24)
    return ShareLink.objects.create(conversation=conversation, leaf=leaf, token=token,
                                    token_hash=share_token_hash(token))


def share_revoke(*, link: ShareLink) -> None:
    link.delete()
