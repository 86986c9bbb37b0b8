"""What every image back-end shares: the request and result types, errors, HTTP calls with the
retry policy of docs/provider-reference.md §6, result downloads and the choice of back-end from a credential.

Two shapes of back-end:
- asynchronous tasks (DashScope): `submit()` returns a task id, `poll()` reports its state and
  `fetch()` downloads the finished image;
- synchronous calls (OpenAI images format, OpenRouter): `generate()` returns the image.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from chat.providers.errors import MESSAGES, ProviderError, error_from_payload, error_from_response, unreachable
from chat.providers.retry import backoff_delay
from guyue.lib.netguard import AddressGuard, UnsafeURL, sync_client

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Any]

IMAGE_MESSAGES = {
    "expired": "生成任务已过期（服务端只保留 24 小时），请重新生成。",
    "result_expired": "图片链接已失效，未能取回图片，请重新生成。",
    "no_image": "模型没有返回图片，请换个描述再试。",
    "poll_timeout": "图片生成超时，可以继续等待或重新生成。",
    "refused_url": "图片地址不在允许的范围内，已拒绝下载。",
    "interrupted": "生成过程被中断，为避免重复计费没有自动重试，请重新生成。",
    "canceled": "生成任务已被取消。",
    "no_key": "还没有可用的 API 密钥，请先在“设置”中添加。",
}

MIME_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_DATA_URL = re.compile(r"^data:(image/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*(data:image/[^)\s]+|https?://[^)\s]+)\s*\)")


class ImageError(ProviderError):
    """A ProviderError with the image pipeline's own kinds (expired links, missing images …)."""

    def __init__(self, kind: str, *, message: str | None = None, detail: str = "", code: str | None = None,
                 status: int | None = None, retryable: bool = False, task_id: str = "") -> None:
        super().__init__(kind if kind in MESSAGES else "upstream", message=message or IMAGE_MESSAGES.get(kind),
                         detail=detail, code=code, status=status, retryable=retryable)  # fmt: skip
        self.kind = kind
        self.task_id = task_id


@dataclass(frozen=True)
class BackendConfig:
    kind: str  # "dashscope" | "openai_compatible" | "openrouter"
    base_url: str  # DashScope: the native base (…/api/v1); others: the OpenAI-style base (…/v1)
    api_key: str = field(repr=False)
    model: str
    connect_timeout: float = 5.0
    request_timeout: float = 180.0
    allowed_hosts: tuple[str, ...] = ()  # download allowlist (IMAGE_DOWNLOAD_ALLOWED_HOSTS)
    max_bytes: int = 20 * 1024 * 1024
    site_url: str = ""
    stream: bool = False  # OpenRouter only: ask for an event stream instead of one JSON body


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    negative_prompt: str = ""
    size: str = "1024*1024"


@dataclass
class ImageResult:
    data: bytes = field(repr=False)
    mime: str
    revised_prompt: str = ""
    warning: str = ""


@dataclass
class TaskState:
    status: str  # PENDING | RUNNING | SUCCEEDED
    urls: list[str] = field(default_factory=list)
    actual_prompt: str = ""
    warning: str = ""

    @property
    def done(self) -> bool:
        return self.status == "SUCCEEDED"


# --- HTTP ------------------------------------------------------------------------------------------


def timeout(config: BackendConfig, read: float | None = None) -> httpx.Timeout:
    read = config.request_timeout if read is None else read
    return httpx.Timeout(connect=config.connect_timeout, read=read, write=read, pool=read)


def request_json(
    http: httpx.Client, method: str, url: str, *, headers: dict[str, str], body: dict | None = None,
    idempotent: bool, http_timeout: httpx.Timeout, sleep: Sleep = time.sleep, max_retries: int = 2,
    secret: str = "",
) -> tuple[dict[str, Any], httpx.Response]:
    """One JSON call with retries. A call that creates something (idempotent=False) is retried only
    when it provably did not: the connection never opened, or the server answered 408/429/5xx."""
    retries = 0
    while True:
        try:
            return _request_once(http, method, url, headers, body, http_timeout)
        except ProviderError as error:
            if secret:
                error.detail = error.detail.replace(secret, "***")
            maybe_sent = getattr(error, "maybe_sent", False)
            if retries >= max_retries or not error.retryable or (maybe_sent and not idempotent):
                raise
            delay = backoff_delay(retries, error.retry_after)
            logger.warning("image call %s %s failed (%s), retry %d in %.2fs", method, _path(url), error,
                           retries + 1, delay)  # fmt: skip
            sleep(delay)
            retries += 1


