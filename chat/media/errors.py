"""MediaError: a ProviderError with a plain `kind` and a `reason` saying what went wrong with media."""

from __future__ import annotations

from chat.media.kinds import MediaTaskState
from chat.providers.errors import ProviderError, error_from_payload

REASONS = {
    "not_media": "服务返回的文件不是{what}，已丢弃，请重新生成。",
    "too_large": "生成的文件超过 {limit} MB 的上限，已停止下载。",
    "refused_url": "文件地址不在允许的范围内，已拒绝下载。",
    "task_failed": "生成失败：{why}",
    "canceled": "生成任务已被取消。",
    "task_timeout": "生成任务在服务端超时，请重新生成。",
    "no_result": "生成任务已完成，但没有返回可下载的文件，请重新生成。",
    "result_expired": "文件链接已失效，未能取回，请重新生成。",
    "no_mask": "该模型不支持蒙版，请去掉蒙版后再试。",
}


class MediaError(ProviderError):
    """`kind` is one of ProviderError's kinds (auth, billing, rate_limit, moderation, timeout, upstream,
    bad_request …); `reason` is the media-specific cause; `state` is the FAILED task state, if any."""

    def __init__(self, kind: str, reason: str, *, message: str | None = None, detail: str = "",
                 task_id: str = "", retryable: bool = False, code: str | None = None, **fmt: object) -> None:
        text = message or REASONS[reason].format(**fmt)
        super().__init__(kind, message=text, detail=detail, code=code, retryable=retryable)
        self.reason = reason
        self.task_id = task_id
        self.state: MediaTaskState | None = None


def task_failed(task_id: str, why: str, *, code: str = "") -> ProviderError:
    """A task the provider reports failed. Never retried: the same prompt and account fail again.
    Codes and texts that say moderation or billing keep that kind, so the page can say so."""
    why = (why or "").strip() or "服务未说明原因"
    probe = error_from_payload({"error": {"code": code or None, "message": why}})
    kind = probe.kind if probe.kind in ("moderation", "billing", "auth") else "upstream"
    error = MediaError(kind, "task_failed", why=why[:200], task_id=task_id, code=code or None, detail=why)
    error.state = MediaTaskState("FAILED", message=error.message)
    return error

