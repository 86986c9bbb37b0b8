"""The speech client: `POST {base_url}/audio/speech` (OpenAI-compatible), one sentence at a time.

Plain Python with httpx and no Django imports, like chat/providers. Connections go through the
netguard client, so a user's base URL reaches public addresses only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from chat.providers.errors import ProviderError, error_from_response, redact
from guyue.lib.netguard import AddressGuard, UnsafeURL, async_client

MAX_AUDIO_BYTES = 5 * 1024 * 1024  # one sentence of mp3 is tens of kilobytes
MAX_INPUT_CHARS = 4096  # the endpoint's own limit

MESSAGES = {
    "auth": "密钥无效、已失效或无权使用朗读模型，服务商拒绝了朗读请求。",
    "billing": "朗读服务账户余额不足或已欠费。",
    "rate_limit": "朗读请求过于频繁，请稍候再试。",
    "moderation": "这句话未通过服务商的安全审核，未能朗读。",
    "timeout": "朗读服务长时间没有回应，请稍后再试。",
    "upstream": "朗读服务暂时出错，请稍后再试。",
    "bad_request": "朗读服务没有接受这次请求，可能是朗读模型或音色设置有误。",
    "unavailable": "朗读模型暂时不可用，请稍后再试，或在设置中更换朗读模型。",
    "not_found": "朗读接口地址或朗读模型名称有误（服务商答 404），请检查密钥设置。",
    "not_audio": "朗读服务返回的不是音频，请检查朗读模型设置。",
    "too_large": "朗读服务返回的音频过大，已放弃。",
    "unreachable": "无法连接到朗读服务，请稍后再试。",
}


class SpeechError(Exception):
    """`message` is Chinese, for the user; `detail` is the provider's text, for logs."""

    def __init__(self, kind: str, detail: str = "", status: int | None = None):
        super().__init__(kind)
        self.kind, self.detail, self.status = kind, detail, status
        self.message = MESSAGES.get(kind, MESSAGES["upstream"])


@dataclass(frozen=True)
class SpeechConfig:
    base_url: str
    api_key: str = field(repr=False)
    model: str
    voice: str
    speed: float = 1.0
    timeout: float = 30.0
    guard: AddressGuard | None = AddressGuard()


def request_body(config: SpeechConfig, text: str) -> dict:
    return {"model": config.model, "input": text[:MAX_INPUT_CHARS], "voice": config.voice,
            "speed": config.speed, "response_format": "mp3"}


_clients: dict[tuple[asyncio.AbstractEventLoop, AddressGuard | None], httpx.AsyncClient] = {}


def _client(guard: AddressGuard | None) -> httpx.AsyncClient:
    """One pool per event loop and guard (httpx connections are bound to the loop that opened them)."""
    key = (asyncio.get_running_loop(), guard)
    for stale in [k for k in _clients if k[0].is_closed()]:
        del _clients[stale]
    client = _clients.get(key)
    if client is None or client.is_closed:
        client = _clients[key] = async_client(guard)
    return client


async def synthesize(config: SpeechConfig, text: str, client: httpx.AsyncClient | None = None) -> bytes:
    """The mp3 of `text`, or SpeechError."""
    http = client or _client(config.guard)
    url = config.base_url.rstrip("/") + "/audio/speech"
    headers = {"Authorization": f"Bearer {config.api_key}", "Accept": "audio/mpeg"}
    try:
        async with http.stream("POST", url, json=request_body(config, text), headers=headers,
                               timeout=httpx.Timeout(config.timeout, connect=5.0)) as response:
            body = await _read(response)
    except UnsafeURL as exc:
        raise SpeechError("unreachable", str(exc)) from None
    except httpx.TimeoutException as exc:
        raise SpeechError("timeout", type(exc).__name__) from None
    except httpx.HTTPError as exc:
        raise SpeechError("unreachable", redact(str(exc), config.api_key)) from None
    if response.status_code != 200:
        raise _error(response, body, config.api_key)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (kind.startswith("audio/") or kind == "application/octet-stream") or not body:
        raise SpeechError("not_audio", f"content-type {kind!r}, {len(body)} bytes", response.status_code)
    return body


async def _read(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_AUDIO_BYTES:
            raise SpeechError("too_large", f"over {MAX_AUDIO_BYTES} bytes", response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(response: httpx.Response, body: bytes, api_key: str) -> SpeechError:
    if response.status_code == 404:  # the relay has no speech endpoint, or no such model
        return SpeechError("not_found", redact(body[:500].decode("utf-8", "replace"), api_key), 404)
    error: ProviderError = error_from_response(response.status_code, response.headers, body)
    return SpeechError(error.kind, redact(error.detail, api_key), response.status_code)
