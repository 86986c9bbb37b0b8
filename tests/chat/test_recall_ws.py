"""Memory and recall through the websocket and the page, against a scripted upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from chat import services
from chat.models import Conversation, Memory
from chat.recall import extract
from chat.recall.memories import memory_add, preference_update
from tests.chat.test_consumer import KEY, PATH, connect, credential, fast_timeouts, frames_until, stream  # noqa: F401  # noqa: F401  (fixtures)
from tests.fakes.jobs import is_title_request, run_jobs, run_jobs_sync
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def li_bai():
    return make_persona("li-bai", "李白")


@pytest.fixture
def conversation(alice, li_bai):
    return services.conversation_start(owner=alice, persona=li_bai)


def system_text(request) -> str:
    return "\n".join(m["content"] for m in request.json()["messages"] if m["role"] == "system")


async def say(ws, text: str) -> list[dict]:
    await ws.send_json_to({"type": "send", "text": text})
    return await frames_until(ws, "reply_end")


async def test_a_remember_request_is_kept_and_recalled_in_the_same_reply(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream("好，白记下了。"))
    ws = await connect(alice, conversation.pk)
    frames = await say(ws, "记住我喜欢边塞诗")
    saved = next(f for f in frames if f["type"] == "memory_saved")
    assert saved["content"] == "我喜欢边塞诗"
    memory = await Memory.objects.aget(pk=saved["memory_id"])
    assert memory.owner_id == alice.pk and memory.source_message_id is not None
    assert "「我喜欢边塞诗（用户原话）」" in system_text(upstream.requests[0])
    await ws.disconnect()


async def test_preferences_and_memories_shape_the_next_request_and_stay_private(
    alice, bob, conversation, credential, upstream, li_bai,
):
    upstream.route("POST", PATH, stream("一"), stream("二"), stream("三"))
    await database_sync_to_async(memory_add)(owner=alice, persona=li_bai, content="用户的暗号是青莲", pinned=True)
    ws = await connect(alice, conversation.pk)
    await say(ws, "太白，近来可好")
    assert "个性倾向" not in system_text(upstream.requests[0])
    await database_sync_to_async(preference_update)(
        owner=alice, persona=li_bai, personality="温和耐心", knowledge="诗词", language_style="白话为主")
    await say(ws, "再说一句")
    second = system_text(upstream.requests[1])
    assert "个性倾向：温和耐心；知识偏好：诗词；语言风格：白话为主" in second and "用户的暗号是青莲" in second
    await ws.disconnect()
    bob_conversation = await database_sync_to_async(services.conversation_start)(owner=bob, persona=li_bai)
    await database_sync_to_async(_give_key)(bob, upstream)
    ws = await connect(bob, bob_conversation.pk)
    await say(ws, "青莲暗号是什么")
    third = json.dumps(upstream.requests[2].json(), ensure_ascii=False)
    assert "青莲" not in third.replace("青莲暗号是什么", "") and "温和耐心" not in third
    await ws.disconnect()


def _give_key(user, upstream):
    from accounts.models import ApiCredential, CredentialStatus
    credential = ApiCredential(owner=user, kind="openai_compatible", label="本地", base_url=f"{upstream.url}/v1",
                               status=CredentialStatus.VALID)
    credential.set_key(KEY)
    credential.save()


EXTRACTED = json.dumps([{"fact": "用户叫林晓，在杭州教语文", "from": 1}, {"fact": "用户下个月带学生去黄鹤楼", "from": 2}],
                       ensure_ascii=False)


async def test_memories_are_extracted_every_few_turns(alice, conversation, credential, upstream, monkeypatch):
    monkeypatch.setattr(extract, "EXTRACT_EVERY", 2)
    upstream.route("POST", PATH, stream("林晓的黄鹤楼之行"), when=is_title_request)
    upstream.route("POST", PATH, stream("幸会。"), stream("黄鹤楼好地方。"), stream(EXTRACTED))
    ws = await connect(alice, conversation.pk)
    await say(ws, "我叫林晓，在杭州教语文")
    await say(ws, "下个月我带学生去黄鹤楼")
    assert len(upstream.requests) == 2  # queued for the worker, not run in the web process
    assert await run_jobs() == 2  # the extraction, and the title the first exchange asked for
    [extraction] = [r for r in upstream.requests if "值得长期记住" in system_text(r)]
    assert "[1] 「我叫林晓" in extraction.json()["messages"][-1]["content"]
    facts = [m async for m in Memory.objects.filter(owner=alice).order_by("pk").values_list("content", "origin")]
    assert facts == [("用户叫林晓，在杭州教语文", "auto"), ("用户下个月带学生去黄鹤楼", "auto")]
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert refreshed.memory_through_id is not None
    await ws.disconnect()


async def test_switched_off_extraction_makes_no_call(alice, conversation, credential, upstream, monkeypatch, settings):
    monkeypatch.setattr(extract, "EXTRACT_EVERY", 2)
    settings.MEMORY_EXTRACT_ON_LEAVE = True
    alice.memory_auto = False
    await alice.asave(update_fields=["memory_auto"])
    upstream.route("POST", PATH, stream("幸会。"), stream("好。"), stream(EXTRACTED))
    ws = await connect(alice, conversation.pk)
    await say(ws, "我叫林晓，在杭州教语文")
    await say(ws, "下个月我带学生去黄鹤楼")
    await ws.disconnect()  # leaving would extract too, if it were on
    await run_jobs()
    assert len(upstream.requests) == 2 and not await Memory.objects.aexists()


async def test_leaving_a_conversation_extracts_what_is_new(alice, conversation, credential, upstream, settings):
    settings.MEMORY_EXTRACT_ON_LEAVE = True
    upstream.route("POST", PATH, stream("林晓的黄鹤楼之行"), when=is_title_request)
    upstream.route("POST", PATH, stream("幸会。"), stream("好。"), stream(EXTRACTED))
    ws = await connect(alice, conversation.pk)
    await say(ws, "我叫林晓，在杭州教语文")
    await say(ws, "下个月我带学生去黄鹤楼")
    assert len(upstream.requests) == 2
    await ws.disconnect()
    assert len(upstream.requests) == 2 and await run_jobs() == 2  # the extraction and the title
    assert any("值得长期记住" in system_text(r) for r in upstream.requests[2:])
    assert await Memory.objects.filter(owner=alice, origin="auto").acount() == 2


def test_the_internet_question_is_remembered_days_later(alice, li_bai, credential, upstream):  # noqa: F811
    """MISSION §3: "上次你问我'互联网是何物'，如今我略有理解……"."""
    client = Client()
    client.force_login(alice)
    upstream.route("POST", PATH, stream("互联网是何物"), when=is_title_request)
    upstream.route(
        "POST", PATH,
        stream("互联网？白未之闻也，想来是千里传书之术。"),
        stream("故人又来！上次你问我「互联网是何物」，如今我略有理解：大约是天下人同饮一壶酒。"),
        stream("正是，白这几日还在想那千里传书之术。"),
    )
    with time_machine.travel(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC), tick=True):
        first = services.conversation_start(owner=alice, persona=li_bai)
        asyncio.run(_talk(alice, first.pk, "太白，你可知互联网是何物？"))
    with time_machine.travel(dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC), tick=True):
        response = client.post(reverse("chat:start", args=[li_bai.slug]))
        second = Conversation.objects.exclude(pk=first.pk).get()
        page = client.get(response["Location"]).content.decode()
        assert "请李白忆起上回所谈" in page  # the callback greeting is offered
        pending = client.post(reverse("chat:callback", args=[second.pk]), HTTP_HX_REQUEST="true").content.decode()
        assert "李白正在回想上回所谈" in pending and len(upstream.requests) == 1  # a job for the worker
        assert run_jobs_sync() == 2  # the greeting, and the first conversation's title
        followed = reverse("chat:messages", args=[second.pk]) + "?callback=1"
        listed = client.get(followed, HTTP_HX_REQUEST="true").content.decode()  # the line's next poll
        assert "正在回想" not in listed
        [callback_request] = [r.json() for r in upstream.requests[1:] if not is_title_request(r.body)]
        data = "\n".join(m["content"] for m in callback_request["messages"])
        assert "互联网是何物" in data and "千里传书之术" in data and "三天前" in data
        assert "上次你问我「互联网是何物」" in listed
        second.refresh_from_db()
        assert second.active_leaf.content.startswith("故人又来") and second.active_leaf.parent_id is None
        assert "请李白忆起上回所谈" not in client.get(reverse("chat:page", args=[second.pk])).content.decode()
        asyncio.run(_talk(alice, second.pk, "上回说的互联网，你又想到什么？"))
    reply_request = json.dumps(upstream.requests[-1].json(), ensure_ascii=False)
    assert "2026-11-20，用户问：太白，你可知互联网是何物？" in reply_request


async def _talk(user, conversation_id: int, text: str) -> None:
    ws = await connect(user, conversation_id)
    await say(ws, text)
    await ws.disconnect()


def test_the_callback_is_not_offered_without_an_earlier_conversation(alice, alice_client, li_bai):
    response = alice_client.post(reverse("chat:start", args=[li_bai.slug]))
    assert "忆起上回" not in alice_client.get(response["Location"]).content.decode()
    conversation = Conversation.objects.get()
    listed = alice_client.post(reverse("chat:callback", args=[conversation.pk]), HTTP_HX_REQUEST="true")
    assert "没有可以接续的上一段对话" in listed.content.decode()


def test_another_users_callback_is_a_404(alice, bob_client, conversation):
    assert bob_client.post(reverse("chat:callback", args=[conversation.pk])).status_code == 404


@pytest.mark.parametrize(("days", "said"), [(0, "今天早些时候"), (1, "昨天"), (2, "前天"), (3, "三天前"), (10, "十天前"),
                                            (17, "17天前"), (45, "一个多月前"), (70, "两个多月前"), (400, "一年多以前"),
                                            (1100, "3年多以前")])
def test_the_callback_says_how_long_ago_as_a_person_would(days, said):
    from chat.recall.callback import _when

    assert _when(days) == said
