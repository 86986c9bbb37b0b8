"""One exception type for every provider failure, and the mapping from provider bodies to it.

Bodies come in several shapes (docs/provider-reference.md §2.3, §3.2, §4.2, §5.6): DashScope compatible
`{"error": {...}, "request_id": ...}`, DashScope native `{"code", "message", "request_id"}`,
OpenRouter `{"error": {"code": <int|str>, "metadata": ...}}`, new-api envelopes with a
"(request id: …)" suffix, vLLM `{"object": "error"}`, HTML from gateways, and SSE-framed
JSON when the request had `stream: true`; Anthropic `{"type": "error", "error": {"type": "overloaded_error", …}}`
and Gemini `{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"reason": …}]}}`
(also as a one-item JSON array). Classify by code/type first, by status and
message substrings second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.providers.retry import parse_retry_after
from chat.providers.sse import SSEDecoder

KINDS = (
    "auth", "billing", "rate_limit", "moderation", "timeout",
    "upstream", "bad_request", "unavailable", "interrupted",
)  # fmt: skip

MESSAGES = {
    "auth": "API 密钥无效或已失效，请检查密钥设置。",
    "billing": "模型服务账户余额不足或已欠费，请联系管理员处理。",
    "rate_limit": "请求过于频繁，请稍后再试。",
    "moderation": "内容未通过安全审核，请换个说法再试。",
    "timeout": "模型服务响应超时，请稍后再试。",
    "upstream": "模型服务暂时出错，请稍后再试。",
    "bad_request": "请求未被模型服务接受，请检查模型设置。",
    "unavailable": "所选模型暂时不可用，请稍后再试或更换模型。",
    "interrupted": "回复意外中断，内容可能不完整，请重新生成。",
}
_FORBIDDEN = "当前密钥无权使用该模型，请检查账号权限。"
_NOT_FOUND = "接口地址或模型名称有误，请检查设置。"
_UNREACHABLE = "无法连接到模型服务，请稍后再试。"

_TRANSIENT = frozenset({"rate_limit", "timeout", "upstream", "unavailable", "interrupted"})

# Tokens are compared lower-cased against both `code` and `type`.
_MODERATION = frozenset({"data_inspection_failed", "datainspectionfailed", "ipinfringementsuspect",
                         "content_filter", "content_policy_violation"})
# "insufficient_quota" is OpenAI's "You exceeded your current quota" (sent with 429, and passed on by
# relays): a balance or plan to fix, so never retried. DashScope reuses the code for an exhausted
# (free) allocation, which waiting does not fix either.
_BILLING = frozenset({"arrearage", "prepaidbilloverdue", "postpaidbilloverdue", "commoditynotpurchased",
                      "insufficient_user_quota", "insufficient_quota", "allocationquota.freetieronly",
                      "insufficient_credits", "billing_error"})
# The key itself is refused (as opposed to a key without rights to a model).
INVALID_KEY_CODES = frozenset({"invalid_api_key", "invalidapikey", "authentication_error", "api_key_invalid",
                               "unauthenticated"})
_AUTH = frozenset({*INVALID_KEY_CODES, "access_denied", "accessdenied",
                   "model.accessdenied", "workspace.accessdenied", "accessdenied.unpurchased",
                   "permission_error", "permission_denied"})
_RATE = frozenset({"throttling", "throttling.ratequota", "throttling.allocationquota", "limit_requests",
                   "limit_burst_rate", "rate_limit_exceeded",
                   "rate_limit_error", "resource_exhausted"})
# Anthropic's overloaded_error (HTTP 529) and Google's UNAVAILABLE: the model is busy, try again.
_UNAVAILABLE = frozenset({"modelunavailable", "model_not_found", "modelnotfound", "overloaded_error", "unavailable"})
_TIMEOUT = frozenset({"requesttimeout", "deadline_exceeded"})
_MODERATION_TEXT = ("inappropriate content", "data_inspection_failed", "datainspectionfailed")
_BILLING_TEXT = ("insufficient_user_quota", "额度不足", "欠费", "arrearage")

_REQUEST_ID = re.compile(r"\s*[(（]\s*request id:\s*([^)）]*)[)）]", re.IGNORECASE)
_SECRETS = re.compile(r"(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+|(Bearer\s+)\S+")
_REQUEST_ID_HEADERS = ("x-request-id", "x-dashscope-request-id", "x-oneapi-request-id", "x-generation-id",
                        "request-id")


class ProviderError(Exception):
    """`message` is safe to show a user; `detail` is the provider's own text, for logs."""

    def __init__(
        self,
        kind: str,
        *,
        message: str | None = None,
        detail: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        if kind not in MESSAGES:
            raise ValueError(f"unknown provider error kind {kind!r}")
        self.kind = kind
        self.message = message or MESSAGES[kind]
        self.detail = redact(detail)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.retryable = kind in _TRANSIENT if retryable is None else retryable
        self.after_content = False  # set by stream_chat: the caller already holds partial output
        super().__init__(self.message)

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in
                          (("status", self.status), ("code", self.code), ("request_id", self.request_id)) if v)
        return f"[{self.kind}] {self.detail or self.message}" + (f" ({where})" if where else "")


