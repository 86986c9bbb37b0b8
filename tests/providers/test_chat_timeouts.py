"""Timeouts and early exits (docs/provider-reference.md §7 fixtures 21–24), with budgets of a second or two at most.

Each test checks which timeout fired and what it left behind, never how fast: the upstream is
scripted so that only the timeout under test can end the call (it would go on far longer, or hang)."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat.providers.chat import TextDelta, stream_chat
from chat.providers.errors import ProviderError
from tests.fakes.upstream import Reply, sse_reply
from tests.providers import (
    MESSAGES,
    PATH,
    Sleeps,
    chunk,
    config,
    idle,
    reply_parts,
    run,
    shared_client,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.usefixtures("shared_client")

COMMENT = ": OPENROUTER PROCESSING\n\n"


def _slow_headers(delay: float = 1.5) -> Reply:
    return sse_reply(reply_parts("迟到"), header_delay=delay)


def _no_headers() -> Reply:
    return Reply(status=None, end="hang")  # headers never come: only the first-byte budget ends the wait


async def test_a_stalled_upstream_is_asked_once(upstream):
    # Retrying a header timeout would make the user wait one first_byte_timeout per attempt.
    sleeps = Sleeps()
    upstream.route("POST", PATH, _no_headers(), _no_headers(), _no_headers())
    outcome = await run(config(upstream, first_byte_timeout=0.2), sleep=sleeps)
    assert outcome.error.kind == "timeout" and outcome.events == []
    assert outcome.error.message == "模型服务响应超时，请稍后再试。"
    assert len(upstream.requests) == 1 and sleeps.delays == []
    await idle(upstream)  # the abandoned attempt closed its connection
    assert upstream.requests[0].client_closed


async def test_a_retry_gets_only_what_is_left_of_the_first_byte_budget(upstream):
    # A 503 after 1 s, then a retry whose headers would come 2.5 s later: inside a fresh 3 s window,
    # but past the one the call started with.
    sleeps = Sleeps()
    upstream.route("POST", PATH, Reply(503, body=b"{}", header_delay=1.0), _slow_headers(2.5))
    outcome = await run(config(upstream, first_byte_timeout=3.0, idle_timeout=5.0), sleep=sleeps)
    assert outcome.error.kind == "timeout" and outcome.text == ""
    assert len(upstream.requests) == 2 and len(sleeps.delays) == 1


async def test_it_recovers_when_a_quick_failure_is_retried(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, Reply(503, body=b"{}"), sse_reply(reply_parts("准时")))
    outcome = await run(config(upstream, first_byte_timeout=30.0, total_timeout=30.0), sleep=sleeps)
    assert outcome.error is None and outcome.text == "准时" and len(sleeps.delays) == 1


async def test_it_fires_the_first_content_watchdog_while_comments_keep_it_alive(upstream):
    sleeps = Sleeps()
    # 20 s of keep-alives, each well inside the idle timeout: without the watchdog the text would
    # come (or the overall deadline would end the call), so only the watchdog can give this error.
    comments = [COMMENT, 0.05] * 400
    upstream.route("POST", PATH, sse_reply([*comments, *reply_parts("太迟了")]))
    cfg = config(upstream, idle_timeout=1.0, first_content_timeout=2.0, total_timeout=60.0)
    started = time.monotonic()
    outcome = await run(cfg, sleep=sleeps)
    assert outcome.error.kind == "timeout" and "first_content" in outcome.error.detail
    assert time.monotonic() - started >= 1.95 and outcome.events == []  # not before its time
    # The upstream may still be generating (and billing): a timeout after the headers is not retried.
    assert len(upstream.requests) == 1 and sleeps.delays == []


async def test_it_lets_comments_carry_a_slow_start_within_budget(upstream):
    comments = [COMMENT, 0.05] * 40  # 2 s of silence-but-for-comments: twice the idle timeout
    upstream.route("POST", PATH, sse_reply([*comments, *reply_parts("想好了")]))
    outcome = await run(config(upstream, idle_timeout=1.0, first_content_timeout=30.0, total_timeout=30.0))
    assert outcome.error is None and outcome.text == "想好了"


async def test_it_counts_a_tool_call_as_first_content(upstream):
    call = {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "now", "arguments": ""}}]}}]}  # fmt: skip
    # 2 s of comments after the call, twice the first-content budget: had the call not counted,
    # the watchdog would have fired.
    parts = [call, *[COMMENT, 0.05] * 40, chunk(None, finish="tool_calls"), "data: [DONE]\n\n"]
    upstream.route("POST", PATH, sse_reply(parts))
    outcome = await run(config(upstream, idle_timeout=1.0, first_content_timeout=1.0, total_timeout=30.0))
    assert outcome.error is None


async def test_it_reports_an_idle_stall_with_the_partial_text(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, sse_reply([chunk("一半", role="assistant")], end="hang"))
    outcome = await run(config(upstream, idle_timeout=0.3), sleep=sleeps)  # the stream hangs: only idle ends it
    assert outcome.text == "一半" and outcome.error.kind == "timeout" and outcome.error.after_content
    assert "idle" in outcome.error.detail and len(upstream.requests) == 1 and sleeps.delays == []
    await idle(upstream)


async def test_it_enforces_the_overall_deadline(upstream):
    # A minute of text, a piece every 50 ms: only the overall deadline can end it early.
    trickle = [x for i in range(1200) for x in (chunk(f"{i}，"), 0.05)]
    upstream.route("POST", PATH, sse_reply([chunk("", role="assistant"), *trickle, *reply_parts("完")]))
    started = time.monotonic()
    outcome = await run(config(upstream, total_timeout=2.0, idle_timeout=1.0))
    assert time.monotonic() - started >= 1.95 and not outcome.text.endswith("完")
    assert outcome.text.startswith("0，1，") and outcome.error.kind == "timeout"
    assert outcome.error.detail == "overall deadline reached"


async def _first_text(events) -> None:
    async for event in events:
        if isinstance(event, TextDelta):
            return


@pytest.mark.parametrize("how", ["aclose", "break", "cancel"])
async def test_it_releases_the_connection_when_the_caller_stops(upstream, how):
    upstream.route("POST", PATH, sse_reply([chunk("开头", role="assistant"), chunk("，")], end="hang"))
    cfg = config(upstream, idle_timeout=30.0, total_timeout=30.0)
    if how == "aclose":
        events = stream_chat(cfg, MESSAGES)
        await _first_text(events)
        await events.aclose()
    elif how == "break":
        async for _ in stream_chat(cfg, MESSAGES):
            break  # the generator is dropped; asyncio's finalizer must still close the response
    else:
        got_text = asyncio.Event()

        async def consume() -> None:
            async for _ in stream_chat(cfg, MESSAGES):
                got_text.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_text.wait(), 30)  # only bounds a hang
        await asyncio.sleep(0.05)  # now parked inside a socket read
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await idle(upstream)
    [request] = upstream.requests
    assert request.client_closed and upstream.open_connections == 0


async def test_it_releases_the_connection_on_an_error_mid_stream(upstream):
    upstream.route("POST", PATH, sse_reply([chunk("x", role="assistant"), {"error": {"message": "boom"}}],
                                           end="hang"))  # fmt: skip
    with pytest.raises(ProviderError):
        async for _ in stream_chat(config(upstream), MESSAGES):
            pass
    await idle(upstream)
    assert upstream.requests[0].client_closed
