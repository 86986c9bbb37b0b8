"""A second tab on the same conversation follows a reply live: the reply's frames also go to the
conversation's channel-layer group; the sending socket gets each frame once, other owners nothing."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat.notify import conversation_group
from chat.services import conversation_start
from tests.chat.test_consumer import (  # noqa: F401  (fixtures)
    PATH,
    connect,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    stream,
    text_of,
)
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = ("君问", "何事？", "且听", "白道来。")


def kinds(frames: list[dict]) -> list[str]:
    return [f["type"] for f in frames if f["type"] != "delta"]


async def test_a_second_tab_follows_the_reply_and_the_sender_gets_each_frame_once(alice, conversation, credential,
                                                                                  upstream):
    upstream.route("POST", PATH, stream(*REPLY, gap=0.05))
    sender, follower = await connect(alice, conversation.pk), await connect(alice, conversation.pk)
    await sender.send_json_to({"type": "send", "text": "你好，太白"})
    sent = await frames_until(sender, "reply_end")
    followed = await frames_until(follower, "reply_end")
    assert kinds(sent) == kinds(followed) == ["message", "reply_start", "reply_end"]
    assert text_of(sent) == text_of(followed) == "".join(REPLY)
    assert followed[-1]["message"] == sent[-1]["message"]
    assert await sender.receive_nothing(timeout=0.5)  # no echo of its own frames from the group
    assert await follower.receive_nothing(timeout=0.5)

    # The follower's socket knows the reply now: it can answer it (the branch is reloaded).
    upstream.route("POST", PATH, stream("再会。"))
    reply_id = sent[-1]["message"]["id"]
    await follower.send_json_to({"type": "send", "text": "还有呢？", "parent_id": reply_id})
    again = await frames_until(follower, "reply_end")
    assert again[0]["type"] == "message" and again[0]["message"]["parent_id"] == reply_id
    assert kinds(await frames_until(sender, "reply_end")) == ["message", "reply_start", "reply_end"]
    await sender.disconnect()
    await follower.disconnect()


async def test_other_conversations_and_other_owners_see_nothing(alice, bob, conversation, credential, upstream):
    upstream.route("POST", PATH, stream(*REPLY))
    other = await database_sync_to_async(
        lambda: conversation_start(owner=alice, persona=make_persona("du-fu", "杜甫")))()
    sender, elsewhere = await connect(alice, conversation.pk), await connect(alice, other.pk)
    await sender.send_json_to({"type": "send", "text": "你好，太白"})
    await frames_until(sender, "reply_end")
    assert await elsewhere.receive_nothing(timeout=0.5)

    # A frame in the group that names another owner is dropped by the socket, whoever put it there.
    await get_channel_layer().group_send(conversation_group(conversation.pk), {
        "type": "reply.frame", "frame": {"type": "delta", "text": "外人"}, "owner": bob.pk, "sender": "elsewhere"})
    assert await sender.receive_nothing(timeout=0.5)
    await sender.disconnect()
    await elsewhere.disconnect()