def redact(text: str, secret: str = "") -> str:
    if secret:
        text = text.replace(secret, "***")
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def strip_request_id(text: str) -> tuple[str, str | None]:
    """Relays append " (request id: …)"; users should not see it, but logs want the id."""
    match = _REQUEST_ID.search(text)
    return _REQUEST_ID.sub("", text).strip(), (match.group(1).strip() or None) if match else None


def unreachable(detail: str) -> ProviderError:
    return ProviderError("unavailable", message=_UNREACHABLE, detail=detail, retryable=True)


@dataclass
class _Fields:
    code: str | None = None
    type: str | None = None
    message: str = ""
    request_id: str | None = None
    code_status: int | None = None  # OpenRouter and Gemini put the HTTP status in error.code
    status: str | None = None  # Gemini's canonical status ("RESOURCE_EXHAUSTED")
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> set[str]:
        return {t.lower() for t in (self.code, self.type, self.status) if t}


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    payload = parse_body(body)
    # Gateways answer 502/504 with HTML: classify by status, never crash on the body.
    fields = _fields(payload) if payload is not None else _Fields(message=f"HTTP {status}, non-JSON body")
    if fields.request_id is None:
        fields.request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if headers.get(h)), None)
    return _build(fields, status, parse_retry_after(headers))


def error_from_payload(payload: Mapping[str, Any]) -> ProviderError:
    """An error that arrived inside a 200 stream (data JSON or `event: error`)."""
    return _build(_fields(payload), None, None)


def error_from_event_data(data: str) -> ProviderError:
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    return error_from_payload(payload if isinstance(payload, dict) else {"message": data})


def parse_body(body: bytes) -> dict[str, Any] | None:
    """JSON error body, also when it is SSE-framed (`data: {...}`) as DashScope does with stream=true."""
    text = body.decode("utf-8", "replace").strip().removeprefix("\ufeff")
    candidates = [text]
    if not text.startswith("{"):
        decoder = SSEDecoder()
        candidates += [e.data for e in decoder.feed(body) + decoder.close()]
    for candidate in candidates:
        try:
            payload = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(payload, list) and payload and isinstance(payload[0], dict):
            payload = payload[0]  # Gemini's streamGenerateContent without alt=sse answers an array
        if isinstance(payload, dict):
            return payload
    return None


def _fields(payload: Mapping[str, Any]) -> _Fields:
    error = payload.get("error")
    source: Mapping[str, Any] = error if isinstance(error, dict) else payload
    raw_code = code = source.get("code")
    message = source.get("message") or (error if isinstance(error, str) else None) or payload.get("detail") or ""
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    message, suffix_id = strip_request_id(message)
    request_id = payload.get("request_id") or source.get("request_id") or suffix_id
    metadata = source.get("metadata")
    status = source.get("status") if isinstance(source.get("status"), str) else None
    if status is not None and isinstance(raw_code, int):
        # Gemini: the integer code is the HTTP status; the reason (API_KEY_INVALID) says more.
        code = _detail_reason(source.get("details")) or status
    return _Fields(
        code=None if code is None else str(code),
        type=source.get("type") if isinstance(source.get("type"), str) else None,
        message=message,
        request_id=str(request_id) if request_id else None,
        code_status=raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None,
        status=status,
        metadata=metadata if isinstance(metadata, dict) else {},
    )


def _detail_reason(details: Any) -> str | None:
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            return detail["reason"]
    return None


def _build(fields: _Fields, status: int | None, retry_after: float | None) -> ProviderError:
    kind, message, retryable = _classify(fields, status)
    return ProviderError(
        kind, message=message, detail=fields.message, status=status, code=fields.code or fields.type,
        request_id=fields.request_id, retry_after=retry_after, retryable=retryable,
    )  # fmt: skip


def _classify(f: _Fields, http_status: int | None) -> tuple[str, str | None, bool]:
    status = http_status if http_status and http_status >= 400 else f.code_status
    tokens, text = f.tokens, f.message.lower()
    if tokens & _MODERATION or any(t in text for t in _MODERATION_TEXT) or (
        status == 403 and ("reasons" in f.metadata or "flagged_input" in f.metadata)
    ):
        return "moderation", None, False
    if tokens & _BILLING or status == 402 or any(t in text for t in _BILLING_TEXT):
        return "billing", None, False
    if status == 401 or tokens & INVALID_KEY_CODES:
        return "auth", None, False
    if status == 403 or tokens & _AUTH:
        return "auth", _FORBIDDEN, False
    if status == 429 or tokens & _RATE:
        return "rate_limit", None, True
    if status == 408 or tokens & _TIMEOUT:
        return "timeout", None, True
    if status == 503 or tokens & _UNAVAILABLE:
        # A model missing from a 404 is configuration; from a relay's 503 it is "no channel right now".
        return "unavailable", None, status is None or status >= 500
    if status is None or status >= 500 or status == 409:
        return "upstream", None, True
    if status == 404:
        return "bad_request", _NOT_FOUND, False
    return "bad_request", None, False
