"""Anthropic Messages over real sockets: request shape, event stream, tools, usage, errors and endings.

Stream shapes are Anthropic's streaming events (`event:` + `data:` lines); one test replays the relay
reference's own example, which has no `event:` lines, no delta types and the usage inside the delta.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from chat.providers import anthropic
from chat.providers.chat import Finish, TextDelta, ToolCall, ToolCallDelta, ToolCalls, Usage
from chat.providers.convert import OPENER
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

PATH = "/v1/messages"
MODEL = "claude-3-5-sonnet-20241022"
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "查天气", "parameters": CITY}}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def claude(upstream, **overrides):
    return config(upstream, kind="openai_compatible", protocol="anthropic", **{"model": MODEL, **overrides})


def event(obj: dict) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj, ensure_ascii=False)}\n\n"


def start(input_tokens: int = 25) -> str:
    return event({"type": "message_start", "message": {
        "id": "msg_013Zva2CMHLNnXjNJKqJ2EF", "type": "message", "role": "assistant", "content": [], "model": MODEL,
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})


def text_block(index: int, *texts: str) -> list[str]:
    return [
        event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        *(event({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}})
          for t in texts),
        event({"type": "content_block_stop", "index": index}),
    ]  # fmt: skip


def stop(reason: str = "end_turn", output_tokens: int = 12) -> list[str]:
    return [
        event({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
               "usage": {"output_tokens": output_tokens}}),
        event({"type": "message_stop"}),
    ]  # fmt: skip


def reply(*texts: str) -> list[str]:
    return [start(), event({"type": "ping"}), *text_block(0, *texts), *stop()]


async def test_it_streams_a_reply_in_the_messages_shape(upstream):
    upstream.route("POST", PATH, sse_reply(reply("且听", "风吟，", "东坡在此。"), stride=7))
    messages = [*MESSAGES, {"role": "assistant", "content": "久仰。"}, {"role": "system", "content": "答得简短。"},
                {"role": "user", "content": "请讲"}]  # fmt: skip
    outcome = await run(claude(upstream), messages, temperature=1.4, max_tokens=512)
    assert outcome.error is None
    assert outcome.text == "且听风吟，东坡在此。"
    assert outcome.events[-2:] == [Usage(25, 12, 37), Finish("stop")]
    [request] = upstream.requests
    assert request.path == PATH
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["authorization"] == f"Bearer {KEY}"  # relays read this one
    assert request.headers["accept"] == "text/event-stream"
    assert request.json() == {
        "model": MODEL, "max_tokens": 512, "stream": True, "temperature": 1.0,  # Anthropic's range is 0–1
        "system": "你是苏轼。\n\n答得简短。",  # every system message, in order, at the top level
        "messages": [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "久仰。"},
                     {"role": "user", "content": "请讲"}],
    }  # fmt: skip


async def test_it_reads_the_reference_example_stream(upstream):
    # Verbatim from the relay reference (流式响应): data lines only, `delta` without a type, usage in the delta.
    example = [
        {"type": "message_start", "message": {"id": "msg_013Zva2CMHLNnXjNJKqJ2EF", "model": MODEL,
                                              "role": "assistant", "type": "message"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "index": 0, "delta": {"text": "从前"}},
        {"type": "content_block_delta", "index": 0, "delta": {"text": "有一只"}},
        {"type": "content_block_delta", "index": 0, "delta": {"text": "小兔子..."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                            "usage": {"input_tokens": 2045, "output_tokens": 628}}},
        {"type": "message_stop"},
    ]  # fmt: skip
    upstream.route("POST", PATH, sse_reply(example))
    outcome = await run(claude(upstream), [{"role": "user", "content": "讲个故事"}])
    assert outcome.error is None and outcome.text == "从前有一只小兔子..."
    assert outcome.events[-2:] == [Usage(2045, 628, 2673), Finish("stop")]
    assert upstream.requests[0].json()["max_tokens"] == 4096  # required by the API: a default when not given


async def test_it_streams_a_tool_call_and_sends_the_round_back(upstream):
    tool_use = [
        start(),
        *text_block(0, "我查一下。"),
        event({"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": "get_weather", "input": {}}}),
        *(event({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": p}})
          for p in ("", '{"ci', 'ty": "北', '京"}')),
        event({"type": "content_block_stop", "index": 1}),
        *stop("tool_use", 40),
    ]  # fmt: skip
    upstream.route("POST", PATH, sse_reply(tool_use), sse_reply(reply("北京晴。")))
    outcome = await run(claude(upstream), tools=WEATHER)
    call = ToolCall("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "get_weather", '{"city": "北京"}')
    assert outcome.error is None and outcome.text == "我查一下。"
    assert outcome.of(ToolCallDelta)[0] == ToolCallDelta(0, call.id, "get_weather", "")
    assert outcome.events[-3:] == [ToolCalls([call]), Usage(25, 40, 65), Finish("tool_calls")]
    first = upstream.requests[0].json()
    assert first["tools"] == [{"name": "get_weather", "description": "查天气", "input_schema": CITY}]

    # The round goes back the way our tool runner builds it (chat/tools/registry.py).
    round_ = [
        {"role": "assistant", "content": "我查一下。", "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"天气": "晴"}'},
    ]  # fmt: skip
    assert (await run(claude(upstream), [*MESSAGES, *round_], tools=WEATHER)).text == "北京晴。"
    assert upstream.requests[1].json()["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "我查一下。"},
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "北京"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": '{"天气": "晴"}'}]},
    ]  # fmt: skip


async def test_it_sends_an_image_part_as_a_base64_source(upstream):
    upstream.route("POST", PATH, sse_reply(reply("好一幅山水。")))
    messages = [
        {"role": "system", "content": "你是李白。"},
        {"role": "assistant", "content": "客从何处来？"},  # our conversations open with the figure's greeting
        {"role": "user", "content": [
            {"type": "text", "text": "请看这幅画"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
    ]  # fmt: skip
    assert (await run(claude(upstream), messages)).text == "好一幅山水。"
    assert upstream.requests[0].json()["messages"] == [
        {"role": "user", "content": OPENER},  # the API wants a user turn first
        {"role": "assistant", "content": "客从何处来？"},
        {"role": "user", "content": [
            {"type": "text", "text": "请看这幅画"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
    ]  # fmt: skip


async def test_an_unfinished_reply_goes_back_as_a_prefill_without_trailing_space(upstream):
    upstream.route("POST", PATH, sse_reply(reply("续写。")))
    messages = [*MESSAGES, {"role": "assistant", "content": "写到一半，\n"}, {"role": "system", "content": "接着写。"}]
    assert (await run(claude(upstream), messages)).text == "续写。"
    body = upstream.requests[0].json()
    assert body["messages"][-1] == {"role": "assistant", "content": "写到一半，"}
    assert body["system"].endswith("接着写。")


@pytest.mark.parametrize(
    "failure",
    [
        json_reply(529, OVERLOADED),
        json_reply(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}},
                   headers={"retry-after": "1"}),
    ],
    ids=["529-overloaded", "429-rate-limit"],
)
async def test_it_retries_overload_and_rate_limits_before_content(upstream, failure):
    sleeps = Sleeps()
    upstream.route("POST", PATH, failure, sse_reply(reply("好")))
    outcome = await run(claude(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "好"
    assert len(upstream.requests) == 2 and len(sleeps.delays) == 1


async def test_it_does_not_retry_a_rejected_key(upstream):
    body = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}  # fmt: skip
    upstream.route("POST", PATH, json_reply(401, body), sse_reply(reply("不该到这里")))
    outcome = await run(claude(upstream), sleep=Sleeps())
    error = outcome.error
    assert (error.kind, error.status, error.code, error.retryable) == ("auth", 401, "authentication_error", False)
    assert error.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy" and error.message == "API 密钥无效或已失效，请检查密钥设置。"
    assert len(upstream.requests) == 1 and outcome.events == []


async def test_an_error_event_mid_stream_keeps_the_partial_text(upstream):
    parts = [start(), *text_block(0, "半句")[:2], event(OVERLOADED)]
    upstream.route("POST", PATH, sse_reply(parts), sse_reply(reply("不该重试")))
    outcome = await run(claude(upstream), sleep=Sleeps())
    assert outcome.text == "半句"
    assert (outcome.error.kind, outcome.error.code, outcome.error.after_content) == (
        "unavailable", "overloaded_error", True)
    assert len(upstream.requests) == 1  # content was shown: never retried
    assert not outcome.of(Finish) and not outcome.of(Usage)


async def test_an_error_event_before_content_is_retried_once(upstream):
    upstream.route("POST", PATH, sse_reply([start(), event(OVERLOADED)]), sse_reply(reply("好")))
    outcome = await run(claude(upstream), sleep=Sleeps())
    assert outcome.error is None and outcome.text == "好" and len(upstream.requests) == 2


@pytest.mark.parametrize("cut", [1, 2], ids=["no-message-stop", "no-message-delta"])
async def test_a_stream_without_its_end_is_interrupted(upstream, cut):
    parts = reply("写到", "一半")[:-cut]
    upstream.route("POST", PATH, sse_reply(parts))
    outcome = await run(claude(upstream), sleep=Sleeps())
    assert outcome.text == "写到一半"
    assert outcome.error.kind == "interrupted" and outcome.error.after_content
    assert not outcome.of(Finish) and not outcome.of(Usage)


@pytest.mark.parametrize("reason, finish", [("max_tokens", "length"), ("stop_sequence", "stop")])
async def test_it_maps_stop_reasons(upstream, reason, finish):
    upstream.route("POST", PATH, sse_reply([start(), *text_block(0, "甲"), *stop(reason)]))
    outcome = await run(claude(upstream))
    assert outcome.events[-1] == Finish(finish) and outcome.of(TextDelta) == [TextDelta("甲")]


async def test_it_sends_no_bearer_to_the_official_host(upstream):
    cfg = claude(upstream, base_url="https://api.anthropic.com/v1")
    async with httpx.AsyncClient() as http:
        request = anthropic.build_request(http, cfg, MESSAGES, tools=None, temperature=None, max_tokens=None)
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert "authorization" not in request.headers and request.headers["x-api-key"] == KEY
