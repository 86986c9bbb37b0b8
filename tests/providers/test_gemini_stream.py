"""Gemini generateContent over real sockets: streamGenerateContent?alt=sse, its chunks, tools, usage, errors.

Each SSE event is a whole GenerateContentResponse; the stream has no terminal marker, so the
finishReason is what makes it complete.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from chat.providers import gemini
from chat.providers.chat import Finish, ToolCall, ToolCallDelta, ToolCalls, Usage
from chat.providers.convert import OPENER
from chat.streaming import key_rejected
from tests.fakes.upstream import json_reply, sse_reply
from tests.providers import (
    KEY,
    MESSAGES,
    Sleeps,
    config,
    run,
    shared_client,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.usefixtures("shared_client")

MODEL = "gemini-2.5-pro"
PATH = f"/v1beta/models/{MODEL}:streamGenerateContent"
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False}  # fmt: skip
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "查天气", "parameters": CITY}}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
USAGE = {"promptTokenCount": 31, "candidatesTokenCount": 9, "thoughtsTokenCount": 4, "totalTokenCount": 44}


def gem(upstream, **overrides):
    return config(upstream, kind="openai_compatible", protocol="gemini", **{"model": MODEL, **overrides})


def chunk(*parts: dict, finish: str | None = None, usage: dict | None = None) -> dict:
    candidate = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body = {"candidates": [candidate], "modelVersion": MODEL, "responseId": "mAitaK2bLY7Oz7IPp_-1gAs"}
    if usage:
        body["usageMetadata"] = usage
    return body


def reply(*texts: str) -> list[dict]:
    *head, last = texts
    return [*(chunk({"text": t}) for t in head), chunk({"text": last}, finish="STOP", usage=USAGE)]


async def test_it_streams_a_reply_in_the_generate_content_shape(upstream):
    parts = [chunk({"text": "先想想……", "thought": True}), *reply("大江东去，", "浪淘尽。")]
    upstream.route("POST", PATH, sse_reply(parts, stride=9))
    messages = [*MESSAGES, {"role": "assistant", "content": "久仰。"}, {"role": "system", "content": "答得简短。"},
                {"role": "user", "content": "请讲"}]  # fmt: skip
    outcome = await run(gem(upstream), messages, temperature=0.7, max_tokens=512)
    assert outcome.error is None
    assert outcome.text == "大江东去，浪淘尽。"  # the thought part is not the answer
    assert outcome.events[-2:] == [Usage(31, 13, 44), Finish("stop")]
    [request] = upstream.requests
    assert request.path == PATH and request.query == "alt=sse"
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["x-goog-api-key"] == KEY
    assert request.json() == {
        "contents": [
            {"role": "user", "parts": [{"text": "你好"}]},
            {"role": "model", "parts": [{"text": "久仰。"}]},
            {"role": "user", "parts": [{"text": "请讲"}]},
        ],
        "systemInstruction": {"parts": [{"text": "你是苏轼。"}, {"text": "答得简短。"}]},
        "generationConfig": {"temperature": 0.7, "maxOutputTokens": 512},
    }


async def test_it_streams_a_function_call_and_sends_the_round_back(upstream):
    call_chunk = chunk({"functionCall": {"name": "get_weather", "args": {"city": "北京"}}}, finish="STOP", usage=USAGE)
    upstream.route("POST", PATH, sse_reply([chunk({"text": "我查一下。"}), call_chunk]), sse_reply(reply("北京晴。")))
    outcome = await run(gem(upstream), tools=WEATHER)
    assert outcome.error is None and outcome.text == "我查一下。"
    call = ToolCall("", "get_weather", '{"city": "北京"}')  # Gemini gives no id; the tool runner makes one
    assert outcome.of(ToolCallDelta) == [ToolCallDelta(0, None, "get_weather", call.arguments)]
    assert outcome.events[-3:] == [ToolCalls([call]), Usage(31, 13, 44), Finish("tool_calls")]
    schema = {k: v for k, v in CITY.items() if k != "additionalProperties"}  # outside Gemini's schema subset
    declaration = {"name": "get_weather", "description": "查天气", "parameters": schema}
    assert upstream.requests[0].json()["tools"] == [{"functionDeclarations": [declaration]}]

    round_ = [
        {"role": "assistant", "content": "我查一下。", "tool_calls": [
            {"id": "call_user_1", "type": "function",
             "function": {"name": "get_weather", "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": "call_user_1", "content": '{"天气": "晴"}'},
    ]  # fmt: skip
    assert (await run(gem(upstream), [*MESSAGES, *round_], tools=WEATHER)).text == "北京晴。"
    assert upstream.requests[1].json()["contents"][1:] == [
        {"role": "model", "parts": [{"text": "我查一下。"},
                                    {"functionCall": {"name": "get_weather", "args": {"city": "北京"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"天气": "晴"}}}]},
    ]  # fmt: skip


async def test_it_sends_an_image_part_as_inline_data(upstream):
    upstream.route("POST", PATH, sse_reply(reply("好一幅山水。")))
    messages = [
        {"role": "system", "content": "你是李白。"},
        {"role": "assistant", "content": "客从何处来？"},
        {"role": "user", "content": [
            {"type": "text", "text": "请看这幅画"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
    ]  # fmt: skip
    assert (await run(gem(upstream), messages)).text == "好一幅山水。"
    assert upstream.requests[0].json()["contents"] == [
        {"role": "user", "parts": [{"text": OPENER}]},
        {"role": "model", "parts": [{"text": "客从何处来？"}]},
        {"role": "user", "parts": [{"text": "请看这幅画"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]},
    ]


@pytest.mark.parametrize(
    "status, name",
    [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE"), (500, "INTERNAL")],
)
async def test_it_retries_transient_statuses_before_content(upstream, status, name):
    body = {"error": {"code": status, "message": "Resource has been exhausted (e.g. check quota).", "status": name}}
    sleeps = Sleeps()
    upstream.route("POST", PATH, json_reply(status, body), sse_reply(reply("好")))
    outcome = await run(gem(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "好"
    assert len(upstream.requests) == 2 and len(sleeps.delays) == 1


@pytest.mark.parametrize(
    "status, body, code",
    [
        (400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                         "status": "INVALID_ARGUMENT", "details": [
                             {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                              "domain": "googleapis.com"}]}}, "API_KEY_INVALID"),
        (401, [{"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                          "status": "UNAUTHENTICATED"}}], "UNAUTHENTICATED"),  # the JSON array streamGenerateContent may answer
    ],
    ids=["400-api-key-invalid", "401-array"],
)
async def test_it_does_not_retry_a_rejected_key(upstream, status, body, code):
    upstream.route("POST", PATH, json_reply(status, body), sse_reply(reply("不该到这里")))
    outcome = await run(gem(upstream), sleep=Sleeps())
    assert (outcome.error.kind, outcome.error.code, outcome.error.retryable) == ("auth", code, False)
    assert key_rejected(outcome.error)  # the connection is then marked invalid, as for a 401
    assert outcome.error.message == "API 密钥无效或已失效，请检查密钥设置。"
    assert len(upstream.requests) == 1 and outcome.events == []


async def test_an_error_chunk_mid_stream_keeps_the_partial_text(upstream):
    error = {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                       "status": "UNAVAILABLE"}}  # fmt: skip
    upstream.route("POST", PATH, sse_reply([chunk({"text": "半句"}), error]), sse_reply(reply("不该重试")))
    outcome = await run(gem(upstream), sleep=Sleeps())
    assert outcome.text == "半句"
    assert (outcome.error.kind, outcome.error.code, outcome.error.after_content) == ("unavailable", "UNAVAILABLE", True)
    assert len(upstream.requests) == 1
    assert not outcome.of(Finish) and not outcome.of(Usage)


async def test_a_stream_without_a_finish_reason_is_interrupted(upstream):
    upstream.route("POST", PATH, sse_reply([chunk({"text": "写到"}), chunk({"text": "一半"}, usage=USAGE)]))
    outcome = await run(gem(upstream), sleep=Sleeps())
    assert outcome.text == "写到一半"
    assert outcome.error.kind == "interrupted" and outcome.error.after_content
    assert not outcome.of(Finish) and not outcome.of(Usage)


@pytest.mark.parametrize(
    "last, kind",
    [
        (chunk({"text": "后半"}, finish="SAFETY"), "moderation"),
        ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": USAGE}, "moderation"),
    ],
    ids=["finish-safety", "prompt-blocked"],
)
async def test_blocked_content_is_a_moderation_error(upstream, last, kind):
    upstream.route("POST", PATH, sse_reply([chunk({"text": "前半"}), last]))
    outcome = await run(gem(upstream), sleep=Sleeps())
    assert outcome.error.kind == kind and not outcome.error.retryable
    assert not outcome.of(Finish)


async def test_max_tokens_finishes_with_length(upstream):
    upstream.route("POST", PATH, sse_reply([chunk({"text": "甲"}, finish="MAX_TOKENS", usage=USAGE)]))
    assert (await run(gem(upstream))).events[-1] == Finish("length")


@pytest.mark.parametrize(
    "base, url",
    [
        ("https://relay.example/v1", "https://relay.example/v1beta/models/m:streamGenerateContent?alt=sse"),
        ("https://relay.example/v1beta/", "https://relay.example/v1beta/models/m:streamGenerateContent?alt=sse"),
        ("https://relay.example/gemini", "https://relay.example/gemini/v1beta/models/m:streamGenerateContent?alt=sse"),
    ],
)
async def test_it_builds_the_path_from_the_base_url(upstream, base, url):
    cfg = gem(upstream, base_url=base, model="models/m")
    async with httpx.AsyncClient() as http:
        request = gemini.build_request(http, cfg, MESSAGES, tools=None, temperature=None, max_tokens=None)
    assert str(request.url) == url and request.headers["authorization"] == f"Bearer {KEY}"


async def test_it_sends_no_bearer_to_google(upstream):
    cfg = gem(upstream, base_url="https://generativelanguage.googleapis.com/v1beta")
    async with httpx.AsyncClient() as http:
        request = gemini.build_request(http, cfg, MESSAGES, tools=None, temperature=None, max_tokens=None)
    assert "authorization" not in request.headers and request.headers["x-goog-api-key"] == KEY
