"""Reading the OpenAI-style messages our prompt builder makes, for the protocols that want another shape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

# Anthropic and Gemini want the conversation to open with a user turn; ours opens with the figure's
# greeting. This fixed line (ours, not the user's) stands in front of it.
OPENER = "（对话开始）"

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*?;base64,(?P<data>.*)", re.DOTALL)


def parts(content: Any) -> Iterator[dict[str, Any]]:
    """A message's content as OpenAI parts: a string is one text part; empty text is skipped."""
    if isinstance(content, str):
        if content:
            yield {"type": "text", "text": content}
        return
    for part in content or ():
        if isinstance(part, Mapping) and (part.get("type") != "text" or part.get("text")):
            yield dict(part)


def text_of(content: Any) -> str:
    return "".join(p["text"] for p in parts(content) if p.get("type") == "text")


def image_url(part: Mapping[str, Any]) -> str:
    raw = part.get("image_url")
    return str(raw.get("url") or "") if isinstance(raw, Mapping) else str(raw or "")


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:image/png;base64,...` URL, or None for any other URL."""
    match = _DATA_URL.fullmatch(url.strip())
    return (match["mime"].lower(), match["data"]) if match else None


def arguments(raw: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as the object both protocols want back; anything else becomes {}."""
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def tool_functions(tools: Any) -> Iterator[dict[str, Any]]:
    """The `function` objects of OpenAI tool definitions."""
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and function.get("name"):
            yield dict(function)


def merge_turns(turns: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Consecutive turns of one role become one (both APIs want roles to alternate), and empty ones go."""
    merged: list[dict[str, Any]] = []
    for turn in turns:
        if not turn[key]:
            continue
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1][key] = merged[-1][key] + turn[key]
        else:
            merged.append({**turn, key: list(turn[key])})
    return merged