def checked(send: Callable[[], httpx.Response]) -> httpx.Response:
    """One HTTP call with its failures as ProviderErrors: unreachable, a bad URL, no answer (which the
    upstream may still have acted on, and billed: `maybe_sent`), or an HTTP error status."""
    try:
        response = send()
    except httpx.ConnectError as exc:
        raise unreachable(f"connect failed: {exc}") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ProviderError("bad_request", message="接口地址无效，请检查设置。", detail=str(exc)) from None
    except httpx.HTTPError as exc:
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "upstream"
        error = ProviderError(kind, detail=f"{type(exc).__name__}: {exc}", retryable=True)
        error.maybe_sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        raise error from None
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.headers, response.content)
    return response


def _request_once(http, method, url, headers, body, http_timeout) -> tuple[dict[str, Any], httpx.Response]:
    content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    response = checked(lambda: http.request(method, url, headers=headers, content=content, timeout=http_timeout))
    payload = _json(response)
    if payload is None:
        error = ProviderError("upstream", detail=f"HTTP {response.status_code}, not a JSON object", retryable=True)
        error.maybe_sent = True
        raise error
    if isinstance(payload.get("error"), dict | str) or payload.get("object") == "error":
        raise error_from_payload(payload)
    return payload, response


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        payload = json.loads(response.content)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _path(url: str) -> str:
    return urlsplit(url).path  # logs never carry query strings: OSS URLs hold signatures


def bearer(config: BackendConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key.strip()}", "Content-Type": "application/json"}


# --- results ---------------------------------------------------------------------------------------


def sniff_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_image(data: bytes, *, max_bytes: int) -> ImageResult:
    if len(data) > max_bytes:
        raise ImageError("no_image", detail=f"image larger than {max_bytes} bytes")
    mime = sniff_mime(data)
    if mime is None:
        raise ImageError("no_image", detail="the returned bytes are not a PNG, JPEG or WebP image")
    return ImageResult(data=data, mime=mime)


def decode_data_url(url: str, *, max_bytes: int) -> ImageResult:
    match = _DATA_URL.match(url)
    if not match:
        raise ImageError("no_image", detail="data URL is not base64 image data")
    return decode_b64(url[match.end():], max_bytes=max_bytes)


def decode_b64(text: str, *, max_bytes: int) -> ImageResult:
    if len(text) > max_bytes * 4 // 3 + 4:
        raise ImageError("no_image", detail=f"image larger than {max_bytes} bytes")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("no_image", detail="invalid base64 image data") from None
    return decode_image(data, max_bytes=max_bytes)


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    for entry in allowed:
        entry = entry.lower()
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif entry in (host, f"{host}:{port}"):
            return True
    return False


def download_guard(config: BackendConfig) -> AddressGuard:
    """Downloads reach public addresses only, whoever's key made the image (the URL comes from a
    provider's answer). An allowlist entry naming one host exactly (`127.0.0.1`, `minio:9000`) is
    trusted wherever it resolves; a domain entry (`.aliyuncs.com`) must still resolve publicly."""
    return AddressGuard.allowing(entry for entry in config.allowed_hosts if not entry.startswith("."))


def download(url: str, config: BackendConfig, *, public_ok: bool, sleep: Sleep = time.sleep) -> ImageResult:
    """Fetch a generated image at once (result links expire), never with the API key.

    Allowed hosts come from IMAGE_DOWNLOAD_ALLOWED_HOSTS; with `public_ok` (relay CDNs, whose hosts
    we cannot list) any other host is allowed as well. Either way the connection goes only to an
    address `download_guard` allows, checked when it is opened."""
    if url.startswith("data:"):
        return decode_data_url(url, max_bytes=config.max_bytes)
    if urlsplit(url).scheme not in ("http", "https"):
        raise ImageError("refused_url", detail="image URL is not http(s)")
    if not public_ok and not host_allowed(url, config.allowed_hosts):
        host = urlsplit(url).hostname
        raise ImageError("refused_url", detail=f"host {host!r} is not in the allowlist",
                         message=f"图片所在的主机 {host} 不在允许下载的范围内，已拒绝下载。"
                                 "如确实可信，管理员可把它加入 IMAGE_DOWNLOAD_ALLOWED_HOSTS 设置。")
    retries = 0
    with sync_client(download_guard(config)) as http:
        while True:
            try:
                return _download_once(http, url, config)
            except ImageError as error:
                if not error.retryable or retries >= 2:
                    raise
                sleep(backoff_delay(retries, None))
                retries += 1


