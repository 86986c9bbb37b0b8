"""DashScope wan2.x text-to-image as asynchronous tasks (docs/provider-reference.md §2.4).

Create with `X-DashScope-Async: enable` (without it the call fails) and always `n: 1` (the default
is 4, each billed); poll `GET /tasks/{id}`; download the result URL at once, without the key.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from chat.images.backends import (
    BackendConfig,
    ImageError,
    ImageRequest,
    ImageResult,
    Sleep,
    TaskState,
    bearer,
    download,
    request_json,
    timeout,
)  # fmt: skip
from chat.providers.errors import ProviderError, error_from_response

CREATE_PATH = "/services/aigc/text2image/image-synthesis"
PROMPT_LIMIT = 500  # wan2.2 silently truncates longer prompts and negative prompts


def native_base(compatible_base: str) -> str:
    """…/compatible-mode/v1 (chat) → …/api/v1 (image tasks); the host, and so the region, stays."""
    base = compatible_base.rstrip("/")
    return base[: -len("/compatible-mode/v1")] + "/api/v1" if base.endswith("/compatible-mode/v1") else base


class DashScopeBackend:
    is_async = True

    def __init__(self, config: BackendConfig, http: httpx.Client, *, sleep: Sleep = time.sleep) -> None:
        self.config, self.http, self.sleep = config, http, sleep

    def submit(self, request: ImageRequest) -> str:
        body: dict[str, Any] = {
            "model": self.config.model,
            "input": {"prompt": request.prompt[:PROMPT_LIMIT]},
            # prompt_extend off: the era hints are our prompt extension, and a rewrite could undo them.
            "parameters": {"size": request.size, "n": 1, "prompt_extend": False, "watermark": False},
        }
        if request.negative_prompt:
            body["input"]["negative_prompt"] = request.negative_prompt[:PROMPT_LIMIT]
        payload, _ = request_json(
            self.http, "POST", self.config.base_url + CREATE_PATH, body=body,
            headers={**bearer(self.config), "X-DashScope-Async": "enable"},
            idempotent=False, http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        output = payload.get("output") if isinstance(payload.get("output"), dict) else {}
        if output.get("task_status") == "FAILED" or (payload.get("code") and not output.get("task_id")):
            raise _failed(output or payload, "")
        task_id = output.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("upstream", retryable=False, detail="create answered without a task_id")
        return task_id

    def poll(self, task_id: str) -> TaskState:
        payload, _ = request_json(
            self.http, "GET", f"{self.config.base_url}/tasks/{task_id}", headers=bearer(self.config),
            idempotent=True, http_timeout=timeout(self.config, 30.0), sleep=self.sleep, secret=self.config.api_key,
        )  # fmt: skip
        output = payload.get("output") if isinstance(payload.get("output"), dict) else {}
        status = output.get("task_status")
        if status in ("PENDING", "RUNNING"):
            return TaskState(status)
        if status == "SUCCEEDED":
            return _succeeded(output, task_id)
        if status == "FAILED":
            raise _failed(output, task_id)
        if status == "CANCELED":
            raise ImageError("canceled", task_id=task_id, detail="task was canceled")
        if status == "UNKNOWN":
            raise ImageError("expired", task_id=task_id, detail="task unknown or older than 24 h")
        raise ImageError("upstream", task_id=task_id, retryable=True, detail=f"unexpected task_status {status!r}")

    def fetch(self, state: TaskState) -> ImageResult:
        # OSS links only: a result URL anywhere else is refused, whatever it resolves to.
        result = download(state.urls[0], self.config, public_ok=False, sleep=self.sleep)
        result.revised_prompt, result.warning = state.actual_prompt, state.warning
        return result


def _succeeded(output: dict[str, Any], task_id: str) -> TaskState:
    results = [r for r in output.get("results") or [] if isinstance(r, dict)]
    urls = [r["url"] for r in results if isinstance(r.get("url"), str) and r["url"]]
    # A partial failure still says SUCCEEDED; the failed items carry code/message and no url.
    failed = [f"{r.get('code', '')}: {r.get('message', '')}"[:120] for r in results if not r.get("url")]
    if not urls:
        raise ImageError("no_image", task_id=task_id, detail="SUCCEEDED without an image: " + "; ".join(failed))
    prompt = next((r["actual_prompt"] for r in results if isinstance(r.get("actual_prompt"), str)), "")
    warning = f"{len(failed)} 张图片生成失败（{failed[0]}）" if failed else ""
    return TaskState("SUCCEEDED", urls=urls, actual_prompt=prompt, warning=warning[:300])


def _failed(output: dict[str, Any], task_id: str) -> ProviderError:
    # A failed task is never re-submitted: moderation, parameters and billing would fail again.
    code = str(output.get("code") or "")
    if code.startswith(("InternalError", "SystemError")):
        error = ProviderError("upstream", code=code, detail=str(output.get("message") or ""), retryable=False)
    else:
        error = error_from_response(400, {}, json.dumps(output, ensure_ascii=False).encode())
        error.retryable = False
    error.task_id = task_id
    return error
