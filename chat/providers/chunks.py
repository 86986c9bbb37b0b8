"""Turn the SSE events of one chat/completions stream into chat events.

Strict about endings (docs/provider-reference.md §0.2): a stream succeeded only when a finish_reason
was seen and then `[DONE]`. The terminal events (ToolCalls, Usage, Finish) are released
only by `finish()`, so a caller never acts on tool calls from a truncated stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.providers.errors import ProviderError, error_from_event_data, error_from_payload
from chat.providers.events import Event, Finish, TextDelta, ToolCall, ToolCallDelta, ToolCalls, Usage
from chat.providers.sse import SSEEvent


@dataclass
class _Slot:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChunkParser:
    END = "[DONE]"  # what a complete stream ends with, for the "interrupted" detail

    def __init__(self) -> None:
        self.done = False  # saw [DONE]
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._calls: dict[int, _Slot] = {}

    def feed(self, sse: SSEEvent) -> list[Event]:
        if self.done:
            return []
        if sse.event == "error":  # openai-python treats this event type as an error whatever the data
            raise error_from_event_data(sse.data)
        data = sse.data.strip()
        if not data:
            return []
        if data.startswith("[DONE]"):
            self.done = True
            return []
        payload = stream_json(data)
        # Any chunk may be an error object; check before touching `choices` (docs/provider-reference.md §0.3).
        if payload.get("error") or payload.get("object") == "error":
            raise error_from_payload(payload)
        if isinstance(payload.get("usage"), dict):
            self.usage = _usage(payload["usage"])
        events: list[Event] = []
        for choice in payload.get("choices") or ():  # the usage chunk has "choices": []
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice, payload)
        return events

    def finish(self) -> list[Event]:
        if self.finish_reason is None:
            raise ProviderError("interrupted", detail="[DONE] arrived without a finish_reason")
        if self.finish_reason == "content_filter":
            raise ProviderError("moderation", code="content_filter", detail="finish_reason content_filter")
        events: list[Event] = []
        if self.finish_reason == "tool_calls":
            events.append(ToolCalls([_call(slot) for _, slot in sorted(self._calls.items())]))
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(self.finish_reason))
        return events

    def _choice(self, choice: Mapping[str, Any], payload: Mapping[str, Any]) -> list[Event]:
        delta = choice.get("delta") or {}
        # reasoning_content / reasoning / reasoning_details are skipped: never shown as the answer.
        events: list[Event] = []
        text = _text(delta.get("content"))
        if text:
            events.append(TextDelta(text))
        for raw in delta.get("tool_calls") or ():
            if isinstance(raw, dict):
                events.append(self._tool_delta(raw))
        reason = choice.get("finish_reason")
        if reason == "error":  # OpenRouter; usually paired with an "error" key, caught earlier
            raise error_from_payload(payload)
        if reason:
            self.finish_reason = str(reason)
        return events

    def _tool_delta(self, raw: Mapping[str, Any]) -> ToolCallDelta:
        # Key by index, never by id: continuations omit the id or send "" (DashScope).
        raw_index = raw.get("index")
        index = raw_index if isinstance(raw_index, int) else 0
        slot = self._calls.setdefault(index, _Slot())
        function = raw.get("function") or {}
        call_id, name = raw.get("id") or "", function.get("name") or ""
        fragment = function.get("arguments") or ""
        if not isinstance(fragment, str):  # a few servers send the arguments as an object
            fragment = json.dumps(fragment, ensure_ascii=False)
        if call_id:
            slot.id = call_id
        if name:
            slot.name = name
        slot.arguments.append(fragment)
        return ToolCallDelta(index, call_id or None, name or None, fragment)


def stream_json(data: str) -> dict[str, Any]:
    """One event's JSON object; an upstream error when it is not one (every protocol's stream)."""
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ProviderError("upstream", detail=f"malformed stream data: {data[:200]}")
    return payload


def token_count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content-part arrays from some relays
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _usage(raw: Mapping[str, Any]) -> Usage:
    prompt, completion = token_count(raw.get("prompt_tokens")), token_count(raw.get("completion_tokens"))
    cost = raw.get("cost")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=token_count(raw.get("total_tokens")) or prompt + completion,
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )




def _call(slot: _Slot) -> ToolCall:
    # A tool without parameters may stream no arguments at all; "{}" is what it means.
    return ToolCall(id=slot.id, name=slot.name, arguments="".join(slot.arguments) or "{}")
