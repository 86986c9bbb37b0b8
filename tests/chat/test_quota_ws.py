"""A user over the daily quota: the question is kept, a notice (not a reply, not the figure's voice)
comes back, and no request reaches the scripted upstream; image jobs, background jobs and the callback
greeting are held back the same way."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from accounts.models import QuotaSettings, UserQuota
from chat.guard.input import Verdict
from chat.guard.policy import policy_for
from chat.guard.reply import Screening
from chat.jobs import queue
from chat.media.services import request_image
from chat.models import BackgroundJob, MediaJob, Message
from tests.chat.spending import spend
from tests.chat.test_consumer import (  # noqa: F401  (fixtures)
    FINISH,
    PATH,
    chunk,
    connect,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    replies,
    stream,
)
from tests.chat.test_hops import trips  # noqa: F401  (fixture)
from tests.chat.test_jobs import fill
from tests.chat.test_tools import tool_call_stream
from tests.fakes.jobs import run_jobs
from tests.fakes.upstream import sse_reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limit(db):
    """A site-wide default of 100 tokens a day."""
    return QuotaSettings.objects.create(pk=1, daily_token_quota=100)


@pytest.fixture
def spent(limit, conversation):
    """Alice has used today's 100 tokens already."""
    return spend(conversation, 100)


async def test_an_over_quota_message_is_kept_and_answered_with_a_notice(alice, conversation, credential, upstream,
                                                                         spent, trips):
    upstream.route("POST", PATH, stream("不该有这句。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "太白兄，今日再谈一句"})
    frames = await frames_until(ws, "error")
    made = list(trips)
    assert [f["type"] for f in frames] == ["message", "error"]
    notice = frames[-1]
    assert notice["code"] == "quota" and "今日的用量额度已用完" in notice["message"] and "100 / 100" in notice["message"]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()
    assert upstream.requests == []
    question = await Message.objects.aget(content="太白兄，今日再谈一句")
    assert frames[0]["message"]["id"] == question.pk
    assert [r.pk for r in await replies(conversation)] == [spent.pk]  # no reply row, not even an error one
    # After the reply lock, one trip: the question saved and the quota read in it; then the lock is let go.
    after_lock = made[made.index("_pace_and_lock") + 1:]
    assert [t for t in after_lock if not t.startswith("message_payload")] in (["_begin"], ["_begin", "delete"]), made


async def test_regenerating_over_the_quota_calls_nothing(alice, conversation, credential, upstream, spent):
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "regenerate", "message_id": spent.pk})
    frame = await ws.receive_json_from(timeout=10)
    assert frame["type"] == "error" and frame["code"] == "quota"
    await ws.disconnect()
    assert upstream.requests == [] and len(await replies(conversation)) == 1


async def test_a_users_own_higher_limit_lets_the_reply_through(alice, conversation, credential, upstream, spent):
    await UserQuota.objects.acreate(user=alice, daily_token_quota=1000)
    upstream.route("POST", PATH, stream("白在此。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "再谈一句"})
    end = (await frames_until(ws, "reply_end"))[-1]["message"]
    assert end["status"] == "complete" and len(upstream.requests) == 1
    await ws.disconnect()


async def test_the_reply_that_crosses_the_limit_is_the_last(alice, conversation, credential, upstream, limit):
    upstream.route("POST", PATH, stream("君问何事？"))  # 129 tokens, the usage says
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "第一问"})
    await frames_until(ws, "reply_end")
    await ws.send_json_to({"type": "send", "text": "第二问"})
    frames = await frames_until(ws, "error")
    assert frames[-1]["code"] == "quota" and "129 / 100" in frames[-1]["message"]
    await ws.disconnect()
    assert len(upstream.requests) == 1
    [reply] = await replies(conversation)
    assert (reply.prompt_tokens, reply.completion_tokens, reply.credential_id) == (120, 9, credential.pk)


