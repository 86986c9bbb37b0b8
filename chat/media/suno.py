"""Suno music through a relay's Suno-API proxy (distinct from the task platform's /api/suno/music).

Create: `POST {root}/suno/submit/music` `{"prompt": <lyrics>, "tags": "古风,古琴", "title", "mv"}`
(custom mode: lyrics, title and tags given), answering `{"code": "success", "message": "", "data": <task id>}`.
Query: `GET {root}/suno/fetch/{task_id}`, answering `{"code": "success", "data": {"status": IN_PROGRESS |
SUCCESS | FAIL, "progress": "0%", "fail_reason", "data": [clip {id, title, status, audio_url, …}]}}`.
A SUCCESS task carries the clips; the first clip's `audio_url` is downloaded (Suno makes two).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from chat.images.backends import BackendConfig, Sleep, request_json, timeout
from chat.media.common import auth, progress
from chat.media.errors import MediaError, task_failed
from chat.media.files import download_media
from chat.media.kinds import MediaResult, MediaTaskState, MusicRequest
from chat.providers.errors import ProviderError, error_from_payload

# Suno-API's proxy shares new-api's task vocabulary; only IN_PROGRESS, SUCCESS and FAIL are listed for
# Suno, the waiting ones come from the same relay's Midjourney section.
WAITING = ("", "NOT_START", "SUBMITTED", "QUEUED")


class SunoBackend:
    is_async = True

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def _call(self, method: str, path: str, body: dict | None, *, idempotent: bool) -> Any:
        payload, _ = request_json(
            self.http, method, self.config.base_url + path, body=body, idempotent=idempotent,
            headers={**auth(self.config.api_key), "Content-Type": "application/json"},
            http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        if payload.get("code") != "success":
            # `{"code": "<reason>", "message": "…"}` on a 200: classify as any provider error body.
            error = error_from_payload({"error": {"code": payload.get("code"), "message": payload.get("message")}})
            error.retryable = False
            raise error
        return payload.get("data")

    def body(self, request: MusicRequest) -> dict[str, Any]:
        body = {"prompt": request.lyrics, "tags": ",".join(request.style_tags), "title": request.title}
        if self.config.model:
            body["mv"] = self.config.model
        return body

    def submit(self, request: MusicRequest) -> str:
        task_id = self._call("POST", "/suno/submit/music", self.body(request), idempotent=False)
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("upstream", retryable=False, detail="submit answered without a task id in data")
        return task_id

    def poll(self, task_id: str) -> MediaTaskState:
        task = self._call("GET", f"/suno/fetch/{task_id}", None, idempotent=True)
        task = task if isinstance(task, dict) else {}
        status = task.get("status") or ""
        if status in WAITING:
            return MediaTaskState("PENDING", progress=progress(task.get("progress")))
        if status == "IN_PROGRESS":
            return MediaTaskState("RUNNING", progress=progress(task.get("progress")))
        if status == "FAIL":
            raise task_failed(task_id, str(task.get("fail_reason") or ""))
        if status == "SUCCESS":
            clips = [c for c in task.get("data") or () if isinstance(c, dict)]
            urls = [c["audio_url"] for c in clips if isinstance(c.get("audio_url"), str) and c["audio_url"]]
            if not urls:
                raise MediaError("upstream", "no_result", task_id=task_id, detail="SUCCESS without an audio_url")
            tracks = [{"id": c.get("id"), "title": c.get("title", ""), "image_url": c.get("image_url", "")}
                      for c in clips]  # fmt: skip
            return MediaTaskState("SUCCEEDED", progress=100, urls=urls, extra={"tracks": tracks})
        raise ProviderError("upstream", retryable=True, detail=f"unexpected status {status!r}")

    def fetch(self, state: MediaTaskState) -> MediaResult:
        result = download_media(state.urls[0], self.config, "audio", sleep=self.sleep)
        result.extra = dict(state.extra)
        return result