def _download_once(http: httpx.Client, url: str, config: BackendConfig) -> ImageResult:
    try:
        with http.stream("GET", url, headers={"Accept": "image/*"}, timeout=timeout(config, 60.0)) as response:
            if response.status_code in (401, 403, 404, 410):
                raise ImageError("result_expired", status=response.status_code,
                                 detail=f"download answered HTTP {response.status_code}")  # fmt: skip
            if response.status_code != 200:
                raise ImageError("result_expired", status=response.status_code, retryable=response.status_code >= 500,
                                 detail=f"download answered HTTP {response.status_code}")  # fmt: skip
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > config.max_bytes:
                    raise ImageError("no_image", detail=f"image larger than {config.max_bytes} bytes")
    except UnsafeURL as exc:
        host = urlsplit(url).hostname
        raise ImageError("refused_url", detail=f"refused at connect: {exc}",
                         message=f"图片所在的主机 {host} 指向本机或内网地址，已拒绝下载。如确为可信的本地服务，"
                                 "管理员可在 IMAGE_DOWNLOAD_ALLOWED_HOSTS 设置中写明该主机（host 或 host:port）。") from None
    except httpx.HTTPError as exc:
        raise ImageError("result_expired", retryable=True, detail=f"download failed: {type(exc).__name__}") from None
    return decode_image(bytes(body), max_bytes=config.max_bytes)


def images_from_message(message: dict[str, Any]) -> list[str]:
    """Image URLs (data: or http) in a chat completion message, wherever relays put them (PROVIDERS §4.1):
    `images[]` (OpenRouter), a content array of image_url or image parts, or Markdown in the text."""
    found: list[str] = []
    for item in message.get("images") or []:
        url = _image_url(item)
        if url:
            found.append(url)
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image" and isinstance(part.get("image"), dict):
                b64 = part["image"].get("base64") or part["image"].get("data")
                if isinstance(b64, str):
                    found.append("data:image/png;base64," + b64)
            elif url := _image_url(part):
                found.append(url)
            elif isinstance(part.get("text"), str):
                found += _MARKDOWN_IMAGE.findall(part["text"])
    elif isinstance(content, str):
        found += _MARKDOWN_IMAGE.findall(content)
    return found


def _image_url(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    image_url = item.get("image_url")
    if isinstance(image_url, dict):
        image_url = image_url.get("url")
    return image_url if isinstance(image_url, str) and image_url else None


ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "4:5", "5:4", "21:9")


def aspect_ratio(size: str) -> str:
    """The listed ratio closest to a "W*H" size (nano-banana and OpenRouter take ratios, not sizes)."""
    try:
        width, height = (int(x) for x in re.split(r"[*x×]", size))
    except ValueError:
        return "1:1"
    target = width / height
    return min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - target))


def wait_for_task(
    backend: Any, task_id: str, *, interval: float, max_interval: float, deadline: float, first_wait: float = 0.0,
    sleep: Sleep = time.sleep, clock: Callable[[], float] = time.time, on_state: Callable[[Any], Any] | None = None,
) -> TaskState:
    """Poll until the task succeeds, with a growing interval. Poll errors that are transient are
    retried on the same task (polling is idempotent; a task is never created again here). Past
    `deadline` (a `clock()` value) a `poll_timeout` error keeps the task id so the job can resume.
    `on_state` sees every state polled (the worker records progress from it)."""
    if first_wait:
        sleep(first_wait)
    while True:
        try:
            state = backend.poll(task_id)
            if on_state is not None:
                on_state(state)
            if state.done:
                return state
        except ProviderError as error:
            if not error.retryable:
                raise
            logger.warning("poll of task %s failed (%s); polling on", task_id, error)
        if clock() + interval > deadline:
            raise ImageError("poll_timeout", task_id=task_id, detail=f"task {task_id} still running at the deadline")
        sleep(interval)
        interval = min(interval * 1.5, max_interval)
