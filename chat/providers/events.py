"""What `stream_chat` yields. Reasoning deltas are dropped on purpose: they are not the answer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """Progress only; act on the final `ToolCalls`, which holds the accumulated calls."""

    index: int
    id: str | None
    name: str | None
    arguments_fragment: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; parse (and validate) before running the tool


@dataclass(frozen=True)
class ToolCalls:
    calls: list[ToolCall] = field(default_factory=list)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = None  # OpenRouter reports credits spent; others leave it None


@dataclass(frozen=True)
class Finish:
    reason: str


Event = TextDelta | ToolCallDelta | ToolCalls | Usage | Finish
CONTENT = (TextDelta, ToolCallDelta)  # what counts as "the user has seen output"
