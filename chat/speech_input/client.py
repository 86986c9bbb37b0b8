"""`POST {base_url}/audio/transcriptions`: the recording as multipart `file`, with `model` and
`language=zh`; the answer is `{"text": ...}`. No Django imports: the caller passes what to call."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from chat.providers.chat import get_client
from chat.providers.errors import ProviderError, error_from_response
from chat.speech_input.formats import AudioFormat
from guyue.lib import netguard

NOT_SUPPORTED = "接口不支持语音识别，请检查接口地址或听写模型。"
TIMEOUT = "语音识别超时，请稍后再试。"
UNREADABLE = "语音识别服务的回答无法读取，请稍后再试。"


@dataclass(frozen=True)
class Transcriber:
    base_url: str
    api_key: str
    model: str
    timeout: float
    guard: netguard.AddressGuard | None  # None: a site-wide connection, trusted (accounts.services.credential_guard)


class TranscriptionError(Exception):
    """`message` is fit to show the user; `error` is the provider error behind it, if any."""

    def __init__(self, message: str, error: ProviderError | None = None):
        super().__init__(message)
        self.message, self.error = message, error


async def transcribe(target: Transcriber, audio: bytes, fmt: AudioFormat, *, language: str = "zh") -> str:
    timeout = httpx.Timeout(target.timeout, connect=min(target.timeout, 10.0))
    files = {"file": (f"recording.{fmt.name}", audio, fmt.mime)}
    data = {"model": target.model, "language": language, "response_format": "json"}
    headers = {"Authorization": f"Bearer {target.api_key.strip()}"}
    # The chat's pool (one per event loop and guard): a new client would build an SSL context per call.
    http = get_client(target.guard)
    try:
        response = await http.post(target.base_url.rstrip("/") + "/audio/transcriptions",
                                   files=files, data=data, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise TranscriptionError(TIMEOUT) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise TranscriptionError("接口地址无效，请检查设置。") from None
    except (httpx.HTTPError, netguard.UnsafeURL) as exc:
        raise TranscriptionError(str(exc) if isinstance(exc, netguard.UnsafeURL)
                                 else "无法连接到语音识别服务，请稍后再试。") from None
    return _text(response)


def _text(response: httpx.Response) -> str:
    if response.status_code >= 400:
        error = error_from_response(response.status_code, response.headers, response.content)
        # A 404 here is the endpoint, not the model: most chat-only relays have no audio routes.
        message = NOT_SUPPORTED if response.status_code in (404, 405) else error.message
        raise TranscriptionError(message, error)
    try:
        payload = json.loads(response.content)
    except ValueError:
        raise TranscriptionError(UNREADABLE) from None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        raise TranscriptionError(UNREADABLE)
    return text.strip()
