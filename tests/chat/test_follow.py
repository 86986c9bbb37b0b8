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


async def test_a_following_tab_can_stop_the_reply(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream(*[f"第{n}句。" for n in range(40)], gap=0.1))
    sender, follower = await connect(alice, conversation.pk), await connect(alice, conversation.pk)
    await sender.send_json_to({"type": "send", "text": "太白，讲个长故事"})
    await frames_until(follower, "delta")  # the follower sees the reply streaming
    await follower.send_json_to({"type": "stop"})
    ended = await frames_until(sender, "reply_end", timeout=20)
    assert ended[-1]["message"]["status"] == "stopped"
    followed = await frames_until(follower, "reply_end", timeout=20)
    assert followed[-1]["message"]["status"] == "stopped"
    await sender.disconnect()
    await follower.disconnect()


async def test_another_users_stop_reaches_no_reply(alice, bob, conversation, credential, upstream):
    """The group is the conversation's; a stop event names its owner, and only the owner's reply stops."""
    upstream.route("POST", PATH, stream(*REPLY, gap=0.2))
    sender = await connect(alice, conversation.pk)
    await sender.send_json_to({"type": "send", "text": "你好，太白"})
    await frames_until(sender, "delta")
    layer = get_channel_layer()
    await layer.group_send(conversation_group(conversation.pk), {"type": "reply.stop", "owner": bob.pk,
                                                                 "sender": "elsewhere"})
    ended = await frames_until(sender, "reply_end", timeout=20)
    assert ended[-1]["message"]["status"] == "complete" and text_of(ended).endswith("白道来。")
    await sender.disconnect()
