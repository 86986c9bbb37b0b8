"""Error bodies of every provider shape → one ProviderError (docs/provider-reference.md §2.3, §3.2, §4.2, §6)."""

from __future__ import annotations

import json
import re

import pytest

from chat.providers.errors import (
    KINDS,
    MESSAGES,
    ProviderError,
    error_from_event_data,
    error_from_payload,
    error_from_response,
    strip_request_id,
)

DS_AUTH_URL = "https://help.aliyun.com/zh/model-studio/error-code#apikey-error"
DS_AUTH = {"error": {"message": f"Incorrect API key provided. For details, see: {DS_AUTH_URL}",
                     "type": "invalid_request_error", "param": None, "code": "invalid_api_key"},
           "request_id": "b02e047c-0000-4f6e-9e4f-000000000001"}  # fmt: skip
DS_NATIVE_AUTH = {"code": "InvalidApiKey", "message": "No API-key provided.", "request_id": "7438d53d-0001"}
DS_INPUT_MODERATION = {"error": {"code": "data_inspection_failed", "param": None,
                                 "message": "Input text data may contain inappropriate content.",
                                 "type": "data_inspection_failed"}}  # fmt: skip
NEW_API_503 = {"error": {"message": "No available channel for model gemini-3.5-flash under group default "
                                    "(distributor) (request id: 20250101123456789abcdef)",
                         "type": "new_api_error", "code": "model_not_found"}}  # fmt: skip
HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def _compat(code: str, message: str = "m", type_: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_ or code, "param": None, "code": code}, "request_id": "r-1"}


def _openrouter(code: int | str, message: str, **metadata: object) -> dict:
    return {"error": {"code": code, "message": message, **({"metadata": metadata} if metadata else {})}}


