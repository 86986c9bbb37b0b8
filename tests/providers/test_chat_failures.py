"""Streams that fail after a 200 (docs/provider-reference.md §7 fixtures 6–9): partial text stays, success never fakes."""

from __future__ import annotations

import pytest

from chat.providers.chat import Finish, ToolCalls, Usage
from tests.fakes.upstream import sse_reply
from tests.providers import (
    DONE,
    PATH,
    Sleeps,
    chunk,
    config,
    reply_parts,
    run,
    shared_client,  # noqa: F401  (fixture)
    usage_chunk,
)

pytestmark = pytest.mark.usefixtures("shared_client")

OPENROUTER_ERROR = {
    "id": "cmpl-abc123", "object": "chat.completion.chunk", "created": 1234567890, "model": "gpt-3.5-turbo",
    "provider": "openai", "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
}  # fmt: skip
OUTPUT_MODERATION = {"error": {"message": "Output data may contain inappropriate content.",
                               "type": "data_inspection_failed", "param": None, "code": "data_inspection_failed"}}


async def test_it_keeps_partial_text_when_openrouter_fails_mid_stream(upstream):
    sleeps = Sleeps()
    parts = [": OPENROUTER PROCESSING\n\n", chunk("床前", role="assistant"), chunk("明月光，"), OPENROUTER_ERROR]
    upstream.route("POST", PATH, sse_reply(parts, end="fin"))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.text == "床前明月光，"
    error = outcome.error
    assert (error.kind, error.code, error.after_content) == ("upstream", "server_error", True)
    assert error.detail == "Provider disconnected unexpectedly"
    assert len(upstream.requests) == 1 and sleeps.delays == []  # content was shown: never retried


async def test_it_raises_moderation_mid_stream(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, sse_reply([chunk("Partial", role="assistant"), OUTPUT_MODERATION]))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.text == "Partial"
    assert (outcome.error.kind, outcome.error.code, outcome.error.retryable) == (
        "moderation", "data_inspection_failed", False)  # fmt: skip
    assert outcome.error.message == "内容未通过安全审核，请换个说法再试。"
    assert len(upstream.requests) == 1 and sleeps.delays == []


async def test_it_retries_an_error_first_event_once(upstream):
    sleeps = Sleeps()
    first = sse_reply([OPENROUTER_ERROR], end="fin")
    upstream.route("POST", PATH, first, sse_reply(reply_parts("好了")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "好了"
    assert len(upstream.requests) == 2 and len(sleeps.delays) == 1


async def test_it_retries_an_error_first_event_only_once(upstream):
    sleeps = Sleeps()
    error = sse_reply([": OPENROUTER PROCESSING\n\n", OPENROUTER_ERROR], end="fin")
    upstream.route("POST", PATH, error, error, sse_reply(reply_parts("不会到这里")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error.kind == "upstream" and not outcome.error.after_content and outcome.events == []
    assert len(upstream.requests) == 2 and len(sleeps.delays) == 1


async def test_it_never_retries_moderation_as_the_first_event(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, sse_reply([OUTPUT_MODERATION]), sse_reply(reply_parts("x")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error.kind == "moderation" and len(upstream.requests) == 1 and sleeps.delays == []


@pytest.mark.parametrize(
    "end, chunked",
    [("fin", True), ("fin", False), ("reset", True), ("reset", False), ("complete", True), ("complete", False)],
)
async def test_it_reports_truncation_after_content_as_interrupted(upstream, end, chunked):
    sleeps = Sleeps()
    parts = [chunk("白日依山尽，", role="assistant"), chunk("黄河入海"), 0.05]
    upstream.route("POST", PATH, sse_reply(parts, end=end, chunked=chunked), sse_reply(reply_parts("x")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.text == "白日依山尽，黄河入海"
    assert outcome.error.kind == "interrupted" and outcome.error.after_content
    assert not outcome.of(Finish) and len(upstream.requests) == 1 and sleeps.delays == []


@pytest.mark.parametrize(
    "parts",
    [
        [chunk("好", role="assistant"), chunk("", finish="stop"), usage_chunk()],  # finish_reason, then EOF
        [chunk("好", role="assistant"), usage_chunk(), DONE],  # [DONE] without any finish_reason
    ],
    ids=["finish-without-done", "done-without-finish"],
)
async def test_it_is_strict_about_how_a_stream_ends(upstream, parts):
    upstream.route("POST", PATH, sse_reply(parts))
    outcome = await run(config(upstream))
    assert outcome.text == "好" and outcome.error.kind == "interrupted"
    assert not outcome.of(Finish) and not outcome.of(Usage)  # terminal events only after a proper end


async def test_it_does_not_release_tool_calls_from_a_truncated_stream(upstream):
    call = {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": "{}"}}]}}]}  # fmt: skip
    upstream.route("POST", PATH, sse_reply([call, chunk(None, finish="tool_calls")], end="fin"))
    outcome = await run(config(upstream))
    assert outcome.error.kind == "interrupted" and outcome.of(ToolCalls) == []


async def test_it_retries_truncation_before_any_content_once(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, sse_reply([chunk("", role="assistant")], end="reset"),
                   sse_reply(reply_parts("第二次")))  # fmt: skip
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "第二次" and len(upstream.requests) == 2


@pytest.mark.parametrize(
    "parts, kind",
    [
        (["event: error\ndata: {\"error\": {\"message\": \"overloaded\", \"code\": 529}}\n\n"], "upstream"),
        (["event: error\ndata: not json\n\n"], "upstream"),
        ([{"object": "error", "message": "Input too long", "type": "BadRequestError", "code": 400}], "bad_request"),
        ([chunk("", finish="error")], "upstream"),  # finish_reason "error" without an error object
        (["data: {not json\n\n"], "upstream"),
        (["data: [1, 2]\n\n"], "upstream"),
    ],
    ids=["event-error", "event-error-text", "vllm", "finish-error", "malformed", "not-an-object"],
)
async def test_it_raises_on_error_events(upstream, parts, kind):
    sleeps = Sleeps()
    text = chunk("前文", role="assistant")
    upstream.route("POST", PATH, sse_reply([text, *parts, DONE]))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.text == "前文" and outcome.error.kind == kind and not outcome.of(Finish)


async def test_it_treats_content_filter_as_moderation(upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("一半", finish="content_filter")))
    outcome = await run(config(upstream))
    assert outcome.text == "一半" and outcome.error.kind == "moderation" and outcome.error.code == "content_filter"


async def test_it_passes_length_through_as_a_finish_reason(upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("很长", finish="length")))
    outcome = await run(config(upstream))
    assert outcome.error is None and outcome.events[-1] == Finish("length")
