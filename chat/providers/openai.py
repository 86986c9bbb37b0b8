"""OpenAI chat/completions: the request, and `ChunkParser` (chunks.py) for its stream."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any

import httpx

from chat.providers.chunks import ChunkParser
from chat.providers.config import ProviderConfig, bearer, post_json, stream_headers

Parser = ChunkParser


def build_request(
    http: httpx.AsyncClient,
    config: ProviderConfig,
    messages: Sequence[dict[str, Any]],
    *,
    tools: Sequence[dict[str, Any]] | None,
    temperature: float | None,
    max_tokens: int | None,
) -> httpx.Request:
    # extra_body first, so operator options (enable_thinking, top_k…) cannot switch streaming off.
    body: dict[str, Any] = {
        **config.extra_body,
        "model": config.model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if tools:
        # DashScope defaults parallel_tool_calls to false, and wants n=1 with tools.
        body.update(tools=list(tools), parallel_tool_calls=True, n=1)
    if config.kind == "openrouter":
        body["usage"] = {"include": True}
    return post_json(http, config, config.base_url.rstrip("/") + "/chat/completions", _headers(config), body)


def _headers(config: ProviderConfig) -> dict[str, str]:
    headers = {"Authorization": bearer(config), **stream_headers(config)}
    if config.kind == "openrouter":
        if config.site_url:
            headers["HTTP-Referer"] = config.site_url
        if config.site_title:
            # Header values must be ASCII; a Chinese title goes percent-encoded (safe=" " keeps ASCII readable).
            title = urllib.parse.quote(config.site_title, safe=" !#$&'()*+,/:;=?@[]~")
            headers["X-OpenRouter-Title"] = headers["X-Title"] = title
    return headers
