"""The chat websocket against a scripted upstream on 127.0.0.1 (real sockets, real SSE bytes)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.models import ApiCredential, CredentialStatus
from chat import services
from chat.quoting import MESSAGE, quote_user_data
from chat.routing import websocket_urlpatterns
from chat.streaming import FRAME_INTERVAL
from tests.fakes.upstream import Reply, json_reply, sse_reply
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-consumer0123456789a1b2"
PATH = "/v1/chat/completions"


def chunk(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}], "object": "chat.completion.chunk"}


FINISH = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
USAGE = {"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129}}


def stream(*texts: str, gap: float = 0.0, done: bool = True) -> Reply:
    events: list = []
    for text in texts:
        events += [chunk(text), gap] if gap else [chunk(text)]
    events += [FINISH, USAGE, "data: [DONE]\n\n"] if done else []
    return sse_reply(events)


@pytest.fixture(autouse=True)
def fast_timeouts(settings):
    settings.PROVIDER_CONNECT_TIMEOUT = 2.0
    settings.PROVIDER_FIRST_BYTE_TIMEOUT = 2.0
    settings.PROVIDER_FIRST_CONTENT_TIMEOUT = 3.0
    settings.PROVIDER_IDLE_TIMEOUT = 1.0
    settings.PROVIDER_TOTAL_TIMEOUT = 20.0
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def conversation(alice):
    persona = make_persona("li-bai", "李白")
    return services.conversation_start(owner=alice, persona=persona)


@pytest.fixture
def credential(alice, upstream):
    credential = ApiCredential(owner=alice, kind="openai_compatible", label="本地", base_url=f"{upstream.url}/v1",
                               status=CredentialStatus.VALID)
    credential.set_key(KEY)
    credential.save()
    return credential


async def connect(user, conversation_id) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{conversation_id}/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def frames_until(communicator, kind: str, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] == kind:
            return frames


def text_of(frames) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


@database_sync_to_async
def replies(conversation):
    return list(conversation.messages.filter(role="assistant").exclude(provider="greeting").order_by("id"))


async def test_it_streams_a_reply_and_saves_it_once(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream("君问", "何事？", "且听", "白道来。"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "你好，太白"})
    frames = await frames_until(ws, "reply_end")
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "message" and kinds[1] == "reply_start"
    assert text_of(frames) == "君问何事？且听白道来。"
    end = frames[-1]["message"]
    assert end["status"] == "complete" and end["role"] == "assistant"
    [reply] = await replies(conversation)
    assert reply.content == "君问何事？且听白道来。"
    assert (reply.prompt_tokens, reply.completion_tokens) == (120, 9)
    body = upstream.requests[0].json()
    assert body["stream"] is True and "tools" not in body
    assert body["messages"][0]["role"] == "system" and "李白" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": quote_user_data("你好，太白", MESSAGE)}
    assert KEY not in json.dumps(frames, ensure_ascii=False)
    await ws.disconnect()


async def test_it_coalesces_deltas_into_few_frames(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream(*["字"] * 60, gap=0.005))
    ws = await connect(alice, conversation.pk)
    started = time.monotonic()
    await ws.send_json_to({"type": "send", "text": "写字"})
    frames = await frames_until(ws, "reply_end")
    elapsed = time.monotonic() - started
    deltas = [f for f in frames if f["type"] == "delta"]
    assert text_of(frames) == "字" * 60
    # At most one frame per FRAME_INTERVAL over however long the reply took (about 0.3 s of stream
    # on a quiet machine, so a handful of frames): the bound grows with a slow machine instead of
    # failing on it, while one frame per token (60) stays far above it.
    assert 1 <= len(deltas) <= 2 + elapsed / FRAME_INTERVAL, (len(deltas), elapsed)
    await ws.disconnect()


async def test_the_users_message_is_saved_before_the_call(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, Reply(500, body=b"{}", header_delay=0.5))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "先存我的话"})
    frame = await ws.receive_json_from()
    assert frame["type"] == "message"
    assert await database_sync_to_async(conversation.messages.filter(role="user", content="先存我的话").exists)()
    await ws.disconnect()


async def test_a_non_owner_or_a_stranger_is_refused_before_accept(bob, conversation):
    from django.contrib.auth.models import AnonymousUser

    for user in (bob, AnonymousUser()):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/chat/{conversation.pk}/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert not connected
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/chat/999999/")
    communicator.scope["user"] = bob
    connected, _ = await communicator.connect()
    assert not connected


async def test_stop_keeps_the_partial_text_and_releases_the_upstream(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream(*[f"{i}句。" for i in range(40)], gap=0.05))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "讲个长故事"})
    frames = await frames_until(ws, "delta")
    await ws.send_json_to({"type": "stop"})
    frames += await frames_until(ws, "reply_end")
    end = frames[-1]["message"]
    assert end["status"] == "stopped"
    [reply] = await replies(conversation)
    assert reply.status == "stopped"
    assert reply.content.startswith("0句。") and len(reply.content) < len("".join(f"{i}句。" for i in range(40)))
    assert text_of(frames) == reply.content
    await asyncio.to_thread(upstream.wait_idle)  # its default timeout only bounds a hang
    await ws.disconnect()


async def test_a_second_send_while_streaming_is_busy(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream("慢", "慢", "来", gap=0.2))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "一"})
    await frames_until(ws, "reply_start")
    await ws.send_json_to({"type": "send", "text": "二"})
    frames = await frames_until(ws, "error")
    assert frames[-1]["code"] == "busy" and "生成" in frames[-1]["message"]
    await frames_until(ws, "reply_end")
    assert await database_sync_to_async(conversation.messages.filter(content="二").exists)() is False
    await ws.disconnect()


@pytest.mark.parametrize(("text", "code"), [("", "empty"), ("   ", "empty"), ("长" * 4001, "too_long")])
async def test_empty_or_oversized_messages_are_refused(alice, conversation, credential, upstream, text, code):
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": text})
    frame = await ws.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == code
    assert await database_sync_to_async(conversation.messages.count)() == 1
    assert upstream.requests == []
    await ws.disconnect()


async def test_malformed_frames_get_a_clear_answer(alice, conversation):
    ws = await connect(alice, conversation.pk)
    await ws.send_to(text_data="not json")
    assert (await ws.receive_json_from())["code"] == "bad_request"
    await ws.send_json_to({"type": "dance"})
    assert (await ws.receive_json_from())["code"] == "bad_request"
    await ws.send_json_to({"type": "regenerate", "message_id": 10**9})
    assert (await ws.receive_json_from())["code"] == "not_found"
    await ws.disconnect()


async def test_sends_are_rate_limited_per_user(alice, conversation, credential, upstream, settings):
    settings.SEND_LIMIT_PER_MINUTE = 1
    upstream.route("POST", PATH, stream("好"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "一"})
    await frames_until(ws, "reply_end")
    await ws.send_json_to({"type": "send", "text": "二"})
    frame = await ws.receive_json_from()
    assert frame["code"] == "rate_limited" and "每分钟最多 1 条" in frame["message"]
    await ws.disconnect()


async def test_without_a_key_no_call_is_made_and_the_message_is_kept(alice, conversation, upstream):
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "太白兄近来可好？"})
    end = (await frames_until(ws, "reply_end"))[-1]["message"]
    assert end["status"] == "error" and end["error_kind"] == "no_key"
    assert upstream.requests == []
    assert await database_sync_to_async(conversation.messages.filter(content="太白兄近来可好？").exists)()
    await ws.disconnect()


FAULTS = [
    ("auth", [json_reply(401, {"error": {"code": "invalid_api_key", "message": "Incorrect API key provided."}})], ""),
    ("billing", [json_reply(400, {"error": {"code": "Arrearage", "type": "Arrearage", "message": "Access denied"}})], ""),
    ("billing", [json_reply(402, {"error": {"code": 402, "message": "Insufficient credits"}})], ""),
    ("rate_limit", [json_reply(429, {"error": {"code": "limit_requests", "message": "slow down"}}, {"retry-after-ms": "10"})] * 3, ""),
    ("upstream", [json_reply(500, {"code": "InternalError", "message": "boom"}, {"retry-after-ms": "10"})] * 3, ""),
    ("moderation", [json_reply(400, {"error": {"code": "data_inspection_failed", "type": "data_inspection_failed",
                                               "message": "Input data may contain inappropriate content."}})], ""),
    ("moderation", [sse_reply([chunk("部分"), {"error": {"code": "data_inspection_failed", "message": "Output data may contain inappropriate content."}}])], "部分"),
    ("upstream", [sse_reply([chunk("半句"), {"error": {"code": "server_error", "message": "Provider disconnected"},
                                            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}])], "半句"),
    ("interrupted", [stream("断了", done=False)], "断了"),
    ("interrupted", [sse_reply([chunk("断"), chunk("线")], end="reset")], None),
]


@pytest.mark.parametrize(("kind", "replies_", "partial"), FAULTS)
async def test_upstream_faults_end_in_a_saved_error_reply(alice, conversation, credential, upstream, kind, replies_, partial):
    upstream.route("POST", PATH, *replies_)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "问"})
    frames = await frames_until(ws, "reply_end", timeout=15)
    end = frames[-1]["message"]
    assert end["status"] == "error" and end["error_kind"] == kind
    [reply] = await replies(conversation)
    if partial is not None:
        assert reply.content == partial
    assert await database_sync_to_async(conversation.messages.filter(role="user", content="问").exists)()
    assert "Traceback" not in json.dumps(frames, ensure_ascii=False)
    await ws.disconnect()


async def test_a_slow_first_byte_times_out(alice, conversation, credential, upstream, settings):
    settings.PROVIDER_FIRST_BYTE_TIMEOUT = 0.2
    upstream.route("POST", PATH, *[Reply(200, body=b"{}", header_delay=1.0)] * 3)
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "太白兄近来可好？"})
    end = (await frames_until(ws, "reply_end", timeout=20))[-1]["message"]
    assert end["status"] == "error" and end["error_kind"] == "timeout"
    await ws.disconnect()


async def test_regenerate_adds_a_sibling_reply(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream("初答"), stream("再答"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "问"})
    first = (await frames_until(ws, "reply_end"))[-1]["message"]
    await ws.send_json_to({"type": "regenerate", "message_id": first["id"]})
    frames = await frames_until(ws, "reply_end")
    assert "message" not in [f["type"] for f in frames]  # no new user message
    second = frames[-1]["message"]
    assert second["parent_id"] == first["parent_id"]
    assert [r.content for r in await replies(conversation)] == ["初答", "再答"]
    # The regenerated request carries the same history: the question is the last turn.
    assert upstream.requests[1].json()["messages"][-1] == {"role": "user", "content": quote_user_data("问", MESSAGE)}
    await ws.disconnect()


async def test_edit_sends_a_sibling_question(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream("答一"), stream("答二"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "原问"})
    frames = await frames_until(ws, "reply_end")
    question = frames[0]["message"]
    await ws.send_json_to({"type": "edit", "message_id": question["id"], "text": "改问"})
    frames = await frames_until(ws, "reply_end")
    edited = frames[0]["message"]
    assert edited["parent_id"] == question["parent_id"] and edited["id"] != question["id"]
    messages = upstream.requests[1].json()["messages"]
    assert messages[-1] == {"role": "user", "content": quote_user_data("改问", MESSAGE)}
    assert all("原问" not in m["content"] for m in messages)
    await ws.disconnect()


async def test_closing_the_socket_cancels_the_upstream_and_keeps_the_partial(alice, conversation, credential, upstream):
    upstream.route("POST", PATH, stream(*[f"{i}。" for i in range(50)], gap=0.05), stream("续"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "讲"})
    await frames_until(ws, "delta")
    await ws.disconnect()
    request = upstream.requests[0]
    assert await asyncio.to_thread(request.closed_event.wait, 30)  # a hang guard
    [reply] = await replies(conversation)
    assert reply.status == "stopped" and reply.content.startswith("0。")
    # A client that reconnects finds the partial reply, and it is part of the next request's history.
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "然后呢"})
    await frames_until(ws, "reply_end")
    history = upstream.requests[1].json()["messages"]
    assert history[-2] == {"role": "assistant", "content": reply.content}
    await ws.disconnect()


async def test_http_changes_reach_an_open_socket(alice, conversation, credential, upstream):
    from chat.notify import conversation_changed

    upstream.route("POST", PATH, stream("甲"), stream("乙"))
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "一问"})
    first = (await frames_until(ws, "reply_end"))[-1]["message"]
    stage = await database_sync_to_async(conversation.persona.life_stages.first)()
    conversation.life_stage = stage
    await database_sync_to_async(conversation.save)()
    await database_sync_to_async(conversation_changed)(conversation.pk)
    await asyncio.sleep(0.05)
    await ws.send_json_to({"type": "send", "text": "二问", "parent_id": first["id"]})
    await frames_until(ws, "reply_end")
    assert stage.name in upstream.requests[1].json()["messages"][0]["content"]
    await ws.disconnect()


async def test_the_full_asgi_stack_checks_session_and_origin(alice, conversation, client):
    from django.conf import settings as django_settings

    from guyue.asgi import application

    await database_sync_to_async(client.force_login)(alice)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    good = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie.encode()), (b"host", b"127.0.0.1:8000")]
    communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation.pk}/", headers=good)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()
    for origin in (b"https://evil.example", b"http://127.0.0.1:9000", b"https://127.0.0.1:8000"):
        evil = [(b"origin", origin), (b"cookie", cookie.encode()), (b"host", b"127.0.0.1:8000")]
        communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation.pk}/", headers=evil)
        connected, _ = await communicator.connect()
        assert not connected, origin
    anonymous = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    communicator = WebsocketCommunicator(application, f"/ws/chat/{conversation.pk}/", headers=anonymous)
    connected, _ = await communicator.connect()
    assert not connected
