"""One trip to the database between the saved question and the call to the model: the key, the
guard's flag, recall, preferences and the reply's row all go in it ("Many at once"). The question's
own save is the trip before it (docs/architecture.md)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async

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
    # Connecting, the rate limit and the reply lock come first; then the question is saved (before the
    # guard or anything else), rendered for the page, and the reply makes its one trip.
    assert before[before.index("message_add_user"):] == ["message_add_user", "message_payload", "_begin"], before
    question = await database_sync_to_async(conversation.messages.get)(content=text)
    assert question.guard_category == flag  # written in that same trip
