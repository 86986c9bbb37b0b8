"""`ProviderConfig` and the request plumbing every chat protocol shares (timeouts, JSON body, bad URLs)."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx

from chat.providers.errors import ProviderError
from guyue.lib.netguard import AddressGuard


@dataclass(frozen=True)
class ProviderConfig:
    kind: str  # "dashscope" | "openrouter" | "openai_compatible": the preset, for its headers and quirks
    base_url: str
    api_key: str = field(repr=False)
    model: str
    connect_timeout: float = 5.0
    first_byte_timeout: float = 60.0  # request sent → response headers
    first_content_timeout: float = 120.0  # request sent → first text/tool delta; comments do not count
    idle_timeout: float = 90.0  # longest silence between two reads; comments do count
    total_timeout: float = 600.0  # whole call, retries and backoff included
    max_retries: int = 2
    site_url: str = ""
    site_title: str = "古月今话"
    extra_body: dict[str, Any] = field(default_factory=dict)
    protocol: str = "openai"  # "openai" | "anthropic" | "gemini" (accounts.models.ChatProtocol)
    # Where connections may go. A user's base URL gets a guard (public addresses only, checked at
    # connect time); None is for trusted site-wide credentials, which may point at a local server.
    guard: AddressGuard | None = AddressGuard()


def stream_headers(config: ProviderConfig) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        # A compressing proxy may hold SSE back until its buffer fills.
        "Accept-Encoding": "identity",
    }


def bearer(config: ProviderConfig) -> str:
    return f"Bearer {config.api_key.strip()}"


def host_of(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def post_json(
    http: httpx.AsyncClient, config: ProviderConfig, url: str, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Request:
    timeout = httpx.Timeout(
        connect=config.connect_timeout, read=config.idle_timeout, write=config.idle_timeout,
        pool=config.first_byte_timeout,  # waiting for a free connection counts towards the first byte
    )  # fmt: skip
    try:
        return http.build_request(
            "POST", url, headers=headers, content=json.dumps(body, ensure_ascii=False).encode(), timeout=timeout,
        )  # fmt: skip
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ProviderError("bad_request", message="接口地址无效，请检查设置。", detail=str(exc)) from None
