"""Image edits with a source image and reference images, synchronous like chat/images/openai_images.py.

- `EditsBackend`: `POST {base}/images/edits` as multipart (the OpenAI images format relays serve):
  `image` (the source, then each reference image as another `image` part), optional `mask`,
  `prompt`, `model`, `n=1`. For nano-banana models also `response_format=b64_json` and
  `aspect_ratio`, as the nano-banana relay document lists them.
- `GeminiImageBackend`: `POST {root}/v1beta/models/{model}:generateContent` with the images as
  `inlineData` parts before the text, `responseModalities: ["IMAGE"]`, `imageConfig.aspectRatio`.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx

from chat.images.backends import BackendConfig, ImageError, Sleep, decode_b64, request_json, timeout
from chat.media.common import auth, post_multipart
from chat.media.errors import MediaError
from chat.media.files import fetch_image
from chat.media.kinds import EditRequest, MediaResult

EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class EditsBackend:
    is_async = False

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def form(self, request: EditRequest) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
        data = {"prompt": request.prompt, "model": self.config.model, "n": "1"}
        if self.config.model.startswith("nano-banana"):
            data["response_format"] = "b64_json"  # the inline image needs no second download
            if request.aspect_ratio:
                data["aspect_ratio"] = request.aspect_ratio
        files = [("image", (f"image.{EXT.get(request.mime, 'png')}", request.image, request.mime))]
        files += [("image", (f"reference-{i}.png", image, "image/png"))
                  for i, image in enumerate(request.reference_images, 1)]
        if request.mask is not None:
            files.append(("mask", ("mask.png", request.mask, "image/png")))
        return data, files

    def generate(self, request: EditRequest) -> MediaResult:
        data, files = self.form(request)
        payload = post_multipart(
            self.http, self.config.base_url + "/images/edits", headers=auth(self.config.api_key), data=data,
            files=files, http_timeout=timeout(self.config), secret=self.config.api_key, sleep=self.sleep,
        )  # fmt: skip
        items = payload.get("data")
        item = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            image = decode_b64(item["b64_json"], max_bytes=self.config.max_bytes)
            result = MediaResult(data=image.data, mime=image.mime)
        elif isinstance(item.get("url"), str) and item["url"]:
            result = fetch_image(item["url"], self.config, sleep=self.sleep)
        else:
            # A 200 with an empty data list is a failure that some relays do not bill.
            raise ImageError("no_image", detail="images/edits answered without an image")
        result.extra = {"revised_prompt": str(item.get("revised_prompt") or ""), "usage": payload.get("usage") or {}}
        return result


class GeminiImageBackend:
    """`config.base_url` is the relay's root (https://api.whatai.cc), not its /v1 base."""

    is_async = False

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def body(self, request: EditRequest) -> dict[str, Any]:
        if request.mask is not None:
            raise MediaError("bad_request", "no_mask", detail="generateContent takes no mask")
        images = [(request.image, request.mime)] + [(image, "image/png") for image in request.reference_images]
        parts: list[dict[str, Any]] = [
            {"inlineData": {"data": base64.b64encode(data).decode(), "mimeType": mime}} for data, mime in images
        ]
        parts.append({"text": request.prompt})
        config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
        if request.aspect_ratio:
            config["imageConfig"] = {"aspectRatio": request.aspect_ratio}
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def generate(self, request: EditRequest) -> MediaResult:
        url = f"{self.config.base_url}/v1beta/models/{self.config.model}:generateContent"
        payload, _ = request_json(
            self.http, "POST", url, headers={**auth(self.config.api_key), "Content-Type": "application/json"},
            body=self.body(request), idempotent=False, http_timeout=timeout(self.config), sleep=self.sleep,
            secret=self.config.api_key,
        )  # fmt: skip
        for candidate in payload.get("candidates") or ():
            content = candidate.get("content") if isinstance(candidate, dict) else None
            for part in (content or {}).get("parts") or ():
                inline = part.get("inlineData") if isinstance(part, dict) else None
                if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                    image = decode_b64(inline["data"], max_bytes=self.config.max_bytes)
                    return MediaResult(data=image.data, mime=image.mime, extra={"usage": payload.get("usageMetadata") or {}})
        finish = next((c.get("finishReason") for c in payload.get("candidates") or () if isinstance(c, dict)), "")
        if finish in ("SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY"):
            raise MediaError("moderation", "task_failed", why="内容未通过安全审核，请换个说法再试。", detail=finish)
        raise ImageError("no_image", detail=f"generateContent answered without an image (finishReason {finish!r})")
