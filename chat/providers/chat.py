"""Streaming chat client: OpenAI chat/completions (DashScope compatible-mode, OpenRouter, relays),
Anthropic Messages and Gemini generateContent, chosen by `ProviderConfig.protocol`.

    async for event in stream_chat(config, messages):
        ...  # TextDelta, ToolCallDelta, then ToolCalls?, Usage?, Finish; or ProviderError

Each protocol module (openai.py, anthropic.py, gemini.py) supplies `build_request()` and a `Parser`;
the attempt, retry and timeout machinery here is shared. Retries happen only before the caller has
received any content (docs/provider-reference.md §0.5, §6). See docs/providers.md for the event,
error and timeout contract.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from types import ModuleType
from typing import Any

import httpx

from chat.providers import anthropic, gemini, openai
from chat.providers.config import ProviderConfig
from chat.providers.errors import ProviderError, error_from_response, parse_body, redact, unreachable
from chat.providers.events import CONTENT, Event, Finish, TextDelta, ToolCall, ToolCallDelta, ToolCalls, Usage
from chat.providers.retry import backoff_delay
from chat.providers.sse import SSEDecoder, SSEEvent
from guyue.lib.netguard import AddressGuard, UnsafeURL, async_client

__all__ = [
    "Event", "Finish", "ProviderConfig", "TextDelta", "ToolCall", "ToolCallDelta", "ToolCalls", "Usage",
    "get_client", "new_client", "stream_chat",
]  # fmt: skip

logger = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 64 * 1024
DRAIN_AFTER_DONE = 1.0  # reading the chunked terminator after [DONE] lets the connection be reused
PROTOCOLS: dict[str, ModuleType] = {"openai": openai, "anthropic": anthropic, "gemini": gemini}


# Each streamed reply holds one connection for its whole length, so the pool must be larger than
# the streams one process serves at once (httpx's default of 100 made the 101st reply wait for a slot).
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30)

# One pool per event loop and guard: httpx connections are bound to the loop that opened them.
_clients: dict[asyncio.AbstractEventLoop, dict[AddressGuard | None, httpx.AsyncClient]] = {}


def new_client(guard: AddressGuard | None) -> httpx.AsyncClient:
    """A client of the caller's own (they close it), connecting only where `guard` allows."""
    return async_client(guard, limits=POOL_LIMITS)


def get_client(guard: AddressGuard | None = None) -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    for stale in [other for other in _clients if other.is_closed()]:
        del _clients[stale]  # its sockets died with its loop; let them be collected
    clients = _clients.setdefault(loop, {})
    client = clients.get(guard)
    if client is None or client.is_closed:
        client = clients[guard] = new_client(guard)
    return client


async def stream_chat(
    config: ProviderConfig,
    messages: Sequence[dict[str, Any]],
    *,
    tools: Sequence[dict[str, Any]] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    client: httpx.AsyncClient | None = None,
) -> AsyncGenerator[Event, None]:
    http = client or get_client(config.guard)
    protocol = _protocol(config)
    request = protocol.build_request(http, config, messages, tools=tools, temperature=temperature,
                                     max_tokens=max_tokens)  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.total_timeout
    # Every attempt must have its headers by this one moment: retries share the first-byte budget,
    # so a stalled upstream costs the user one first_byte_timeout, not one per attempt.
    first_byte_deadline = min(loop.time() + config.first_byte_timeout, deadline)
    retries, stream_retry_used = 0, False
    while True:
        attempt = _Attempt(http, request, config, protocol.Parser(), deadline, first_byte_deadline)
        try:
            async with aclosing(attempt.events()) as events:
                async for event in events:
                    yield event
            return
        except ProviderError as error:
            error.detail = redact(error.detail, config.api_key)
            error.after_content = attempt.content_seen
            if not _may_retry(error, attempt, retries, config.max_retries, stream_retry_used):
                raise
            delay = backoff_delay(retries, error.retry_after)
            if loop.time() + delay >= first_byte_deadline:
                raise  # the next attempt would have no time left to get its headers
            logger.warning("provider %s failed (%s), retry %d in %.2fs", config.kind, error, retries + 1, delay)
            await sleep(delay)
            retries += 1
            stream_retry_used |= attempt.phase == "stream"


def _may_retry(error: ProviderError, attempt: _Attempt, retries: int, limit: int, stream_retry_used: bool) -> bool:
    if retries >= limit or not error.retryable or attempt.content_seen:
        return False
    if attempt.phase != "stream":
        return True  # connect errors, 408/409/429/5xx; a header timeout has used up the first-byte budget
    # A 200 that failed before any content (error as the first event, early truncation) gets one
    # more try. Timeouts after the headers do not: the upstream may still be generating, and billing.
    return not stream_retry_used and error.kind != "timeout"


def _protocol(config: ProviderConfig) -> ModuleType:
    try:
        return PROTOCOLS[config.protocol]
    except KeyError:
        raise ProviderError("bad_request", message="对话协议无效，请检查设置。",
                            detail=f"unknown protocol {config.protocol!r}") from None  # fmt: skip


