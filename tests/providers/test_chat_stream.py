"""Happy-path streams over real sockets (docs/provider-reference.md §7 fixtures 1–5 and 10–13)."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse

import httpx
import pytest

from chat.providers import chat
from chat.providers.chat import (
    Finish,
    ProviderConfig,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCalls,
    Usage,
    get_client,
    stream_chat,
)
from guyue.lib.netguard import AddressGuard
from tests.fakes.upstream import sse_event, sse_reply
from tests.providers import (
    DONE,
    KEY,
    LOCAL,
    MESSAGES,
    PATH,
    chunk,
    close_clients,
    config,
    reply_parts,
    run,
    shared_client,  # noqa: F401  (fixture)
    usage_chunk,
)

pytestmark = pytest.mark.usefixtures("shared_client")

TEXT = "你好，世界😀！「古月」——今话。"
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "查天气", "parameters": CITY}}]


async def test_it_streams_a_dashscope_reply(upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("我是", "通义千问，", "很高兴认识你。")))
    outcome = await run(config(upstream), temperature=0.7, max_tokens=512)
    assert outcome.error is None
    assert outcome.text == "我是通义千问，很高兴认识你。"
    assert outcome.events[-2:] == [Usage(22, 17, 39, None), Finish("stop")]
    [request] = upstream.requests
    assert request.path == PATH and request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "text/event-stream"
    assert request.json() == {
        "model": "qwen-plus", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.7, "max_tokens": 512,
    }  # fmt: skip


async def test_it_sends_openrouter_usage_and_attribution(upstream):
    upstream.route("POST", "/api/v1/chat/completions", sse_reply(reply_parts("好")))
    cfg = config(upstream, kind="openrouter", base_url=upstream.url + "/api/v1/", site_url="https://guyue.example",
                 extra_body={"reasoning": {"exclude": True}, "stream": False})  # fmt: skip
    assert (await run(cfg)).text == "好"
    [request] = upstream.requests
    body = request.json()
    assert body["usage"] == {"include": True} and body["reasoning"] == {"exclude": True}
    assert body["stream"] is True  # extra_body cannot switch streaming off
    assert "tools" not in body and "parallel_tool_calls" not in body and "n" not in body
    assert request.headers["http-referer"] == "https://guyue.example"
    for name in ("x-openrouter-title", "x-title"):
        assert urllib.parse.unquote(request.headers[name]) == "古月今话"


async def test_it_sends_no_openrouter_extras_elsewhere(upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("好")))
    await run(config(upstream, kind="openai_compatible", site_url="https://guyue.example"))
    [request] = upstream.requests
    assert "usage" not in request.json() and "x-title" not in request.headers and "http-referer" not in request.headers


async def test_it_ignores_openrouter_comments_and_keeps_the_cost(upstream):
    comment = ": OPENROUTER PROCESSING\n\n"
    usage = {"choices": [], "object": "chat.completion.chunk", "usage": {
        "prompt_tokens": 194, "completion_tokens": 2, "total_tokens": 196,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0},
        "cost": 0.95, "cost_details": {"upstream_inference_cost": 19}}}  # fmt: skip
    parts = [comment, comment, chunk("你", role="assistant"), comment, chunk("好"), comment,
             chunk("", finish="stop"), usage, comment, DONE]  # fmt: skip
    upstream.route("POST", "/api/v1/chat/completions", sse_reply(parts, stride=5))
    outcome = await run(config(upstream, kind="openrouter", base_url=upstream.url + "/api/v1"))
    assert outcome.text == "你好" and outcome.error is None
    assert outcome.of(Usage) == [Usage(194, 2, 196, 0.95)]


@pytest.mark.parametrize(
    "reasoning_delta",
    [
        lambda text: {"reasoning_content": text},  # DashScope / DeepSeek-R1
        lambda text: {"reasoning": text, "reasoning_details": [{"type": "reasoning.text", "text": text}]},  # OpenRouter
    ],
    ids=["dashscope", "openrouter"],
)
async def test_it_drops_reasoning_from_the_answer(upstream, reasoning_delta):
    parts = [
        chunk(None, role="assistant", **reasoning_delta("嗯，用户问")),
        chunk(None, **reasoning_delta("好，我该回答。")),
        chunk("答：", **reasoning_delta("（最后一点想法）")),  # one chunk carrying both fields
        chunk("春眠不觉晓。", reasoning_content=None),
        chunk("", finish="stop"), usage_chunk(), DONE,
    ]  # fmt: skip
    upstream.route("POST", PATH, sse_reply(parts))
    outcome = await run(config(upstream))
    assert outcome.text == "答：春眠不觉晓。"
    assert [type(e) for e in outcome.events] == [TextDelta, TextDelta, Usage, Finish]


def _call_chunk(*calls: dict, content: object = None) -> dict:
    delta = {"tool_calls": list(calls)} if content is None else {"content": content, "tool_calls": list(calls)}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}], "model": "qwen3-max"}


# The qwen3-max capture of docs/provider-reference.md §1.1, extended to three calls: a name-only first chunk,
# id-less and "id": "" continuations, and argument fragments that split "北京" and "杭州".
QWEN_TOOL_CALLS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        {"id": "call_c7d8a1", "type": "function",
         "function": {"name": "time____get_time____mcp", "arguments": ""}, "index": 0}]}, "finish_reason": None}]},
    _call_chunk({"type": "function", "function": {"arguments": "{\"location\": \"北"}, "index": 0}),
    _call_chunk({"type": "function", "function": {"arguments": "京\"}"}, "index": 0}),
    _call_chunk({"id": "call_f564b2", "type": "function",
                 "function": {"name": "time____get_time____mcp", "arguments": ""}, "index": 1}),
    {"choices": [{"delta": {"content": None, "tool_calls": [
        {"index": 1, "id": "", "type": "function", "function": {"arguments": "{\"location\": \"上海\"}"}}]},
        "finish_reason": None, "index": 0}]},
    _call_chunk({"id": "call_9e3a77", "type": "function", "function": {"name": "get_weather"}, "index": 2}),
    _call_chunk({"index": 2, "id": "", "function": {"arguments": "{\"city\": \"杭"}}),
    _call_chunk({"index": 2, "function": {"arguments": "州\"}"}}),
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    usage_chunk(120, 60), DONE,
]  # fmt: skip
EXPECTED_CALLS = ToolCalls([
    ToolCall("call_c7d8a1", "time____get_time____mcp", '{"location": "北京"}'),
    ToolCall("call_f564b2", "time____get_time____mcp", '{"location": "上海"}'),
    ToolCall("call_9e3a77", "get_weather", '{"city": "杭州"}'),
])  # fmt: skip


@pytest.mark.parametrize("stride", [None, 1])
async def test_it_accumulates_parallel_tool_calls_by_index(upstream, stride):
    upstream.route("POST", PATH, sse_reply(QWEN_TOOL_CALLS, stride=stride))
    outcome = await run(config(upstream), tools=WEATHER)
    assert outcome.error is None and outcome.text == ""
    assert outcome.of(ToolCalls) == [EXPECTED_CALLS]
    assert [json.loads(c.arguments) for c in EXPECTED_CALLS.calls] == [
        {"location": "北京"}, {"location": "上海"}, {"city": "杭州"}]  # fmt: skip
    assert outcome.events[-3:] == [EXPECTED_CALLS, Usage(120, 60, 180), Finish("tool_calls")]
    deltas = outcome.of(ToolCallDelta)
    assert deltas[0] == ToolCallDelta(0, "call_c7d8a1", "time____get_time____mcp", "")
    assert deltas[1] == ToolCallDelta(0, None, None, '{"location": "北')
    assert [d.index for d in deltas] == [0, 0, 0, 1, 1, 2, 2, 2]
    body = upstream.requests[0].json()
    assert body["tools"] == WEATHER and body["parallel_tool_calls"] is True and body["n"] == 1


async def test_it_keeps_text_that_precedes_tool_calls(upstream):
    parts = [chunk("我来查一下", role="assistant"), chunk("天气。"),
             _call_chunk({"index": 0, "id": "call_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\":"}}, content=""),
             _call_chunk({"index": 0, "function": {"arguments": " \"苏州\"}"}}),
             chunk(None, finish="tool_calls"), usage_chunk(), DONE]  # fmt: skip
    upstream.route("POST", PATH, sse_reply(parts))
    outcome = await run(config(upstream), tools=WEATHER)
    assert outcome.text == "我来查一下天气。"
    assert outcome.of(ToolCalls) == [ToolCalls([ToolCall("call_1", "get_weather", '{"city": "苏州"}')])]


async def test_it_defaults_empty_tool_arguments_to_an_empty_object(upstream):
    parts = [_call_chunk({"index": 0, "id": "call_n", "function": {"name": "now"}}),
             chunk(None, finish="tool_calls"), DONE]  # fmt: skip
    upstream.route("POST", PATH, sse_reply(parts))
    outcome = await run(config(upstream), tools=WEATHER)
    assert outcome.of(ToolCalls) == [ToolCalls([ToolCall("call_n", "now", "{}")])]
    assert outcome.events[-1] == Finish("tool_calls") and not outcome.of(Usage)


def _wire(eol: str, *, bom: bool = False) -> str:
    first, second = json.dumps(chunk("甲", role="assistant"), ensure_ascii=False), sse_event(chunk("乙"))
    # With a BOM the very first line is a data line, so a BOM left in place would hide "甲".
    head = "\ufeff" if bom else f": keep-alive{eol}{eol}id: 1{eol}event: message{eol}"
    return (
        head
        + f"data: {first}{eol}{eol}"
        + second.replace("\n", eol)
        + sse_event(chunk("", finish="stop")).replace("\n", eol)
        + f"data: [DONE]{eol}{eol}"
    )


@pytest.mark.parametrize(
    "wire",
    [
        _wire("\n"),
        _wire("\r\n"),
        _wire("\r"),
        _wire("\r\n", bom=True),
        # One JSON value spread over two data: lines (joined with "\n", which JSON allows between tokens).
        'data: {"choices": [{"index": 0, "delta":\ndata: {"content": "甲乙"}, "finish_reason": null}]}\n\n'
        + sse_event(chunk("", finish="stop")) + DONE,
    ],
    ids=["lf", "crlf", "cr", "bom-crlf", "multi-line-data"],
)
@pytest.mark.parametrize("stride", [1, 7, None])
async def test_it_parses_every_framing(upstream, wire, stride):
    upstream.route("POST", PATH, sse_reply([wire], stride=stride))
    outcome = await run(config(upstream))
    assert outcome.error is None and outcome.text == "甲乙" and outcome.events[-1] == Finish("stop")


async def test_it_parses_a_final_event_without_a_trailing_newline(upstream):
    upstream.route("POST", PATH, sse_reply([*reply_parts("好")[:-1], "data: [DONE]"]))
    outcome = await run(config(upstream))
    assert outcome.error is None and outcome.events[-1] == Finish("stop")


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("stride", [1, 2, 7])
async def test_it_gives_identical_text_at_every_stride(upstream, stride, chunked):
    pieces = [TEXT[i : i + 3] for i in range(0, len(TEXT), 3)]
    upstream.route("POST", PATH, sse_reply(reply_parts(*pieces), stride=stride, chunked=chunked))
    outcome = await run(config(upstream))
    assert outcome.error is None and outcome.text == TEXT


async def test_it_keeps_unicode_separators_inside_json_strings(upstream):
    text = "第一行\u2028第二行\u2029第三段\u0085完"
    parts = reply_parts(text)
    assert "\u2028" in sse_event(parts[1])  # raw on the wire (ensure_ascii=False), as DashScope sends it
    upstream.route("POST", PATH, sse_reply(parts, stride=4))
    outcome = await run(config(upstream))
    assert outcome.error is None and outcome.text == text


async def test_it_streams_a_5mb_line(upstream):
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(3_900_000)).decode()
    huge = chunk("", images=[{"type": "image_url", "image_url": {"url": image}}])
    assert len(sse_event(huge)) > 5_000_000
    upstream.route("POST", PATH, sse_reply([chunk("画好了：", role="assistant"), huge, chunk("", finish="stop"), DONE]))
    outcome = await run(config(upstream))
    assert outcome.error is None and outcome.text == "画好了：" and outcome.events[-1] == Finish("stop")


async def test_it_reuses_the_connection_between_calls(upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("一")), sse_reply(reply_parts("二")))
    assert (await run(config(upstream))).text == "一"
    assert (await run(config(upstream))).text == "二"
    assert upstream.connections_accepted == 1  # the terminator after [DONE] was read, so the pool kept it


async def test_it_uses_a_given_client(upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("好")))
    transport_calls = []

    async def hook(request: httpx.Request) -> None:
        transport_calls.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        assert (await run(config(upstream), client=client)).text == "好"
    assert transport_calls == [PATH]


async def test_it_keeps_one_client_per_event_loop():
    mine = get_client()
    assert get_client() is mine

    async def elsewhere() -> httpx.AsyncClient:
        return get_client()

    other = await asyncio.to_thread(asyncio.run, elsewhere())  # a second loop, now closed
    assert other is not mine and not other.is_closed
    assert get_client() is mine
    assert all(not loop.is_closed() for loop in chat._clients)  # the dead loop's entry was dropped
    await other.aclose()


async def test_guarded_and_trusted_calls_never_share_a_pool():
    guarded, trusted = get_client(LOCAL), get_client(None)
    assert guarded is not trusted and get_client(AddressGuard.allowing(["127.0.0.1"])) is guarded
    await close_clients()
    assert guarded.is_closed and trusted.is_closed


async def test_it_builds_no_client_until_asked(upstream):
    await close_clients()
    assert asyncio.get_running_loop() not in chat._clients
    upstream.route("POST", PATH, sse_reply(reply_parts("好")))
    async for _ in stream_chat(config(upstream), MESSAGES):
        break
    assert asyncio.get_running_loop() in chat._clients


def test_it_keeps_the_key_out_of_the_config_repr():
    cfg = ProviderConfig("dashscope", "http://x", KEY, "qwen-plus")
    assert KEY not in repr(cfg) and cfg.max_retries == 2 and cfg.extra_body == {}
