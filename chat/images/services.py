"""Image jobs: create (what the tool registry and the page call), look up, retry.

    job = request_image(user, conversation, "画李白月下独酌", source_message=msg)
    job.status  → "queued" (the worker takes it from here), "blocked" or "failed" (no call was made)
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.services import credential_resolve
from chat.images.backends import IMAGE_MESSAGES
from chat.images.checks import check_prompt, compose_prompt
from chat.models import Conversation, ImageJob, Message
from chat.quota import quota_for, refusal_text
from guyue import ratelimit


class ImageRequestRejected(ValueError):
    """Bad input; the message is fit to show the user, the code is for callers."""

    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


def request_image(
    user, conversation: Conversation, prompt: str, source_message: Message | None = None, *, size: str | None = None
) -> ImageJob:
    """Create an image job for the user's own conversation.

    Raises ImageRequestRejected for someone else's conversation or message, an empty or too long
    prompt, or too many requests. A prompt the checks refuse gives a job already `blocked`, and no
    usable key or a spent daily quota a job already `failed`: none ever reaches a provider."""
    conversation = _own_conversation(user, conversation)
    if source_message is not None and not conversation.messages.filter(pk=source_message.pk).exists():
        raise ImageRequestRejected("消息不属于这段对话。", "not_found")
    prompt = _clean(prompt)
    if not ratelimit.hit(ratelimit.cache_key("image", str(user.pk)), limit=settings.IMAGE_LIMIT_PER_HOUR, window=3600):
        raise ImageRequestRejected("作画请求太频繁，请稍后再试。", "rate_limited")
    job = ImageJob(owner=user, conversation=conversation, source_message=source_message, prompt=prompt,
                   size=size or settings.IMAGE_SIZE)  # fmt: skip
    check = check_prompt(prompt, conversation.persona)
    credential = credential_resolve(user)
    quota = quota_for(user)
    if check.blocked:
        _finish(job, ImageJob.Status.BLOCKED, check.category, check.message)
    elif quota.exceeded:
        _finish(job, ImageJob.Status.FAILED, "quota", refusal_text(quota))
    elif credential is None:
        _finish(job, ImageJob.Status.FAILED, "no_key", IMAGE_MESSAGES["no_key"])
    else:
        composed = compose_prompt(prompt, conversation.persona)
        job.actual_prompt, job.negative_prompt = composed.prompt, composed.negative_prompt
        job.credential, job.backend, job.model = credential, credential.kind, credential.effective_image_model()
    job.save()
    return job


arequest_image = database_sync_to_async(request_image)


def _own_conversation(user, conversation: Conversation) -> Conversation:
    try:
        return Conversation.objects.for_user(user).select_related("persona").get(pk=conversation.pk)
    except Conversation.DoesNotExist:
        raise ImageRequestRejected("找不到这段对话。", "not_found") from None


def _clean(prompt: str) -> str:
    prompt = " ".join((prompt or "").split())
    if not prompt:
        raise ImageRequestRejected("请描述想画的画面。", "empty")
    if len(prompt) > settings.IMAGE_PROMPT_MAX_CHARS:
        raise ImageRequestRejected(f"描述太长了（{len(prompt)} 字），请控制在 {settings.IMAGE_PROMPT_MAX_CHARS} 字以内。",
                                   "too_long")  # fmt: skip
    return prompt


def _finish(job: ImageJob, status: str, kind: str, message: str) -> None:
    job.status, job.error_kind, job.error_message, job.finished_at = status, kind, message, timezone.now()


def get_image_job_for_user(user, conversation: Conversation, pk: int) -> ImageJob:
    """The only way views fetch a job: someone else's, or another conversation's, is a 404."""
    return get_object_or_404(ImageJob.objects.for_user(user).filter(conversation=conversation), pk=pk)


def conversation_images(user, conversation: Conversation, *, limit: int | None = None) -> list[ImageJob]:
    jobs = ImageJob.objects.for_user(user).filter(conversation=conversation).order_by("-created_at", "-pk")
    return list(jobs[:limit] if limit else jobs)


def image_job_retry(user, job: ImageJob) -> ImageJob:
    """A timed-out poll resumes the same provider task (no new submission); anything else failed
    starts a new job with the same words."""
    if job.owner_id != user.pk:
        raise Http404
    if job.status != ImageJob.Status.FAILED:
        raise ImageRequestRejected("只能重试失败的任务。")
    if job.error_kind == "poll_timeout" and job.task_id:
        resumed = ImageJob.objects.filter(pk=job.pk, status=ImageJob.Status.FAILED).update(
            status=ImageJob.Status.GENERATING, error_kind="", error_message="", claimed_by="",
            poll_since=timezone.now(), finished_at=None, updated_at=timezone.now(),
        )  # fmt: skip
        if resumed:
            job.refresh_from_db()
            return job
    return request_image(user, job.conversation, job.prompt, job.source_message)


def describe_for_tool(job: ImageJob) -> str:
    """One line for the model's tool message: what happened, never a URL or a key. The user's
    description goes beside it, as data (chat/tools/image.py)."""
    if job.status == ImageJob.Status.BLOCKED:
        return f"作画请求未通过审核：{job.error_message}"
    if job.status == ImageJob.Status.FAILED:
        return f"作画失败：{job.error_message}"
    if job.status == ImageJob.Status.DONE:
        return "画已作成（AI 想象图，非史料）。"
    return "画作正在生成，稍后会出现在对话中。"
