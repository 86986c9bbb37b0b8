"""Seedance (即梦) video tasks through a relay, in Volcengine Ark's own format.

Create: `POST {root}/seedance/v3/contents/generations/tasks` with `model` and `content`: a text part
(the prompt, followed by `--ratio`, `--duration` and `--resolution` commands) and, for
image-to-video, an `image_url` part; it answers `{"id": "cgt-…"}`. Query:
`GET {root}/seedance/v3/contents/generations/tasks/{id}`; a finished task has
`status: "succeeded"` and `content.video_url` (a signed TOS link, valid 24 h) and `usage.completion_tokens`.
The relay document shows only "succeeded"; queued, running, failed and cancelled are Ark's other
statuses. No progress field is documented, so `progress` stays None.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx

from chat.images.backends import BackendConfig, Sleep, request_json, sniff_mime, timeout
from chat.media.common import auth, poll_json
from chat.media.errors import MediaError, task_failed
from chat.media.files import download_media
from chat.media.kinds import MediaResult, MediaTaskState, VideoRequest
from chat.providers.errors import ProviderError

TASKS_PATH = "/seedance/v3/contents/generations/tasks"


def text_commands(request: VideoRequest) -> str:
    return f"{request.prompt} --ratio {request.aspect_ratio} --duration {request.duration} --resolution {request.resolution}"


class SeedanceBackend:
    is_async = True

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def headers(self) -> dict[str, str]:
        return {**auth(self.config.api_key), "Content-Type": "application/json"}

    def body(self, request: VideoRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text_commands(request)}]
        if request.image is not None:
            # Ark takes the first frame as a URL or as a base64 data URL; the data URL needs no upload.
            mime = sniff_mime(request.image) or "image/png"
            data_url = f"data:{mime};base64," + base64.b64encode(request.image).decode()
            content.append({"type": "image_url", "image_url": {"url": data_url}})
        return {"model": self.config.model, "content": content}

    def submit(self, request: VideoRequest) -> str:
        payload, _ = request_json(
            self.http, "POST", self.config.base_url + TASKS_PATH, headers=self.headers(), body=self.body(request),
            idempotent=False, http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        task_id = payload.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("upstream", retryable=False, detail="create answered without an id")
        return task_id

    def poll(self, task_id: str) -> MediaTaskState:
        payload = poll_json(self.http, "GET", f"{self.config.base_url}{TASKS_PATH}/{task_id}", headers=self.headers(),
                            http_timeout=timeout(self.config, 30.0), secret=self.config.api_key)  # fmt: skip
        status = payload.get("status")
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        if status == "queued":
            return MediaTaskState("PENDING")
        if status == "running":
            return MediaTaskState("RUNNING")
        if status == "succeeded":
            content = payload.get("content") if isinstance(payload.get("content"), dict) else {}
            url = content.get("video_url")
            if not isinstance(url, str) or not url:
                raise MediaError("upstream", "no_result", task_id=task_id, detail="succeeded without content.video_url")
            return MediaTaskState("SUCCEEDED", progress=100, urls=[url],
                                  extra={"tokens": usage.get("completion_tokens"), "model": payload.get("model")})
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        if status == "failed":
            raise task_failed(task_id, str(error.get("message") or ""), code=str(error.get("code") or ""))
        if status == "cancelled":
            raise MediaError("upstream", "canceled", task_id=task_id, detail="task was cancelled")
        raise ProviderError("upstream", retryable=True, detail=f"unexpected status {status!r}")

    def fetch(self, state: MediaTaskState) -> MediaResult:
        result = download_media(state.urls[0], self.config, "video", sleep=self.sleep)
        result.extra = dict(state.extra)
        return result
