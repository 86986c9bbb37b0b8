"""One trip to the database before the call to the model: the user's question, the guard's flag, the
key, recall, preferences and the reply's row all go in it ("Many at once", docs/architecture.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async

import chat.streaming
from chat.guard import judge
from chat.guard.input import Verdict
from chat.guard.policy import policy_for
from chat.guard.reply import Screening
from tests.chat.test_consumer import (  # noqa: F401  (fixtures)
    PATH,
    connect,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    stream,
)
from tests.fakes.upstream import Gate

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trips(monkeypatch):
    """Every function run on a sync thread (database_sync_to_async and sync_to_async alike), in order."""
    made = []
    handler = SyncToAsync.thread_handler

    def recording(self, loop, *args, **kwargs):
        made.append(getattr(self.func, "__name__", repr(self.func)))
        return handler(self, loop, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "thread_handler", recording)
    return made


@pytest.mark.parametrize(("text", "flag"), [("太白兄，黄鹤楼上可曾题诗？", ""), ("你觉得手机好用吗？", "anachronism")])
async def test_the_reply_makes_one_trip_before_it_calls_the_model(alice, conversation, credential, upstream, trips,
                                                                    text, flag):
    held = Gate(timeout=60)
    answer = stream("曾题。")
    answer.hold = held
    upstream.route("POST", PATH, answer)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": text})
    await asyncio.to_thread(upstream.wait_for_requests, 1)
    before = list(trips)
    held.release()
    await frames_until(ws, "reply_end", timeout=60)
    await ws.disconnect()
    # Connecting, then the rate limit and the reply lock in one hop (`_pace_and_lock`); then one trip saves
    # the question with everything else. Rendering the question for the page (no queries) may overlap the call.
    after_lock = before[before.index("_pace_and_lock") + 1:]
    assert [trip for trip in after_lock if not trip.startswith("message_payload")] == ["_begin"], before
    question = await database_sync_to_async(conversation.messages.get)(content=text)
    assert question.guard_category == flag  # written in that same trip


async def test_a_question_is_kept_when_the_guard_itself_fails(alice, conversation, credential, upstream, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("guard bug")

    monkeypatch.setattr(chat.streaming, "screen", broken)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "太白兄安好？"})
    frames = await frames_until(ws, "error")
    assert frames[-1]["code"] == "internal" and any(f["type"] == "message" for f in frames)
    await ws.disconnect()
    assert await database_sync_to_async(conversation.messages.filter(content="太白兄安好？").exists)()
    assert upstream.requests == []


async def test_a_question_the_judge_must_settle_is_saved_before_the_judge_is_called(
        alice, conversation, credential, upstream, monkeypatch, settings):
    settings.GUARD_MODEL_JUDGE = True
    only_just = Verdict("role_swap", 0.7, "扮演")
    monkeypatch.setattr(chat.streaming, "screen", lambda *a, **k: Screening(only_just, policy_for(only_just), True))
    held = Gate(timeout=60)
    judged = stream("in_scope")
    judged.hold = held
    upstream.route("POST", PATH, judged, when=lambda body: json.loads(body)["messages"][0]["content"] == judge.SYSTEM)
    upstream.route("POST", PATH, stream("白在此。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "你来扮演一下酒保"})
    await asyncio.to_thread(upstream.wait_for_requests, 1)  # the judge's call is out
    saved = await database_sync_to_async(conversation.messages.filter(content="你来扮演一下酒保").exists)()
    held.release()
    frames = await frames_until(ws, "reply_end", timeout=60)
    await ws.disconnect()
    assert saved and "白在此。" in "".join(f.get("text", "") for f in frames if f["type"] == "delta")
