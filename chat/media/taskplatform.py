"""The task platform (`openapi.ai-studio.me`): one task API in front of several generators.

- text-to-video: `POST {base}/api/{platform}/videos` `{"action": "text2video", "prompt", "model"?,
  "duration", "aspect_ratio"}`; image-to-video: the image first goes to `POST {base}/api/upload/file`
  (multipart `file`, answers `{"success": true, "data": [{"url"}]}`), then `{"action": "image2video",
  "prompt", "image_url", "duration"}`;
- music: `POST {base}/api/suno/music` `{"prompt", "lyrics", "style"}`;
- each answers `{"task_id"}`; the query is `POST {base}/api/{platform}/tasks` `{"task_id"}`, with
  `status` pending, queued, processing, succeeded (`video.url`, `music[].url`, `images[].url`),
  failed (`error.code`, `error.message`), cancelled or timeout. No progress field is documented.
Errors: `{"success": false, "error": {"code": "INSUFFICIENT_BALANCE", "message"}}` with the HTTP status.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from chat.images.backends import BackendConfig, Sleep, request_json, sniff_mime, timeout
from chat.media.common import auth, poll_json, post_multipart
from chat.media.errors import MediaError, task_failed
from chat.media.files import download_media, fetch_image
from chat.media.kinds import MediaResult, MediaTaskState, MusicRequest, VideoRequest
from chat.providers.errors import ProviderError

PENDING = ("pending", "queued")
VIDEO_PLATFORMS = ("sora", "dreamina", "kling", "hailuo", "higgsfield", "heygen", "krea")
EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def music_prompt(request: MusicRequest) -> str:
    """`prompt` is required besides the lyrics: say what the song is, in the style asked for."""
    style = "、".join(request.style_tags) or "古风"
    return f"{style}歌曲《{request.title}》" if request.title else f"{style}歌曲"


class TaskPlatformBackend:
    """`platform` picks the generator ("kling", "sora" … for video, "suno" for music); the task query
    goes to the same platform, so one back-end object serves one platform."""

    is_async = True

    def __init__(self, config: BackendConfig, http: httpx.Client, *, platform: str = "kling",
                 sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.platform, self.sleep = config, http, platform, sleep

    def headers(self) -> dict[str, str]:
        return {**auth(self.config.api_key), "Content-Type": "application/json"}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload, _ = request_json(
            self.http, "POST", self.config.base_url + path, headers=self.headers(), body=body, idempotent=False,
            http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        if payload.get("success") is False:
            raise ProviderError("upstream", retryable=False, detail=str(payload)[:300])
        return payload

    def upload(self, image: bytes) -> str:
        mime = sniff_mime(image) or "image/png"
        payload = post_multipart(
            self.http, self.config.base_url + "/api/upload/file", headers=auth(self.config.api_key), data={},
            files=[("file", (f"first-frame.{EXT.get(mime, 'png')}", image, mime))],
            http_timeout=timeout(self.config, 60.0), secret=self.config.api_key, sleep=self.sleep,
        )  # fmt: skip
        items = payload.get("data")
        url = items[0].get("url") if isinstance(items, list) and items and isinstance(items[0], dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderError("upstream", retryable=False, detail="upload answered without data[0].url")
        return url

    def body(self, request: VideoRequest | MusicRequest) -> dict[str, Any]:
        if isinstance(request, MusicRequest):
            return {"prompt": music_prompt(request), "lyrics": request.lyrics, "style": ", ".join(request.style_tags)}
        if request.image is not None:
            return {"action": "image2video", "prompt": request.prompt, "image_url": self.upload(request.image),
                    "duration": request.duration}  # fmt: skip
        body: dict[str, Any] = {"action": "text2video", "prompt": request.prompt, "duration": request.duration,
                                "aspect_ratio": request.aspect_ratio}  # fmt: skip
        if self.config.model:
            body["model"] = self.config.model
        return body

    def submit(self, request: VideoRequest | MusicRequest) -> str:
        kind = "music" if isinstance(request, MusicRequest) else "videos"
        payload = self._post(f"/api/{self.platform}/{kind}", self.body(request))
        task_id = payload.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("upstream", retryable=False, detail="create answered without a task_id")
        return task_id

    def poll(self, task_id: str) -> MediaTaskState:
        payload = poll_json(self.http, "POST", f"{self.config.base_url}/api/{self.platform}/tasks",
                            headers=self.headers(), body={"task_id": task_id},
                            http_timeout=timeout(self.config, 30.0), secret=self.config.api_key)  # fmt: skip
        status = payload.get("status")
        if status in PENDING:
            return MediaTaskState("PENDING")
        if status == "processing":
            return MediaTaskState("RUNNING")
        if status == "succeeded":
            return _succeeded(payload, task_id)
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        if status == "failed":
            raise task_failed(task_id, str(error.get("message") or ""), code=str(error.get("code") or ""))
        if status == "cancelled":
            raise MediaError("upstream", "canceled", task_id=task_id, detail="task was cancelled")
        if status == "timeout":
            raise MediaError("timeout", "task_timeout", task_id=task_id, detail="task timed out upstream")
        if isinstance(payload.get("error"), dict):  # TASK_NOT_FOUND and the like, answered with 200
            raise ProviderError("bad_request", retryable=False, code=str(error.get("code") or ""),
                                detail=str(error.get("message") or ""))  # fmt: skip
        raise ProviderError("upstream", retryable=True, detail=f"unexpected status {status!r}")

    def fetch(self, state: MediaTaskState) -> MediaResult:
        kind = state.extra["kind"]
        if kind == "image":
            result = fetch_image(state.urls[0], self.config, sleep=self.sleep)
        else:
            result = download_media(state.urls[0], self.config, kind, sleep=self.sleep)
        result.extra = dict(state.extra)
        return result


def _succeeded(payload: dict[str, Any], task_id: str) -> MediaTaskState:
    video = payload.get("video") if isinstance(payload.get("video"), dict) else None
    if video and isinstance(video.get("url"), str) and video["url"]:
        return MediaTaskState("SUCCEEDED", progress=100, urls=[video["url"]],
                              extra={"kind": "video", "duration": video.get("duration")})
    for field, kind in (("music", "audio"), ("images", "image")):
        items = [i for i in payload.get(field) or () if isinstance(i, dict) and isinstance(i.get("url"), str)]
        if items:
            extra: dict[str, Any] = {"kind": kind}
            if kind == "audio":
                extra["tracks"] = [{"title": i.get("title", ""), "duration": i.get("duration")} for i in items]
            return MediaTaskState("SUCCEEDED", progress=100, urls=[i["url"] for i in items], extra=extra)
    raise MediaError("upstream", "no_result", task_id=task_id, detail="succeeded without video, music or images")