class _Attempt:
    """One HTTP exchange. `phase` tells the retry policy how far it got. `parser` speaks the protocol:
    `feed(sse) -> events`, `done` once the stream's own end arrived, `finish() -> terminal events`."""

    def __init__(self, http: httpx.AsyncClient, request: httpx.Request, config: ProviderConfig, parser: Any,
                 deadline: float, first_byte_deadline: float):  # fmt: skip
        self.http, self.request, self.config, self.deadline = http, request, config, deadline
        self.first_byte_deadline = first_byte_deadline
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.phase = "connect"  # → "status" (non-2xx answer) or "stream" (2xx body)
        self.content_seen = False
        self.parser = parser
        self.decoder = SSEDecoder()
        self.done_at: float | None = None

    async def events(self) -> AsyncGenerator[Event, None]:
        response = await self._send()
        try:
            await self._reject_non_stream(response)
            self.phase = "stream"
            async with aclosing(self._frames(response)) as frames:
                async for sse in frames:
                    for event in self.parser.feed(sse):
                        self.content_seen |= isinstance(event, CONTENT)
                        yield event
                    if self.parser.done and self.done_at is None:
                        self.done_at = self.loop.time()
            if not self.parser.done:
                raise ProviderError("interrupted", detail=f"stream ended without {self.parser.END}")
            for event in self.parser.finish():
                yield event
        finally:
            # Also runs on aclose()/cancellation: an unread body would otherwise hold the connection.
            await response.aclose()

    async def _send(self) -> httpx.Response:
        try:
            async with asyncio.timeout_at(self.first_byte_deadline):
                return await self.http.send(self.request, stream=True)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ProviderError("timeout", detail=f"no response headers: {type(exc).__name__}") from None
        except UnsafeURL as exc:
            # The guard refused the address at connect time (rebinding, or it moved): never retried.
            raise ProviderError("bad_request", message=str(exc), detail=f"refused at connect: {exc}",
                                retryable=False) from None  # fmt: skip
        except httpx.ConnectError as exc:
            raise unreachable(f"connect failed: {exc}") from None
        except httpx.LocalProtocolError as exc:
            raise ProviderError("bad_request", detail=f"could not send request: {exc}") from None
        except httpx.HTTPError as exc:
            raise ProviderError("upstream", detail=f"no response: {type(exc).__name__}: {exc}") from None

    async def _reject_non_stream(self, response: httpx.Response) -> None:
        status = response.status_code
        if status >= 400:
            self.phase = "status"
            raise error_from_response(status, response.headers, await self._small_body(response))
        if status >= 300 or status == 204:
            raise ProviderError("bad_request", message="接口地址有误，请检查设置。", status=status,
                                detail=f"HTTP {status} from {self.request.url.path}")  # fmt: skip
        if "json" in response.headers.get("content-type", ""):
            # Some relays answer stream=true with a JSON error and status 200.
            body = await self._small_body(response)
            payload = parse_body(body) or {}
            if payload.get("error") or payload.get("object") == "error":
                self.phase = "status"
                raise error_from_response(status, response.headers, body)
            raise ProviderError("upstream", retryable=False, detail="expected an event stream, got JSON")

    async def _small_body(self, response: httpx.Response) -> bytes:
        body = bytearray()
        try:
            async with asyncio.timeout_at(min(self.deadline, self.loop.time() + min(self.config.idle_timeout, 10))):
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= ERROR_BODY_LIMIT:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # classify on what arrived, or on the status alone
        return bytes(body)

    async def _frames(self, response: httpx.Response) -> AsyncGenerator[SSEEvent, None]:
        chunks = response.aiter_bytes()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self._read_deadline()):
                        chunk = await anext(chunks, None)
                except (TimeoutError, httpx.HTTPError) as exc:
                    if self.parser.done:
                        return  # [DONE] was read; a slow or dirty close no longer matters
                    raise self._read_error(exc) from None
                if chunk is None:
                    break
                for sse in self.decoder.feed(chunk):
                    yield sse
            for sse in self.decoder.close():
                yield sse
        finally:
            await chunks.aclose()

    def _read_deadline(self) -> float:
        if self.done_at is not None:
            return min(self.deadline, self.done_at + DRAIN_AFTER_DONE)
        if self.content_seen:
            return self.deadline
        return min(self.deadline, self.started + self.config.first_content_timeout)

    def _read_error(self, exc: Exception) -> ProviderError:
        if isinstance(exc, TimeoutError):
            if self.loop.time() >= self.deadline:
                return ProviderError("timeout", detail="overall deadline reached")
            return ProviderError("timeout", detail="no content within first_content_timeout (comments only)")
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError("timeout", detail="stream stalled longer than idle_timeout")
        return ProviderError("interrupted", detail=f"connection lost mid-stream: {type(exc).__name__}: {exc}")
