"""Replies that outlive their process: the row written at the start, checkpoints while the text
grows, interrupted replies found lazily, 续写, and a socket that never stays busy after bad input."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import CredentialStatus
from chat import durable, services
from chat.models import Message
from chat.prompting import CONTINUE_NOTE
from tests.chat.test_consumer import (  # noqa: F401 - fixtures
    PATH,
    connect,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    replies,
    stream,
    text_of,
)
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db(transaction=True)

HANG_GUARD = 30  # seconds; only a real hang gets this far


async def until(predicate, what: str):
    """Poll the database until `predicate()` holds; the deadline only catches a hang."""
    deadline = time.monotonic() + HANG_GUARD
    while True:
        value = await database_sync_to_async(predicate)()
        if value:
            return value
        assert time.monotonic() < deadline, f"never saw: {what}"
        await asyncio.sleep(0.05)


def _unfinished(conversation, text: str, *, status=Message.Status.STREAMING, stamped_ago: float = 60) -> Message:
    """A question and a reply left as a dead (or live) process would leave them."""
    question = services.message_add_user(conversation=conversation, text="作诗一首")
    reply = services.reply_begin(conversation=conversation, parent=question, model="m", provider="openai_compatible",
                                 content=text)
    Message.objects.filter(pk=reply.pk).update(status=status,
                                               heartbeat_at=timezone.now() - timedelta(seconds=stamped_ago))
    return Message.objects.get(pk=reply.pk)


# --- the row while it streams ---------------------------------------------------------------

async def test_the_reply_row_exists_from_the_start_and_its_text_is_checkpointed(
        alice, conversation, credential, upstream, settings):
    settings.REPLY_CHECKPOINT_SECONDS = 0.1
    pieces = [f"第{i}句。" for i in range(30)]
    upstream.route("POST", PATH, stream(*pieces, gap=0.05))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "讲个长故事"})
    await frames_until(ws, "delta")

    def streaming_row():
        return Message.objects.filter(conversation=conversation, role="assistant", status="streaming").first()

    row = await until(streaming_row, "a streaming reply row")
    leaf = await database_sync_to_async(lambda: type(conversation).objects.get(pk=conversation.pk).active_leaf_id)()
    assert leaf == row.pk  # the next message would follow the reply, not the question
    saved = await until(lambda: (r := streaming_row()) is not None and r.content and r, "checkpointed text")
    assert "".join(pieces).startswith(saved.content)
    frames = await frames_until(ws, "reply_end")
    [reply] = await replies(conversation)
    assert reply.pk == row.pk and reply.status == "complete" and reply.content == "".join(pieces)
    assert frames[-1]["message"]["id"] == row.pk
    await ws.disconnect()


async def test_a_checkpoint_never_overwrites_a_finished_reply(alice, conversation):
    reply = await database_sync_to_async(_unfinished)(conversation, "半句", stamped_ago=0)
    await database_sync_to_async(services.reply_finish)(reply=reply, content="全文。", status="complete")
    await database_sync_to_async(durable.write_checkpoint)({reply.pk: "半句"}, [reply.pk])
    await database_sync_to_async(reply.refresh_from_db)()
    assert (reply.status, reply.content) == ("complete", "全文。")


async def test_a_live_process_takes_back_a_reply_wrongly_marked_interrupted(alice, conversation):
    reply = await database_sync_to_async(_unfinished)(conversation, "前文", status=Message.Status.INTERRUPTED)
    await database_sync_to_async(durable.write_checkpoint)({reply.pk: "前文后文"}, [])
    await database_sync_to_async(reply.refresh_from_db)()
    assert (reply.status, reply.content) == ("streaming", "前文后文")


# --- interrupted replies --------------------------------------------------------------------

def test_a_reply_whose_process_is_gone_shows_as_interrupted_with_continue(alice, alice_client, conversation):
    reply = _unfinished(conversation, "床前明月光，")
    page = alice_client.get(f"/chat/{conversation.pk}/").content.decode()
    reply.refresh_from_db()
    assert reply.status == "interrupted" and reply.content == "床前明月光，" and reply.finished_at
    assert "已中断" in page and "床前明月光" in page
    assert f'data-action="continue" data-message-id="{reply.pk}"' in page
    assert f'data-action="regenerate" data-message-id="{reply.pk}"' in page


def test_a_reply_still_being_written_elsewhere_is_followed_not_interrupted(alice, alice_client, conversation):
    reply = _unfinished(conversation, "床前", stamped_ago=0)
    page = alice_client.get(f"/chat/{conversation.pk}/").content.decode()
    reply.refresh_from_db()
    assert reply.status == "streaming"
    assert f'hx-get="/chat/{conversation.pk}/messages/{reply.pk}/"' in page and "续写" not in page
    Message.objects.filter(pk=reply.pk).update(content="床前明月光。", status="complete")
    bubble = alice_client.get(f"/chat/{conversation.pk}/messages/{reply.pk}/").content.decode()
    assert "床前明月光。" in bubble and "every 2s" not in bubble  # finished: the polling stops


def test_the_bubble_of_another_users_message_is_a_404(alice, bob_client, conversation):
    reply = _unfinished(conversation, "床前")
    assert bob_client.get(f"/chat/{conversation.pk}/messages/{reply.pk}/").status_code == 404


def test_the_start_up_sweep_marks_every_lapsed_reply_once(alice, conversation, monkeypatch):
    monkeypatch.setattr(durable, "_swept", False)
    dead = _unfinished(conversation, "甲")
    alive = _unfinished(conversation, "乙", stamped_ago=0)
    assert durable.sweep_once() == 1 and durable.sweep_once() == 0
    dead.refresh_from_db(), alive.refresh_from_db()
    assert (dead.status, alive.status) == ("interrupted", "streaming")


async def test_the_next_message_follows_an_interrupted_reply(alice, conversation, credential, upstream):
    reply = await database_sync_to_async(_unfinished)(conversation, "床前明月光，")
    upstream.route("POST", PATH, stream("君再问。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "然后呢？"})
    frames = await frames_until(ws, "reply_end")
    assert frames[0]["message"]["parent_id"] == reply.pk
    await database_sync_to_async(reply.refresh_from_db)()
    assert (reply.status, reply.content) == ("interrupted", "床前明月光，")
    sent = upstream.requests[0].json()["messages"]
    assert any(m["role"] == "assistant" and m["content"] == "床前明月光，" for m in sent)
    await ws.disconnect()


async def test_continue_carries_on_from_the_last_word_as_a_new_version(alice, conversation, credential, upstream):
    reply = await database_sync_to_async(_unfinished)(conversation, "床前明月光，")
    upstream.route("POST", PATH, stream("疑是", "地上霜。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "continue", "message_id": reply.pk})
    frames = await frames_until(ws, "reply_end")
    start = next(f for f in frames if f["type"] == "reply_start")
    assert start["reply_to"] == reply.parent_id and start["text"] == "床前明月光，"
    assert text_of(frames) == "疑是地上霜。"  # the written part is not streamed again
    new = await database_sync_to_async(Message.objects.get)(pk=frames[-1]["message"]["id"])
    assert new.content == "床前明月光，疑是地上霜。" and new.status == "complete"
    assert new.parent_id == reply.parent_id and new.pk != reply.pk  # a sibling: the old version stays
    sent = upstream.requests[0].json()["messages"]
    assert sent[-2] == {"role": "assistant", "content": "床前明月光，"}
    assert sent[-1] == {"role": "system", "content": CONTINUE_NOTE}
    await ws.disconnect()


async def test_continue_is_refused_for_a_finished_or_a_live_reply(alice, conversation, credential, upstream):
    live = await database_sync_to_async(_unfinished)(conversation, "床前", stamped_ago=0)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "continue", "message_id": live.pk})
    assert (await ws.receive_json_from())["code"] == "busy"
    await database_sync_to_async(services.reply_finish)(reply=live, content="床前明月光。", status="complete")
    await ws.send_json_to({"type": "continue", "message_id": live.pk})
    frame = await ws.receive_json_from()
    assert frame["code"] == "bad_request" and "不需要续写" in frame["message"]
    assert upstream.requests == []
    await ws.disconnect()


# --- bad frames never leave the conversation busy -------------------------------------------

MALFORMED = [
    {"type": "send", "text": "你好", "parent_id": [1]},
    {"type": "send", "text": "你好", "parent_id": {"id": 1}},
    {"type": "send", "text": "你好", "parent_id": "1"},
    {"type": "send", "text": "你好", "parent_id": 1.5},
    {"type": "send", "text": "你好", "parent_id": True},
    {"type": "send", "text": "你好", "parent_id": 2**70},
    {"type": "send", "text": ["你好"]},
    {"type": "send", "text": {"zh": "你好"}},
    {"type": "send", "text": 42},
    {"type": "send"},
    {"type": "send", "text": "你好", "tool": ["history_search"]},
    {"type": "send", "text": "你好", "tool": "no_such_tool"},
    {"type": "send", "text": "你好", "tools": "yes"},
    {"type": "send", "text": "你好", "to": 5},
    {"type": "send", "text": "你好", "to": "everyone"},
    {"type": "edit", "message_id": {"id": 1}, "text": "改"},
    {"type": "edit", "message_id": 1, "text": ["改"]},
    {"type": "regenerate", "message_id": [1]},
    {"type": "regenerate"},
    {"type": "continue", "message_id": "3"},
    {"type": ["send"]},
    ["send", "你好"],
    "send",
]


@pytest.mark.parametrize("frame", MALFORMED, ids=range(len(MALFORMED)))
async def test_a_malformed_frame_is_refused_and_a_normal_send_then_works(
        alice, conversation, credential, upstream, frame):
    upstream.route("POST", PATH, stream("好。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to(frame)
    refused = await ws.receive_json_from()
    assert refused["type"] == "error" and refused["code"] in ("bad_request", "not_found", "empty")
    assert refused["message"]  # Chinese, for the user
    assert await database_sync_to_async(conversation.messages.count)() == 1  # nothing stored
    await ws.send_json_to({"type": "send", "text": "你好"})
    frames = await frames_until(ws, "reply_end")
    assert frames[-1]["message"]["status"] == "complete" and text_of(frames) == "好。"
    await ws.disconnect()


async def test_a_lone_surrogate_is_cleaned_and_the_reply_still_comes(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream("好。"), stream("又好。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_to(text_data='{"type": "send", "text": "\\ud800月下"}')  # an escaped half of a pair
    frames = await frames_until(ws, "reply_end")
    assert frames[-1]["message"]["status"] == "complete"
    saved = await database_sync_to_async(conversation.messages.filter(role="user").get)()
    assert saved.content == "\ufffd月下"
    await ws.send_json_to({"type": "send", "text": "再来"})
    assert (await frames_until(ws, "reply_end"))[-1]["message"]["status"] == "complete"
    await ws.disconnect()


async def test_a_fault_after_the_lock_is_taken_releases_it(alice, conversation, credential, upstream, monkeypatch):
    upstream.route("POST", PATH, stream("好。"))
    real = services.user_message_save  # the reply's first trip saves the question
    calls = []

    def failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "user_message_save", failing_once)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "一"})
    refused = await ws.receive_json_from()
    assert refused["code"] == "internal" and "稍后" in refused["message"]
    await ws.send_json_to({"type": "send", "text": "二"})
    assert (await frames_until(ws, "reply_end"))[-1]["message"]["status"] == "complete"
    await ws.disconnect()


# --- a key the provider refuses --------------------------------------------------------------

@pytest.mark.parametrize(("status", "code", "marked"), [
    (401, "invalid_api_key", True), (403, "access_denied", False),
])
async def test_a_key_refused_during_a_chat_is_marked_invalid(
        alice, conversation, credential, upstream, status, code, marked):
    body = {"error": {"message": "no", "type": "invalid_request_error", "code": code}}
    upstream.route("POST", PATH, json_reply(status, body))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "你好"})
    frames = await frames_until(ws, "reply_end")
    assert frames[-1]["message"]["error_kind"] == "auth"
    await database_sync_to_async(credential.refresh_from_db)()
    assert (credential.status == CredentialStatus.INVALID) is marked
    if marked:
        assert "401" in credential.last_error
    await ws.disconnect()