# (status, body, kind, retryable, code)
RESPONSES = [
    (401, DS_AUTH, "auth", False, "invalid_api_key"),
    (401, DS_NATIVE_AUTH, "auth", False, "InvalidApiKey"),
    (401, {"error": {"message": "未提供令牌 (request id: 2025abc)", "type": "new_api_error"}}, "auth", False,
     "new_api_error"),
    (403, _compat("Model.AccessDenied"), "auth", False, "Model.AccessDenied"),
    (400, DS_INPUT_MODERATION, "moderation", False, "data_inspection_failed"),
    (400, {"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."},
     "moderation", False, "DataInspectionFailed"),
    (400, _compat("IPInfringementSuspect"), "moderation", False, "IPInfringementSuspect"),
    (403, _openrouter(403, "Input was flagged", reasons=["violence"], flagged_input="…砍…",
                      provider_name="Alibaba", model_slug="qwen/qwen-plus"), "moderation", False, "403"),
    (400, _compat("Arrearage", "Access denied, please make sure your account is in good standing."),
     "billing", False, "Arrearage"),
    (429, _compat("PrepaidBillOverdue"), "billing", False, "PrepaidBillOverdue"),
    (429, _compat("PostpaidBillOverdue"), "billing", False, "PostpaidBillOverdue"),
    (429, _compat("CommodityNotPurchased"), "billing", False, "CommodityNotPurchased"),
    (402, _openrouter(402, "Insufficient credits", limit_source="openrouter_credits"), "billing", False, "402"),
    (403, {"error": {"message": "用户额度不足, 剩余额度: ＄0.000000 (request id: 2025x)", "type": "new_api_error",
                     "code": "insufficient_user_quota"}}, "billing", False, "insufficient_user_quota"),
    (403, _compat("AllocationQuota.FreeTierOnly"), "billing", False, "AllocationQuota.FreeTierOnly"),
    (429, _compat("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
     "rate_limit", True, "Throttling.RateQuota"),
    (429, _compat("limit_requests"), "rate_limit", True, "limit_requests"),
    # OpenAI's "You exceeded your current quota" (relays pass it on as is): a balance or plan to fix, not a pace.
    (429, {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                     "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
     "billing", False, "insufficient_quota"),
    (429, _compat("insufficient_quota", "Free allocated quota exceeded."), "billing", False, "insufficient_quota"),
    (429, _compat("limit_burst_rate", "Request rate increased too quickly"), "rate_limit", True, "limit_burst_rate"),
    (429, _openrouter(429, "Rate limit exceeded", provider_code="Throttling"), "rate_limit", True, "429"),
    (408, {"code": "RequestTimeOut", "message": "Request timed out, please try again later."}, "timeout", True,
     "RequestTimeOut"),
    (409, {"error": {"message": "conflict"}}, "upstream", True, None),
    (500, _compat("InternalError", "An internal error has occured, please try again later."), "upstream", True,
     "InternalError"),
    (502, _openrouter(502, "Provider returned error", provider_name="Alibaba", raw="..."), "upstream", True, "502"),
    (503, _compat("ModelUnavailable", "Model is unavailable, please try again later."), "unavailable", True,
     "ModelUnavailable"),
    (503, NEW_API_503, "unavailable", True, "model_not_found"),
    (404, _compat("model_not_found", "Model can not be found."), "unavailable", False, "model_not_found"),
    (404, {"code": "InvalidParameter", "message": "Model can not be found."}, "bad_request", False, "InvalidParameter"),
    (400, _compat("invalid_parameter_error", "'messages' must contain the word 'json'"), "bad_request", False,
     "invalid_parameter_error"),
    (400, {"object": "error", "message": "max_tokens too large", "type": "BadRequestError", "code": 400},
     "bad_request", False, "400"),
]  # fmt: skip


@pytest.mark.parametrize("status, body, kind, retryable, code", RESPONSES,
                         ids=[f"{r[0]}-{r[4]}" for r in RESPONSES])  # fmt: skip
def test_it_classifies_error_bodies(status, body, kind, retryable, code):
    error = error_from_response(status, {}, json.dumps(body, ensure_ascii=False).encode())
    assert (error.kind, error.retryable, error.code, error.status) == (kind, retryable, code, status)
    assert _chinese(error.message)


def test_it_reads_an_sse_framed_error_body():
    body = b"data: " + json.dumps(DS_INPUT_MODERATION).encode() + b"\n\n"
    error = error_from_response(400, {"content-type": "text/event-stream"}, body)
    assert error.kind == "moderation" and error.code == "data_inspection_failed" and not error.retryable
    assert error.detail == "Input text data may contain inappropriate content."


@pytest.mark.parametrize(
    "status, kind", [(502, "upstream"), (504, "upstream"), (503, "unavailable"), (400, "bad_request")]
)
def test_it_classifies_html_bodies_by_status(status, kind):
    error = error_from_response(status, {"content-type": "text/html"}, HTML_502)
    assert error.kind == kind and error.retryable is (status >= 500)
    assert error.detail == f"HTTP {status}, non-JSON body"


def test_it_strips_relay_request_ids_into_request_id():
    error = error_from_response(503, {}, json.dumps(NEW_API_503).encode())
    assert error.request_id == "20250101123456789abcdef"
    assert "request id" not in error.detail and error.detail.endswith("(distributor)")


@pytest.mark.parametrize(
    "text, stripped, request_id",
    [
        ("未提供令牌 (request id: 2025abc)", "未提供令牌", "2025abc"),
        ("quota low（request id: X-1）", "quota low", "X-1"),
        ("a (Request ID: r1) (request id: r2)", "a", "r1"),
        ("no suffix here", "no suffix here", None),
    ],
)
def test_it_strips_request_id_suffixes(text, stripped, request_id):
    assert strip_request_id(text) == (stripped, request_id)


def test_it_takes_request_ids_from_body_then_headers():
    assert error_from_response(429, {}, json.dumps(_compat("limit_requests")).encode()).request_id == "r-1"
    headers = {"x-request-id": "hdr-9"}
    assert error_from_response(502, headers, HTML_502).request_id == "hdr-9"
    assert error_from_response(500, {}, b"").request_id is None


@pytest.mark.parametrize(
    "headers, expected", [({"retry-after": "2"}, 2.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None)]
)
def test_it_records_retry_after(headers, expected):
    assert error_from_response(429, headers, b"{}").retry_after == expected


def test_it_never_repeats_the_api_key():
    key = "sk-live9876543210fedcba"
    body = _compat("invalid_api_key", f"Incorrect API key provided: {key}. Header was Bearer {key}")
    error = error_from_response(401, {}, json.dumps(body).encode())
    for text in (error.message, error.detail, str(error), repr(error.args)):
        assert key not in text and "9876543210" not in text
    assert "sk-live***" in error.detail


@pytest.mark.parametrize(
    "payload, kind, code",
    [
        ({"id": "cmpl-abc123", "object": "chat.completion.chunk", "provider": "openai",
          "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
          "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}, "upstream", "server_error"),
        ({"error": {"code": 502, "message": "Provider returned error"}}, "upstream", "502"),
        ({"error": {"code": 429, "message": "Rate limit exceeded"}}, "rate_limit", "429"),
        ({"error": {"message": "Output data may contain inappropriate content.", "type": "data_inspection_failed",
                    "param": None, "code": "data_inspection_failed"}}, "moderation", "data_inspection_failed"),
        ({"object": "error", "message": "The model crashed", "type": "InternalServerError", "code": 500},
         "upstream", "500"),
        ({"error": "plain string error"}, "upstream", None),
    ],
)  # fmt: skip
def test_it_classifies_in_stream_errors(payload, kind, code):
    error = error_from_payload(payload)
    assert (error.kind, error.code, error.status) == (kind, code, None)


def test_it_accepts_non_json_error_event_data():
    error = error_from_event_data("upstream exploded")
    assert error.kind == "upstream" and error.detail == "upstream exploded"


def test_it_has_a_chinese_message_for_every_kind():
    assert set(MESSAGES) == set(KINDS)
    for kind in KINDS:
        error = ProviderError(kind)
        assert _chinese(error.message) and error.message.endswith("。")
        assert error.retryable is (kind in {"rate_limit", "timeout", "upstream", "unavailable", "interrupted"})
    with pytest.raises(ValueError):
        ProviderError("quota")


def _chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text)) and not re.search(r"[a-z]{4,}", text.replace("API", ""))


def _anthropic(type_: str, message: str = "m") -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


def _google(code: int, status: str, message: str = "m") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


@pytest.mark.parametrize(
    "status, body, kind, retryable",
    [
        (400, _anthropic("invalid_request_error", "max_tokens: Field required"), "bad_request", False),
        (401, _anthropic("authentication_error"), "auth", False),
        (402, _anthropic("billing_error"), "billing", False),
        (403, _anthropic("permission_error"), "auth", False),
        (404, _anthropic("not_found_error"), "bad_request", False),
        (429, _anthropic("rate_limit_error"), "rate_limit", True),
        (500, _anthropic("api_error"), "upstream", True),
        (529, _anthropic("overloaded_error", "Overloaded"), "unavailable", True),
        (400, _google(400, "INVALID_ARGUMENT"), "bad_request", False),
        (400, _google(400, "FAILED_PRECONDITION", "User location is not supported"), "bad_request", False),
        (403, _google(403, "PERMISSION_DENIED"), "auth", False),
        (404, _google(404, "NOT_FOUND", "models/gemini-9 is not found"), "bad_request", False),
        (429, _google(429, "RESOURCE_EXHAUSTED"), "rate_limit", True),
        (500, _google(500, "INTERNAL"), "upstream", True),
        (503, _google(503, "UNAVAILABLE", "The model is overloaded."), "unavailable", True),
        (504, _google(504, "DEADLINE_EXCEEDED"), "timeout", True),
    ],
)
def test_it_classifies_anthropic_and_gemini_error_bodies(status, body, kind, retryable):
    error = error_from_response(status, {"request-id": "req_01"}, body)
    assert (error.kind, error.retryable, error.status, error.request_id) == (kind, retryable, status, "req_01")


@pytest.mark.parametrize(
    "payload, kind",
    [
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "unavailable"),
        ({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}, "upstream"),
        ({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}, "rate_limit"),
    ],
)
def test_it_classifies_their_errors_inside_a_stream(payload, kind):
    error = error_from_payload(payload)
    assert error.kind == kind and error.retryable
