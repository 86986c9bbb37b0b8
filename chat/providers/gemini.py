"""Gemini generateContent: `POST {root}/v1beta/models/{model}:streamGenerateContent?alt=sse`, and its stream.

Request shapes as the relay reference documents them (Gemini 官方格式): `contents` of `parts` with
roles user/model, `inlineData` for images, `generationConfig`; plus `systemInstruction`,
`functionDeclarations`, `functionCall`/`functionResponse` parts. Every SSE event is a whole
GenerateContentResponse (candidates, finishReason, usageMetadata); there is no terminal marker, so
a stream succeeded only when a finishReason arrived.
"""

from __future__ import annotations

import json
import mimetypes
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from chat.providers.chunks import stream_json, token_count
from chat.providers.config import ProviderConfig, bearer, host_of, post_json, stream_headers
from chat.providers.convert import OPENER, arguments, data_url, image_url, merge_turns, parts, text_of, tool_functions
from chat.providers.errors import ProviderError, error_from_payload
from chat.providers.events import Event, Finish, TextDelta, ToolCall, ToolCallDelta, ToolCalls, Usage
from chat.providers.sse import SSEEvent

# Google's own endpoint takes the key in x-goog-api-key; a Bearer header there would be read as an
# OAuth token and refused. Relays document Bearer.
OFFICIAL_HOSTS = frozenset({"generativelanguage.googleapis.com"})
_VERSION_SUFFIX = re.compile(r"/v\d+(?:(?:alpha|beta)\d*)?/*$")
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}
# The answer was withheld for its content: the moderation kind, never retried.
BLOCKED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})
# Keywords Gemini's OpenAPI-subset schema refuses; our tool schemas are plain, this is a guard.
_SCHEMA_DROP = frozenset({"$schema", "additionalProperties", "strict", "$id", "$defs", "definitions"})


def endpoint(config: ProviderConfig) -> str:
    """`https://relay.example/v1` → `https://relay.example/v1beta/models/{model}:streamGenerateContent?alt=sse`:
    a trailing version segment (`/v1`, `/v1beta`) is replaced, a base without one gets `/v1beta`."""
    root = _VERSION_SUFFIX.sub("", config.base_url.rstrip("/"))
    model = urllib.parse.quote(config.model.removeprefix("models/"), safe="")
    return f"{root}/v1beta/models/{model}:streamGenerateContent?alt=sse"


