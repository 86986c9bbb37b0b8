"""Shared builders and the client fixture for the provider tests (modules import what they use).

Everything talks to the scripted upstream (`tests.fakes.upstream`) over real 127.0.0.1 sockets.
Timeouts are a fraction of a second so the suite stays fast; backoff goes through `Sleeps`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chat.providers import chat
from chat.providers.chat import Event, ProviderConfig, TextDelta, stream_chat
from chat.providers.errors import ProviderError
from guyue.lib.netguard import AddressGuard

KEY = "sk-test0123456789abcdef"
PATH = "/v1/chat/completions"
DONE = "data: [DONE]\n\n"
MESSAGES = [{"role": "system", "content": "你是苏轼。"}, {"role": "user", "content": "你好"}]


# The scripted upstream listens on 127.0.0.1: allowed the way an operator allows a local relay, so
# these tests go through the guarded transport that serves users' base URLs.
LOCAL = AddressGuard.allowing(["127.0.0.1"])


def config(upstream: Any, **overrides: Any) -> ProviderConfig:
    base = ProviderConfig(
        kind="dashscope", base_url=upstream.url + "/v1", api_key=KEY, model="qwen-plus",
        # Retries share the first-byte budget, and a backoff must end inside it: 5 s leaves room
        # for the scripted Retry-After hints (Sleeps records them; nothing really waits).
        connect_timeout=1.0, first_byte_timeout=5.0, first_content_timeout=2.0,
        idle_timeout=1.0, total_timeout=8.0,
        guard=LOCAL,
    )  # fmt: skip
    return replace(base, **overrides)


def chunk(content: str | None = None, *, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    """A DashScope-shaped chunk (the verbatim field order of docs/provider-reference.md §1)."""
    if content is not None:
        delta["content"] = content
    return {
        "choices": [{"finish_reason": finish, "delta": delta, "index": 0, "logprobs": None}],
        "object": "chat.completion.chunk", "usage": None, "created": 1726132850,
        "system_fingerprint": None, "model": "qwen-plus", "id": "chatcmpl-428b414f",
    }  # fmt: skip


def usage_chunk(prompt: int = 22, completion: int = 17, **extra: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, **extra}
    return {"choices": [], "object": "chat.completion.chunk", "usage": usage, "model": "qwen-plus"}


def reply_parts(*texts: str, finish: str = "stop") -> list[Any]:
    """Role chunk, one chunk per text, the finish chunk, the usage chunk, [DONE]."""
    return [chunk("", role="assistant"), *(chunk(t) for t in texts), chunk("", finish=finish), usage_chunk(), DONE]


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    error: ProviderError | None = None

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def run(cfg: ProviderConfig, messages: list[dict[str, Any]] = MESSAGES, **kwargs: Any) -> Outcome:
    """Collect events the way the consumer will: keep partial text when an error arrives."""
    outcome = Outcome()
    try:
        async for event in stream_chat(cfg, messages, **kwargs):
            outcome.events.append(event)
    except ProviderError as error:
        outcome.error = error
    return outcome


class Sleeps:
    """Stands in for asyncio.sleep: records each backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def close_clients() -> None:
    """Close this loop's shared clients, so no socket outlives the test's event loop."""
    for client in chat._clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


@pytest.fixture
async def shared_client():
    """Tests use the real per-loop client; close it before the loop goes away."""
    yield chat.get_client(LOCAL)
    await close_clients()


async def idle(upstream: Any, timeout: float = 30.0) -> None:
    # wait_idle() blocks; run it off the loop so our own connection close can still happen.
    # The timeout only bounds a hang: a loaded machine may take a while to close a connection.
    await asyncio.to_thread(upstream.wait_idle, timeout)
