"""Anthropic Messages: `POST {base_url}/messages` with `stream: true`, and its event stream.

Request and stream shapes as the relay reference documents them (Anthropic 对话格式（Messages）):
a top-level `system`, `messages` of content blocks (`text`, `image` with a base64 source,
`tool_use`, `tool_result`), `max_tokens` required, `tools` with `input_schema`. The stream is
`message_start`, `content_block_start/delta/stop` (`text_delta`, `input_json_delta`), `message_delta`
(stop_reason, usage), `message_stop`; `ping` keeps it alive and `error` ends it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from chat.providers.chunks import stream_json, token_count
from chat.providers.config import ProviderConfig, bearer, host_of, post_json, stream_headers
from chat.providers.convert import OPENER, arguments, data_url, image_url, merge_turns, parts, text_of, tool_functions
from chat.providers.errors import ProviderError, error_from_event_data, error_from_payload
from chat.providers.events import Event, Finish, TextDelta, ToolCall, ToolCallDelta, ToolCalls, Usage
from chat.providers.sse import SSEEvent

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens; every caller of ours passes its own
# The official API takes the key in x-api-key only; relays (new-api and others) read the Bearer header.
OFFICIAL_HOSTS = frozenset({"api.anthropic.com"})
FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "tool_use": "tool_calls",
}  # fmt: skip


def build_request(
    http: httpx.AsyncClient,
    config: ProviderConfig,
    messages: Sequence[dict[str, Any]],
    *,
    tools: Sequence[dict[str, Any]] | None,
    temperature: float | None,
    max_tokens: int | None,
) -> httpx.Request:
    system, turns = convert_messages(messages)
    body: dict[str, Any] = {
        **config.extra_body,
        "model": config.model,
        "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
        "messages": turns,
        "stream": True,
    }
    if system:
        body["system"] = system
    if temperature is not None:
        body["temperature"] = min(max(temperature, 0.0), 1.0)  # Anthropic's range is 0–1, OpenAI's 0–2
    if tools:
        body["tools"] = convert_tools(tools)
    return post_json(http, config, config.base_url.rstrip("/") + "/messages", _headers(config), body)


def _headers(config: ProviderConfig) -> dict[str, str]:
    headers = {"x-api-key": config.api_key.strip(), "anthropic-version": VERSION, **stream_headers(config)}
    if host_of(config.base_url) not in OFFICIAL_HOSTS:
        headers["Authorization"] = bearer(config)
    return headers


def convert_tools(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": f["name"], "description": f.get("description") or "",
         "input_schema": f.get("parameters") or {"type": "object", "properties": {}}}
        for f in tool_functions(tools)
    ]  # fmt: skip


def convert_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(system, messages). Every system message goes to the top-level `system`, in order: the API has
    no system role, and curator text must not be dressed as a user turn."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "system":
            if text := text_of(content):
                system.append(text)
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or "", "content": text_of(content)}
            turns.append({"role": "user", "content": [result]})
        else:
            blocks = [b for b in map(_block, parts(content)) if b]
            if role == "assistant":
                blocks += [_tool_use(call) for call in message.get("tool_calls") or ()]
            turns.append({"role": "assistant" if role == "assistant" else "user", "content": blocks})
    turns = merge_turns(turns, "content")
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": OPENER}]})
    if turns and turns[-1]["role"] == "assistant":
        _trim_prefill(turns)
    return "\n\n".join(system), [_compact(turn) for turn in turns]


def _trim_prefill(turns: list[dict[str, Any]]) -> None:
    """A last assistant turn (continuing an unfinished reply) is a prefill the model goes on from;
    the API refuses one that ends in whitespace."""
    blocks = turns[-1]["content"]
    if blocks[-1]["type"] == "text":
        blocks[-1] = {**blocks[-1], "text": blocks[-1]["text"].rstrip()}
        if not blocks[-1]["text"]:
            blocks.pop()
    if not blocks:
        turns.pop()


def _block(part: Mapping[str, Any]) -> dict[str, Any] | None:
    if part.get("type") == "text":
        return {"type": "text", "text": part["text"]}
    if part.get("type") == "image_url":
        url = image_url(part)
        if inline := data_url(url):
            return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
        return {"type": "image", "source": {"type": "url", "url": url}} if url else None
    return None


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "",
            "input": arguments(function.get("arguments"))}  # fmt: skip


def _compact(turn: dict[str, Any]) -> dict[str, Any]:
    # A lone text block is sent as a plain string, the shorthand the reference shows.
    blocks = turn["content"]
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        return {"role": turn["role"], "content": blocks[0]["text"]}
    return turn


@dataclass
class _Slot:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class Parser:
    """Strict about endings, like ChunkParser: success is a `stop_reason` and then `message_stop`;
    ToolCalls, Usage and Finish are released only by `finish()`."""

    END = "message_stop"

    def __init__(self) -> None:
        self.done = False
        self.stop_reason: str | None = None
        self._input = self._output = 0
        self._usage_seen = False
        self._calls: dict[int, _Slot] = {}  # by content block index
        self._order: dict[int, int] = {}  # block index → tool call index (0, 1, …), as OpenAI numbers them

    def feed(self, sse: SSEEvent) -> list[Event]:
        if self.done:
            return []
        if sse.event == "error":
            raise error_from_event_data(sse.data)
        data = sse.data.strip()
        if not data:
            return []
        payload = stream_json(data)
        kind = payload.get("type") or sse.event
        if kind == "error" or isinstance(payload.get("error"), dict):
            raise error_from_payload(payload)
        if kind == "message_start":
            self._usage((payload.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            return self._block_start(payload)
        elif kind == "content_block_delta":
            return self._block_delta(payload)
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self.stop_reason = str(delta["stop_reason"])
            # Anthropic sends usage beside the delta; the relay reference shows it inside.
            self._usage(payload.get("usage") or delta.get("usage"))
        elif kind == "message_stop":
            self.done = True
        return []  # ping, content_block_stop and event types added later carry nothing for us

    def finish(self) -> list[Event]:
        if self.stop_reason is None:
            raise ProviderError("interrupted", detail="message_stop arrived without a stop_reason")
        if self.stop_reason == "refusal":
            raise ProviderError("moderation", code="refusal", detail="stop_reason refusal")
        reason = FINISH_REASONS.get(self.stop_reason, self.stop_reason)
        events: list[Event] = []
        if reason == "tool_calls":
            events.append(ToolCalls([_call(slot) for _, slot in sorted(self._calls.items())]))
        if self._usage_seen:
            events.append(Usage(self._input, self._output, self._input + self._output))
        events.append(Finish(reason))
        return events

    def _block_start(self, payload: Mapping[str, Any]) -> list[Event]:
        block, index = payload.get("content_block") or {}, token_count(payload.get("index"))
        if block.get("type") == "text":
            return [TextDelta(block["text"])] if isinstance(block.get("text"), str) and block["text"] else []
        if block.get("type") != "tool_use":
            return []  # thinking and redacted_thinking blocks are never the answer
        slot = self._calls[index] = _Slot(id=str(block.get("id") or ""), name=str(block.get("name") or ""))
        self._order[index] = len(self._order)
        start = block.get("input")
        if isinstance(start, dict) and start:  # a relay may send the whole input here instead of deltas
            slot.arguments.append(json.dumps(start, ensure_ascii=False))
        return [ToolCallDelta(self._order[index], slot.id or None, slot.name or None, "".join(slot.arguments))]

    def _block_delta(self, payload: Mapping[str, Any]) -> list[Event]:
        delta, index = payload.get("delta") or {}, token_count(payload.get("index"))
        kind = delta.get("type")
        if kind == "input_json_delta" and index in self._calls:
            fragment = delta.get("partial_json") or ""
            self._calls[index].arguments.append(fragment)
            return [ToolCallDelta(self._order[index], None, None, fragment)]
        # The reference's example omits the type; thinking_delta and signature_delta are dropped.
        if kind in (None, "text_delta") and isinstance(delta.get("text"), str) and delta["text"]:
            return [TextDelta(delta["text"])]
        return []

    def _usage(self, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            return
        self._usage_seen = True
        # Cached prompt tokens are reported apart from input_tokens; all of them were read.
        prompt = sum(token_count(raw.get(k)) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        if prompt:
            self._input = prompt
        if "output_tokens" in raw:
            self._output = token_count(raw["output_tokens"])  # cumulative, not a delta




def _call(slot: _Slot) -> ToolCall:
    return ToolCall(id=slot.id, name=slot.name, arguments="".join(slot.arguments) or "{}")