async def test_a_reply_without_reported_usage_is_counted_by_estimate(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, sse_reply([chunk("君问何事？且听白道来。"), FINISH, "data: [DONE]\n\n"]))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "你好"})
    await frames_until(ws, "reply_end")
    await ws.disconnect()
    [reply] = await replies(conversation)
    assert reply.prompt_tokens > 100 and reply.completion_tokens >= 10  # the system part alone is hundreds


async def test_a_tool_rounds_usage_adds_to_the_replys(alice, conversation, credential, upstream):
    arguments = '{"query": "安史之乱何时起"}'
    upstream.route("POST", PATH, tool_call_stream("history_search", arguments, split=4), stream("天宝十四载。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "查一下安史之乱是哪一年", "tools": True})
    await frames_until(ws, "reply_end")
    await ws.disconnect()
    [reply] = await replies(conversation)
    assert len(upstream.requests) == 2 and (reply.prompt_tokens, reply.completion_tokens) == (240, 18)


async def test_the_judge_is_not_asked_for_a_user_over_the_quota(alice, conversation, credential, upstream, spent,
                                                                monkeypatch, settings):
    import chat.streaming

    settings.GUARD_MODEL_JUDGE = True
    only_just = Verdict("role_swap", 0.7, "扮演")
    monkeypatch.setattr(chat.streaming, "screen", lambda *a, **k: Screening(only_just, policy_for(only_just), True))
    upstream.route("POST", PATH, stream("in_scope"), repeat=True)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "你来扮演一下酒保"})
    end = (await frames_until(ws, "reply_end", timeout=20))[-1]["message"]
    await ws.disconnect()
    # Without the judge the rules stand: the figure's own line, written by the site, costs nothing.
    assert upstream.requests == [] and end["status"] == "complete"
    assert (await Message.objects.aget(pk=end["id"])).provider == "guard"
    assert await Message.objects.filter(content="你来扮演一下酒保").aexists()


async def test_a_background_job_of_an_over_quota_user_calls_nothing(conversation, credential, upstream, spent):
    await database_sync_to_async(fill)(conversation, 40)
    await database_sync_to_async(queue.enqueue)(BackgroundJob.Kind.SUMMARY, conversation.pk)
    upstream.route("POST", PATH, stream("摘要。"))
    assert await run_jobs() == 1
    job = await BackgroundJob.objects.aget()
    assert job.status == BackgroundJob.Status.FAILED and "额度" in job.error and upstream.requests == []


async def test_an_over_quota_users_title_is_the_local_one(conversation, credential, upstream, spent):
    await database_sync_to_async(fill)(conversation, 1)
    await database_sync_to_async(queue.enqueue)(BackgroundJob.Kind.TITLE, conversation.pk)
    assert await run_jobs() == 1
    await conversation.arefresh_from_db()
    assert conversation.title_origin == "auto" and conversation.title and upstream.requests == []


def test_the_callback_greeting_is_not_offered_over_the_quota(alice, alice_client, conversation, credential, upstream,
                                                              spent):
    from chat import services

    fresh = services.conversation_start(owner=alice, persona=conversation.persona)
    listed = alice_client.post(reverse("chat:callback", args=[fresh.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "今日的用量额度已用完" in listed and not BackgroundJob.objects.filter(kind="callback").exists()


def test_an_image_job_over_the_quota_fails_at_once(alice, conversation, credential, upstream, spent):
    job = request_image(alice, conversation, "李白月下独酌")
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "quota" and "额度" in job.error_message
    assert upstream.requests == []


async def test_counts_are_the_databases_so_every_process_agrees(alice, conversation, credential, upstream, limit):
    """Another process's replies are rows like ours: one written outside this socket counts at once."""
    ws = await connect(alice, conversation.pk)
    await database_sync_to_async(spend)(conversation, 150)  # as if another daphne process had answered
    await ws.send_json_to({"type": "send", "text": "还能问吗"})
    frames = await frames_until(ws, "error")
    assert frames[-1]["code"] == "quota"
    await ws.disconnect()
    assert upstream.requests == []
    await asyncio.sleep(0)
