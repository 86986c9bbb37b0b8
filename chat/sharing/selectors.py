"""Reads for sharing. The owner's links are reached through their conversation (owner-filtered);
a shared branch is reached only through its token."""

from __future__ import annotations

from django.http import Http404

from chat.models import Conversation, Message, ShareLink, share_token_hash
from chat.selectors import conversation_tree

# token_urlsafe(24) is 32 characters; anything much longer is not ours and is not hashed.
_TOKEN_MAX = 64


def links_for(conversation: Conversation) -> list[ShareLink]:
    return list(conversation.share_links.select_related("leaf"))


def get_link_in(conversation: Conversation, pk: int) -> ShareLink:
    try:
        return conversation.share_links.get(pk=pk)
    except ShareLink.DoesNotExist:
        raise Http404 from None


def get_shared(token: str) -> ShareLink:
    """The live link with this token, or a 404 (wrong, revoked, or its owner's account closed)."""
    if not token or len(token) > _TOKEN_MAX:
        raise Http404
    link = (
        ShareLink.objects.select_related("conversation__persona", "conversation__life_stage")
        .prefetch_related("conversation__seats__persona")
        .filter(token_hash=share_token_hash(token), conversation__owner__is_active=True).first()
    )
    if link is None:
        raise Http404
    return link


def branch_to(conversation: Conversation, leaf_id: int) -> list[Message]:
    """Root → leaf_id: the branch as it was when the link was made (messages are only ever added
    after it, never changed, once the leaf is finished)."""
    path = conversation_tree(conversation).path_to(leaf_id)
    by_id = conversation.messages.in_bulk(path)
    return [by_id[pk] for pk in path]
