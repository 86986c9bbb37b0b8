"""Midjourney through a relay's midjourney-proxy (`/mj/…`, novicezk's API as new-api serves it).

- imagine: `POST {root}/mj/submit/imagine` `{"botType": "MID_JOURNEY", "prompt", "base64Array": []}`;
- action (U1-U4 upscale, V1-V4 variation …): `POST {root}/mj/submit/action`
  `{"customId": <a button's customId>, "taskId", "chooseSameChannel": true}`;
- both answer `{"code": 1, "description": "提交成功", "result": <task id>}`; code 22 means queued
  (still a task), 21 bad parameters, 23 system error, 24 account unavailable, 25 balance too low;
- fetch: `GET {root}/mj/task/{id}/fetch` → `status` NOT_START, SUBMITTED, MODAL, IN_PROGRESS, FAILURE,
  SUCCESS or CANCEL, `progress` ("45%"), `imageUrl`, `failReason`, `buttons[]` {customId, emoji, label}.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from chat.images.backends import BackendConfig, Sleep, request_json, timeout
from chat.media.common import auth, progress
from chat.media.errors import MediaError, task_failed
from chat.media.files import fetch_image
from chat.media.kinds import MediaResult, MediaTaskState, MidjourneyAction, MidjourneyRequest
from chat.providers.errors import ProviderError

ACCEPTED = (1, 22)
SUBMIT_ERRORS = {
    21: ("bad_request", "Midjourney 请求参数有误，请调整描述后再试。"),
    23: ("upstream", None),
    24: ("unavailable", "Midjourney 账号暂时不可用，请稍后再试。"),
    25: ("billing", None),
}
# The button actions the page offers, by the name in their customId: "UPSCALE::1" → "::upsample::1::".
ACTIONS = {"UPSCALE": "upsample", "VARIATION": "variation"}


def action_for(task_id: str, buttons: list[dict[str, Any]], action: str) -> MidjourneyAction:
    """The action for "UPSCALE::1" or "VARIATION::2" among a finished task's buttons."""
    name, _, index = action.partition("::")
    needle = f"::{ACTIONS.get(name, name.lower())}::{index}::"
    for button in buttons:
        custom_id = button.get("customId")
        if isinstance(custom_id, str) and needle in custom_id:
            return MidjourneyAction(task_id=task_id, custom_id=custom_id)
    raise MediaError("bad_request", "task_failed", why="这张图片没有该按钮，请刷新后再试。",
                     detail=f"no button for {action}")  # fmt: skip


class MidjourneyBackend:
    is_async = True

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def headers(self) -> dict[str, str]:
        return {**auth(self.config.api_key), "Accept": "application/json", "Content-Type": "application/json"}

    def body(self, request: MidjourneyRequest | MidjourneyAction) -> tuple[str, dict[str, Any]]:
        if isinstance(request, MidjourneyAction):
            return "/mj/submit/action", {"customId": request.custom_id, "taskId": request.task_id,
                                         "chooseSameChannel": True}  # fmt: skip
        bot = "NIJI_JOURNEY" if self.config.model.lower().startswith("niji") else "MID_JOURNEY"
        return "/mj/submit/imagine", {"botType": bot, "prompt": request.prompt, "base64Array": []}

    def submit(self, request: MidjourneyRequest | MidjourneyAction) -> str:
        path, body = self.body(request)
        payload, _ = request_json(
            self.http, "POST", self.config.base_url + path, headers=self.headers(), body=body, idempotent=False,
            http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        code, result = payload.get("code"), payload.get("result")
        if code not in ACCEPTED:
            kind, message = SUBMIT_ERRORS.get(code, ("upstream", None))
            raise ProviderError(kind, message=message, code=str(code), retryable=False,
                                detail=str(payload.get("description") or ""))  # fmt: skip
        if isinstance(result, bool) or not isinstance(result, int | str) or not str(result):
            raise ProviderError("upstream", retryable=False, detail="submit answered without a task id in result")
        return str(result)  # the proxy sends a number; task ids are kept as text

    def poll(self, task_id: str) -> MediaTaskState:
        task, _ = request_json(
            self.http, "GET", f"{self.config.base_url}/mj/task/{task_id}/fetch", headers=self.headers(),
            idempotent=True, http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        status = task.get("status")
        percent = progress(task.get("progress"))
        if status in ("NOT_START", "SUBMITTED"):
            return MediaTaskState("PENDING", progress=percent)
        if status in ("IN_PROGRESS", "MODAL"):
            return MediaTaskState("RUNNING", progress=percent)
        if status == "FAILURE":
            raise task_failed(task_id, str(task.get("failReason") or ""))
        if status == "CANCEL":
            raise MediaError("upstream", "canceled", task_id=task_id, detail="task was cancelled")
        if status == "SUCCESS":
            url = task.get("imageUrl")
            if not isinstance(url, str) or not url:
                raise MediaError("upstream", "no_result", task_id=task_id, detail="SUCCESS without imageUrl")
            buttons = [b for b in task.get("buttons") or () if isinstance(b, dict)]
            return MediaTaskState("SUCCEEDED", progress=100, urls=[url], buttons=buttons,
                                  extra={"action": task.get("action"), "prompt_en": task.get("promptEn") or ""})
        raise ProviderError("upstream", retryable=True, detail=f"unexpected status {status!r}")

    def fetch(self, state: MediaTaskState) -> MediaResult:
        result = fetch_image(state.urls[0], self.config, sleep=self.sleep)
        result.extra = {**state.extra, "buttons": state.buttons}
        return result
