"""OpenAI images format, as relays serve it (`POST {base}/images/generations`, docs/provider-reference.md §4.1).

The answer may carry `b64_json`, a `url` (hosted, or a data URL), or, from relays that route the
model through chat/completions, a chat completion with the image in the message.
"""

from __future__ import annotations

import time
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
    decode_b64,
    download,
    images_from_message,
    request_json,
    timeout,
)  # fmt: skip


def with_negative(request: ImageRequest) -> str:
    """These APIs have no negative prompt field: say it in the prompt."""
    if not request.negative_prompt:
        return request.prompt
    return f"{request.prompt}\n画面中不要出现：{request.negative_prompt}"


class OpenAIImagesBackend:
    is_async = False

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def body(self, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "prompt": with_negative(request), "n": 1,
                                "response_format": "b64_json"}  # fmt: skip
        if self.config.model.startswith("nano-banana"):
            body["aspect_ratio"] = aspect_ratio(request.size)  # nano-banana takes a ratio, not a size
        else:
            body["size"] = request.size.replace("*", "x")  # OpenAI writes 1024x1024, DashScope 1024*1024
        return body

    def generate(self, request: ImageRequest) -> ImageResult:
        payload, _ = request_json(
            self.http, "POST", self.config.base_url + "/images/generations", headers=bearer(self.config),
            body=self.body(request), idempotent=False, http_timeout=timeout(self.config), sleep=self.sleep,
            secret=self.config.api_key,
        )  # fmt: skip
        return self.result(payload)

    def result(self, payload: dict[str, Any]) -> ImageResult:
        items = payload.get("data")
        if isinstance(items, list) and items:
            item = items[0] if isinstance(items[0], dict) else {}
            result = self._item(item)
            result.revised_prompt = str(item.get("revised_prompt") or "")
            return result
        choices = payload.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            urls = images_from_message(choices[0].get("message") or {})
            if urls:
                return download(urls[0], self.config, public_ok=True, sleep=self.sleep)
        # A 200 with an empty data list is a failure that some relays do not bill.
        raise ImageError("no_image", detail="images/generations answered without an image")

    def _item(self, item: dict[str, Any]) -> ImageResult:
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            return decode_b64(item["b64_json"], max_bytes=self.config.max_bytes)
        if isinstance(item.get("url"), str) and item["url"]:
            return download(item["url"], self.config, public_ok=True, sleep=self.sleep)
        raise ImageError("no_image", detail="data[0] has neither b64_json nor url")