def build_request(
    http: httpx.AsyncClient,
    config: ProviderConfig,
    messages: Sequence[dict[str, Any]],
    *,
    tools: Sequence[dict[str, Any]] | None,
    temperature: float | None,
    max_tokens: int | None,
) -> httpx.Request:
    system, contents = convert_messages(messages)
    body: dict[str, Any] = {**config.extra_body, "contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    generation = dict(body.get("generationConfig") or {})
    if temperature is not None:
        generation["temperature"] = temperature
    if max_tokens is not None:
        generation["maxOutputTokens"] = max_tokens
    if generation:
        body["generationConfig"] = generation
    if tools:
        body["tools"] = [{"functionDeclarations": convert_tools(tools)}]
    return post_json(http, config, endpoint(config), _headers(config), body)


def _headers(config: ProviderConfig) -> dict[str, str]:
    headers = {"x-goog-api-key": config.api_key.strip(), **stream_headers(config)}
    if host_of(config.base_url) not in OFFICIAL_HOSTS:
        headers["Authorization"] = bearer(config)
    return headers


def convert_tools(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    declarations = []
    for function in tool_functions(tools):
        declaration = {"name": function["name"], "description": function.get("description") or ""}
        if function.get("parameters"):
            declaration["parameters"] = _schema(function["parameters"])
        declarations.append(declaration)
    return declarations


def _schema(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _schema(v) for k, v in value.items() if k not in _SCHEMA_DROP}
    if isinstance(value, list):
        return [_schema(v) for v in value]
    return value


def convert_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, contents). System messages all go to `systemInstruction`, in order (see
    anthropic.convert_messages); a tool result becomes a user `functionResponse` named after its call."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id → function name: functionResponse wants the name
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "system":
            if text := text_of(content):
                system.append(text)
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id") or ""), "")
            response = {"name": name, "response": _response(text_of(content))}
            contents.append({"role": "user", "parts": [{"functionResponse": response}]})
        else:
            found = [p for p in map(_part, parts(content)) if p]
            if role == "assistant":
                for call in message.get("tool_calls") or ():
                    function = call.get("function") or {}
                    names[str(call.get("id") or "")] = function.get("name") or ""
                    found.append({"functionCall": {"name": function.get("name") or "",
                                                   "args": arguments(function.get("arguments"))}})  # fmt: skip
            contents.append({"role": "model" if role == "assistant" else "user", "parts": found})
    contents = merge_turns(contents, "parts")
    if contents and contents[0]["role"] != "user":
        contents.insert(0, {"role": "user", "parts": [{"text": OPENER}]})
    return system, contents


def _part(part: Mapping[str, Any]) -> dict[str, Any] | None:
    if part.get("type") == "text":
        return {"text": part["text"]}
    if part.get("type") == "image_url":
        url = image_url(part)
        if inline := data_url(url):
            return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
        if url:
            mime = mimetypes.guess_type(urllib.parse.urlsplit(url).path)[0] or "image/jpeg"
            return {"fileData": {"mimeType": mime, "fileUri": url}}
    return None


def _response(text: str) -> dict[str, Any]:
    # functionResponse.response must be an object; our tool results are JSON objects already.
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


class Parser:
    """A stream succeeded when a candidate's finishReason arrived and the body then ended.
    ToolCalls, Usage and Finish are released only by `finish()`."""

    END = "a finishReason"

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._calls: list[ToolCall] = []

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def feed(self, sse: SSEEvent) -> list[Event]:
        data = sse.data.strip()
        if not data:
            return []
        payload = stream_json(data)
        if payload.get("error"):
            raise error_from_payload(payload)
        blocked = (payload.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            raise ProviderError("moderation", code=str(blocked), detail=f"prompt blocked: {blocked}")
        if isinstance(payload.get("usageMetadata"), Mapping):
            self.usage = _usage(payload["usageMetadata"])  # later chunks carry the running totals
        events: list[Event] = []
        for candidate in payload.get("candidates") or ():
            if isinstance(candidate, Mapping) and token_count(candidate.get("index")) == 0 and not self.done:
                events += self._candidate(candidate)
        return events

    def finish(self) -> list[Event]:
        if self.finish_reason in BLOCKED:
            raise ProviderError("moderation", code=self.finish_reason, detail=f"finishReason {self.finish_reason}")
        if self.finish_reason == "MALFORMED_FUNCTION_CALL":
            raise ProviderError("upstream", code=self.finish_reason, detail="finishReason MALFORMED_FUNCTION_CALL")
        # Gemini ends a turn that calls functions with STOP; our callers look for "tool_calls".
        reason = "tool_calls" if self._calls else FINISH_REASONS.get(str(self.finish_reason), "stop")
        events: list[Event] = [ToolCalls(list(self._calls))] if self._calls else []
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(reason))
        return events

    def _candidate(self, candidate: Mapping[str, Any]) -> list[Event]:
        events: list[Event] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            if not isinstance(part, Mapping) or part.get("thought"):
                continue  # thought summaries (includeThoughts) are never the answer
            if isinstance(part.get("text"), str) and part["text"]:
                events.append(TextDelta(part["text"]))
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                events.append(self._call(call))
        if candidate.get("finishReason"):
            self.finish_reason = str(candidate["finishReason"])
        return events

    def _call(self, call: Mapping[str, Any]) -> ToolCallDelta:
        # Each functionCall arrives whole; its id is optional (the tool runner makes one when empty).
        args = json.dumps(call.get("args") or {}, ensure_ascii=False)
        tool = ToolCall(id=str(call.get("id") or ""), name=str(call.get("name") or ""), arguments=args)
        self._calls.append(tool)
        return ToolCallDelta(len(self._calls) - 1, tool.id or None, tool.name or None, args)




def _usage(raw: Mapping[str, Any]) -> Usage:
    prompt = token_count(raw.get("promptTokenCount"))
    # Thinking tokens are billed as output, as OpenAI-style providers count reasoning tokens.
    completion = token_count(raw.get("candidatesTokenCount")) + token_count(raw.get("thoughtsTokenCount"))
    return Usage(prompt, completion, token_count(raw.get("totalTokenCount")) or prompt + completion)
