"""Non-2xx answers and the retry policy (docs/provider-reference.md §7 fixtures 14–20), backoff via a recording sleep."""

from __future__ import annotations

import email.utils
import json
import socket
import time

import pytest

from chat.providers import retry
from tests.fakes.upstream import Reply, json_reply, sse_reply
from tests.providers import (
    KEY,
    PATH,
    Sleeps,
    config,
    reply_parts,
    run,
    shared_client,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.usefixtures("shared_client")

RATE = {"error": {"message": "Requests rate limit exceeded, please try again later.", "type": "limit_requests",
                  "param": None, "code": "limit_requests"}, "request_id": "a1b2c3d4-rate"}  # fmt: skip
DS_AUTH_URL = "https://help.aliyun.com/zh/model-studio/error-code#apikey-error"
DS_AUTH = {"error": {"message": f"Incorrect API key provided. For details, see: {DS_AUTH_URL}",
                     "type": "invalid_request_error", "param": None, "code": "invalid_api_key"},
           "request_id": "b02e047c-0000-4f6e-9e4f-000000000001"}  # fmt: skip
INPUT_MODERATION = {"error": {"code": "data_inspection_failed", "param": None,
                              "message": "Input text data may contain inappropriate content.",
                              "type": "data_inspection_failed"}}  # fmt: skip
HTML_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            "</center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n")  # fmt: skip


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    "headers, low, high",
    [
        ({"Retry-After": "2"}, 2.0, 2.0),
        ({"retry-after-ms": "1500"}, 1.5, 1.5),
        ({"retry-after-ms": "1500", "Retry-After": "5"}, 1.5, 1.5),
        ({"Retry-After": "http-date:3"}, 1.0, 3.0),  # formatted at run time; one-second resolution
        ({"Retry-After": "120"}, 0.375, 0.5),  # over the 60 s cap: ordinary backoff instead
        ({}, 0.375, 0.5),  # no hint: 0.5 s with up to 25 % jitter
    ],
    ids=["seconds", "ms", "ms-wins", "http-date", "too-long", "none"],
)
async def test_it_waits_as_told_before_retrying_a_429(upstream, headers, low, high):
    sleeps = Sleeps()
    if headers.get("Retry-After", "").startswith("http-date:"):
        headers = {"Retry-After": _http_date(float(headers["Retry-After"].split(":")[1]))}
    upstream.route("POST", PATH, json_reply(429, RATE, headers=headers), sse_reply(reply_parts("好")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "好"
    assert len(upstream.requests) == 2
    [delay] = sleeps.delays
    assert low <= delay <= high


@pytest.mark.parametrize("jitter, expected", [(0.0, [0.5, 1.0]), (1.0, [0.375, 0.75])])
async def test_it_backs_off_exponentially_with_jitter(upstream, monkeypatch, jitter, expected):
    sleeps = Sleeps()
    monkeypatch.setattr(retry, "_random", lambda: jitter)
    upstream.route("POST", PATH, json_reply(500, {}), json_reply(500, {}), sse_reply(reply_parts("好")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.text == "好" and sleeps.delays == expected


async def test_it_gives_up_on_429_after_two_retries(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, *[json_reply(429, RATE, headers={"Retry-After": "1"}) for _ in range(4)])
    outcome = await run(config(upstream), sleep=sleeps)
    error = outcome.error
    assert (error.kind, error.status, error.code, error.request_id) == (
        "rate_limit", 429, "limit_requests", "a1b2c3d4-rate")  # fmt: skip
    assert error.retry_after == 1.0 and error.message == "请求过于频繁，请稍后再试。"
    assert len(upstream.requests) == 3 and sleeps.delays == [1.0, 1.0]


async def test_it_honours_max_retries(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, json_reply(503, {}), json_reply(503, {}))
    outcome = await run(config(upstream, max_retries=0), sleep=sleeps)
    assert outcome.error.kind == "unavailable" and len(upstream.requests) == 1 and sleeps.delays == []


async def test_it_does_not_sleep_past_the_deadline(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, json_reply(429, RATE, headers={"Retry-After": "30"}), sse_reply(reply_parts("x")))
    outcome = await run(config(upstream, total_timeout=5.0), sleep=sleeps)
    assert outcome.error.kind == "rate_limit" and len(upstream.requests) == 1 and sleeps.delays == []


async def test_it_does_not_wait_past_the_first_byte_budget(upstream):
    # The retry would have to get its headers by the call's first-byte deadline: 2 s from now is too late.
    sleeps = Sleeps()
    upstream.route("POST", PATH, json_reply(429, RATE, headers={"Retry-After": "2"}), sse_reply(reply_parts("x")))
    outcome = await run(config(upstream, first_byte_timeout=1.0), sleep=sleeps)
    assert outcome.error.kind == "rate_limit" and len(upstream.requests) == 1 and sleeps.delays == []


def _compat(status: int, code: str, message: str = "m") -> Reply:
    return json_reply(status, {"error": {"message": message, "type": code, "param": None, "code": code},
                               "request_id": f"req-{code}"})  # fmt: skip


@pytest.mark.parametrize(
    "reply, kind",
    [
        (_compat(429, "PrepaidBillOverdue"), "billing"),
        (json_reply(429, {"error": {"message": "You exceeded your current quota, please check your plan and billing "
                                               "details.", "type": "insufficient_quota", "param": None,
                                    "code": "insufficient_quota"}}, headers={"Retry-After": "1"}), "billing"),
        (_compat(400, "Arrearage", "Access denied, please make sure your account is in good standing."), "billing"),
        (json_reply(402, {"error": {"code": 402, "message": "Insufficient credits",
                                    "metadata": {"limit_source": "openrouter_key_limit"}}},
                    headers={"Retry-After": "1"}), "billing"),
        (json_reply(403, {"error": {"message": "用户额度不足 (request id: 2025abc)", "type": "new_api_error",
                                    "code": "insufficient_user_quota"}}), "billing"),
        (json_reply(400, INPUT_MODERATION), "moderation"),
        (Reply(400, {"Content-Type": "text/event-stream"}, body="data: " + json.dumps(INPUT_MODERATION) + "\n\n"),
         "moderation"),
        (json_reply(403, {"error": {"code": 403, "message": "Input flagged", "metadata": {
            "reasons": ["violence"], "flagged_input": "…", "provider_name": "Alibaba",
            "model_slug": "qwen/qwen-plus"}}}), "moderation"),
        (json_reply(401, DS_AUTH), "auth"),
        (json_reply(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "n-1"}),
         "auth"),
        (_compat(400, "invalid_parameter_error"), "bad_request"),
        (_compat(404, "model_not_found", "Model can not be found."), "unavailable"),
        (json_reply(404, {"detail": "Not Found"}), "bad_request"),
    ],
    ids=["prepaid-overdue", "openai-insufficient-quota", "arrearage", "openrouter-402", "new-api-quota",
         "moderation-json", "moderation-sse", "openrouter-403", "auth-compat", "auth-native", "400", "404-model",
         "404-path"],
)  # fmt: skip
async def test_it_never_retries_permanent_errors(upstream, reply, kind):
    sleeps = Sleeps()
    upstream.route("POST", PATH, reply, sse_reply(reply_parts("不该出现")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error.kind == kind and not outcome.error.retryable and outcome.events == []
    assert len(upstream.requests) == 1 and sleeps.delays == []
    assert KEY not in outcome.error.message and KEY not in str(outcome.error)


async def test_it_recovers_from_a_500(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, _compat(500, "InternalError"), sse_reply(reply_parts("恢复了")))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "恢复了" and len(sleeps.delays) == 1


async def test_it_fails_after_three_503s(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, *[_compat(503, "ModelUnavailable") for _ in range(3)])
    outcome = await run(config(upstream), sleep=sleeps)
    assert (outcome.error.kind, outcome.error.status, outcome.error.code) == ("unavailable", 503, "ModelUnavailable")
    assert len(upstream.requests) == 3 and len(sleeps.delays) == 2


async def test_it_retries_an_html_502_from_a_gateway(upstream):
    sleeps = Sleeps()
    html = Reply(502, {"Content-Type": "text/html"}, body=HTML_502)
    upstream.route("POST", PATH, html, html, html)
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error.kind == "upstream" and outcome.error.retryable and outcome.error.status == 502
    assert len(upstream.requests) == 3


async def test_it_strips_the_relay_request_id(upstream):
    sleeps = Sleeps()
    body = {"error": {"message": "No available channel for model gemini-3.5-flash under group default "
                                 "(distributor) (request id: 20250912-abc)", "type": "new_api_error",
                      "code": "model_not_found"}}  # fmt: skip
    upstream.route("POST", PATH, *[json_reply(503, body) for _ in range(3)])
    outcome = await run(config(upstream), sleep=sleeps)
    error = outcome.error
    assert (error.kind, error.code, error.request_id) == ("unavailable", "model_not_found", "20250912-abc")
    assert "request id" not in error.detail and "request id" not in error.message
    assert len(upstream.requests) == 3


async def test_it_reads_a_json_error_sent_with_status_200(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, json_reply(200, {"error": {"message": "bad key", "code": "invalid_api_key"}}))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error.kind == "auth" and len(upstream.requests) == 1


async def test_it_rejects_a_non_streaming_answer(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, json_reply(200, {"choices": [{"message": {"content": "hi"}}]}))
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error.kind == "upstream" and not outcome.error.retryable and len(upstream.requests) == 1


async def test_it_retries_when_nothing_listens():
    sleeps = Sleeps()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: connections are refused
    cfg = config(type("U", (), {"url": f"http://127.0.0.1:{port}"})())
    outcome = await run(cfg, sleep=sleeps)
    assert outcome.error.kind == "unavailable" and outcome.error.retryable
    assert outcome.error.message == "无法连接到模型服务，请稍后再试。" and len(sleeps.delays) == 2


async def test_it_retries_a_connection_dropped_before_the_status_line(upstream):
    sleeps = Sleeps()
    upstream.route("POST", PATH, Reply(status=None, end="reset"), Reply(status=None, end="fin"),
                   sse_reply(reply_parts("第三次")))  # fmt: skip
    outcome = await run(config(upstream), sleep=sleeps)
    assert outcome.error is None and outcome.text == "第三次" and len(sleeps.delays) == 2
