"""OpenRouter image output through chat/completions with `modalities` (docs/provider-reference.md §3.5).

Non-streamed answers carry `message.images[].image_url.url` as a data URL; streamed ones carry the
same items in `delta.images`, one SSE line of several MB, which chat.providers.sse reads on bytes.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import httpx

from chat.images.backends import (
    BackendConfig,
    ImageError,
    ImageRequest,
    ImageResult,
    Sleep,
    aspect_ratio,
    bearer,
    download,
    images_from_message,
    request_json,
    timeout,
)  # fmt: skip
from chat.images.openai_images import with_negative
from chat.providers.errors import ProviderError, error_from_payload, error_from_response
from chat.providers.sse import SSEDecoder

# Models that answer with images only; the others (Gemini, GPT-5-image) answer with text and images.
IMAGE_ONLY_PREFIXES = ("black-forest-labs/", "sourceful/")


class OpenRouterBackend:
    is_async = False

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def body(self, request: ImageRequest) -> dict[str, Any]:
        modalities = ["image"] if self.config.model.startswith(IMAGE_ONLY_PREFIXES) else ["image", "text"]
        return {
            "model": self.config.model,
            "messages": [{"role": "user", "content": with_negative(request)}],
            "modalities": modalities,
            "image_config": {"aspect_ratio": aspect_ratio(request.size)},
            "stream": self.config.stream,
        }

    def headers(self) -> dict[str, str]:
        headers = bearer(self.config)
        if self.config.site_url:
            headers["HTTP-Referer"] = self.config.site_url
        headers["X-Title"] = urllib.parse.quote("古月今话")
        return headers

    def generate(self, request: ImageRequest) -> ImageResult:
        if self.config.stream:
            message = self._streamed(request)
        else:
            payload, _ = request_json(
                self.http, "POST", self.config.base_url + "/chat/completions", headers=self.headers(),
                body=self.body(request), idempotent=False, http_timeout=timeout(self.config), sleep=self.sleep,
                secret=self.config.api_key,
            )  # fmt: skip
            choices = payload.get("choices") or [{}]
            message = choices[0].get("message") or {} if isinstance(choices[0], dict) else {}
        urls = images_from_message(message)
        if not urls:
            raise ImageError("no_image", detail="the answer carried no image")
        return download(urls[0], self.config, public_ok=True, sleep=self.sleep)

    def _streamed(self, request: ImageRequest) -> dict[str, Any]:
        """Collect a streamed answer into one message: text pieces and image items."""
        text: list[str] = []
        images: list[Any] = []
        decoder, finished = SSEDecoder(), False
        content = json.dumps(self.body(request), ensure_ascii=False).encode()
        try:
            with self.http.stream("POST", self.config.base_url + "/chat/completions", headers=self.headers(),
                                  content=content, timeout=timeout(self.config)) as response:  # fmt: skip
                if response.status_code >= 400:
                    raise error_from_response(response.status_code, response.headers, response.read())
                for chunk in response.iter_bytes():
                    for event in decoder.feed(chunk):
                        finished |= self._event(event.data, text, images)
                for event in decoder.close():
                    finished |= self._event(event.data, text, images)
        except httpx.HTTPError as exc:
            if not images:
                raise ProviderError("interrupted", detail=f"image stream broke: {type(exc).__name__}") from None
        if not finished and not images:
            raise ProviderError("interrupted", detail="image stream ended without [DONE]")
        return {"content": "".join(text), "images": images}

    @staticmethod
    def _event(data: str, text: list[str], images: list[Any]) -> bool:
        if data.strip().startswith("[DONE]"):
            return True
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        if not isinstance(payload, dict):
            return False
        if payload.get("error"):
            raise error_from_payload(payload)
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {} if isinstance(choice, dict) else {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            images += [item for item in delta.get("images") or [] if isinstance(item, dict)]
        return False
