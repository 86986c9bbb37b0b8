"""A reply over the websocket from an Anthropic Messages or Gemini connection (scripted upstream, real sockets)."""

from __future__ import annotations

import json

import pytest

from accounts.models import ApiCredential, CredentialStatus
from chat import services
from chat.quoting import MESSAGE, quote_user_data
from tests.chat.test_consumer import connect, frames_until, replies, text_of
from tests.fakes.upstream import sse_reply
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-protocols0123456789ab"


def anthropic_event(obj: dict) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj, ensure_ascii=False)}\n\n"


def anthropic_stream(*texts: str):
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                              "usage": {"input_tokens": 130, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}} for t in texts),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 11}},
        {"type": "message_stop"},
    ]  # fmt: skip
    return sse_reply([anthropic_event(e) for e in events])


def gemini_stream(*texts: str):
    *head, last = texts
    chunks = [{"candidates": [{"content": {"role": "model", "parts": [{"text": t}]}, "index": 0}]} for t in head]
    chunks.append({"candidates": [{"content": {"role": "model", "parts": [{"text": last}]}, "index": 0,
                                   "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 130, "candidatesTokenCount": 11, "totalTokenCount": 141}})
    return sse_reply(chunks)  # fmt: skip


@pytest.fixture(autouse=True)
def fast_timeouts(settings):
    settings.PROVIDER_FIRST_BYTE_TIMEOUT = 2.0
    settings.PROVIDER_FIRST_CONTENT_TIMEOUT = 3.0
    settings.PROVIDER_IDLE_TIMEOUT = 1.0
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def conversation(alice):
    return services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))


def connection(owner, upstream, protocol: str, model: str) -> ApiCredential:
    credential = ApiCredential(owner=owner, kind="openai_compatible", label="中转", base_url=f"{upstream.url}/v1",
                               chat_protocol=protocol, text_model=model, status=CredentialStatus.VALID)
    credential.set_key(KEY)
    credential.save()
    return credential


async def ask(user, conversation, text: str) -> list[dict]:
    ws = await connect(user, conversation.pk)
    await ws.send_json_to({"type": "send", "text": text})
    frames = await frames_until(ws, "reply_end")
    await ws.disconnect()
    return frames


@pytest.fixture
def anthropic_credential(alice, upstream):
    return connection(alice, upstream, "anthropic", "claude-3-5-sonnet-20241022")


@pytest.fixture
def gemini_credential(alice, upstream):
    return connection(alice, upstream, "gemini", "gemini-2.5-flash")


@pytest.mark.usefixtures("anthropic_credential")
async def test_an_anthropic_connection_streams_a_reply(alice, conversation, upstream):
    upstream.route("POST", "/v1/messages", anthropic_stream("君问", "何事？", "且听", "白道来。"))
    frames = await ask(alice, conversation, "你好，太白")
    assert text_of(frames) == "君问何事？且听白道来。"
    assert frames[-1]["message"]["status"] == "complete"
    [reply] = await replies(conversation)
    assert reply.content == "君问何事？且听白道来。"
    assert (reply.prompt_tokens, reply.completion_tokens) == (130, 11)
    [request] = upstream.requests
    assert request.headers["x-api-key"] == KEY
    body = request.json()
    assert body["model"] == "claude-3-5-sonnet-20241022" and body["stream"] is True and body["max_tokens"] > 0
    assert "李白" in body["system"] and all(m["role"] in ("user", "assistant") for m in body["messages"])
    assert body["messages"][0]["role"] == "user"  # the greeting opens our history; the API wants a user turn first
    assert body["messages"][-1] == {"role": "user", "content": quote_user_data("你好，太白", MESSAGE)}
    assert KEY not in json.dumps(frames, ensure_ascii=False)


@pytest.mark.usefixtures("gemini_credential")
async def test_a_gemini_connection_streams_a_reply(alice, conversation, upstream):
    upstream.route("POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", gemini_stream("举杯", "邀明月。"))
    frames = await ask(alice, conversation, "你好")
    assert text_of(frames) == "举杯邀明月。"
    [reply] = await replies(conversation)
    assert reply.content == "举杯邀明月。" and (reply.prompt_tokens, reply.completion_tokens) == (130, 11)
    body = upstream.requests[0].json()
    assert "李白" in body["systemInstruction"]["parts"][0]["text"]
    assert body["contents"][-1] == {"role": "user", "parts": [{"text": quote_user_data("你好", MESSAGE)}]}



def anthropic_tool_stream(name: str, arguments: str):
    events = [
        {"type": "message_start", "message": {"id": "msg_2", "type": "message", "role": "assistant", "content": [],
                                              "usage": {"input_tokens": 90, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_01abc", "name": name, "input": {}}},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": arguments[i:i + 3]}}
          for i in range(0, len(arguments), 3)),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 20}},
        {"type": "message_stop"},
    ]  # fmt: skip
    return sse_reply([anthropic_event(e) for e in events])


@pytest.mark.usefixtures("anthropic_credential")
async def test_an_anthropic_tool_round_runs_the_tool_and_sends_its_result(alice, conversation, upstream):
    arguments = json.dumps({"query": "安史之乱"}, ensure_ascii=False)
    upstream.route("POST", "/v1/messages", anthropic_tool_stream("history_search", arguments),
                   anthropic_stream("天宝十四载。"))  # fmt: skip
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "安史之乱是哪一年", "tools": True})
    frames = await frames_until(ws, "reply_end")
    await ws.disconnect()
    assert any(f["type"] == "tool" and f["name"] == "history_search" for f in frames)
    assert text_of(frames) == "天宝十四载。"
    first, second = (r.json() for r in upstream.requests)
    assert "history_search" in {t["name"] for t in first["tools"]}
    call, result = second["messages"][-2:]
    assert call["role"] == "assistant" and call["content"][-1]["type"] == "tool_use"
    assert call["content"][-1]["id"] == "toolu_01abc" and call["content"][-1]["name"] == "history_search"
    [block] = result["content"]
    assert block["type"] == "tool_result" and block["tool_use_id"] == "toolu_01abc" and "不是指令" in block["content"]


@pytest.mark.usefixtures("gemini_credential")
async def test_a_gemini_function_call_runs_the_tool_and_sends_its_response(alice, conversation, upstream):
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    call = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "history_search", "args": {"query": "安史之乱"}}}]}, "index": 0, "finishReason": "STOP"}]}
    upstream.route("POST", path, sse_reply([call]), gemini_stream("天宝十四载。"))  # fmt: skip
    ws = await connect(alice, conversation.pk)
    await ws.send_json_to({"type": "send", "text": "安史之乱是哪一年", "tools": True})
    frames = await frames_until(ws, "reply_end")
    await ws.disconnect()
    assert text_of(frames) == "天宝十四载。"
    second = upstream.requests[1].json()
    model_turn, response_turn = second["contents"][-2:]
    assert model_turn["role"] == "model" and model_turn["parts"][-1]["functionCall"]["name"] == "history_search"
    [part] = response_turn["parts"]
    assert response_turn["role"] == "user" and part["functionResponse"]["name"] == "history_search"
    assert isinstance(part["functionResponse"]["response"], dict) and "说明" in part["functionResponse"]["response"]
