"""Media jobs: create (what the tool registry and the page call), look up, retry (docs/media.md).

    job = request_image(user, conversation, "画李白月下独酌", source_message=msg)
    job = request_edit(user, picture, "把背景换成长安城")
    job = request_video(user, conversation, "李白泛舟", source_job=picture, confirmed=True)
    job = request_music(user, conversation, poem_message, tags="古风、古琴")
    job = request_midjourney_action(user, grid, custom_id)
    job.status  → "queued" (the worker takes it from here), "blocked" or "failed" (no call was made)
"""

from __future__ import annotations

import re
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.services import credential_resolve
from chat.images.checks import check_prompt, compose_prompt
from chat.media.checks import media_text
from chat.media.cost import VideoEstimate, estimate_video
from chat.media.engines import model_of, offered
from chat.models import Conversation, MediaJob, Message
from chat.quota import quota_for, refusal_text
from guyue import ratelimit

Kind = MediaJob.Kind
VIDEO_RESOLUTIONS = ("480p", "720p", "1080p")
VIDEO_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
DEFAULT_TAGS = ("古风", "古琴")


class ImageRequestRejected(ValueError):
    """Bad input; the message is fit to show the user, the code is for callers."""

    def __init__(self, message: str, code: str = "bad_request"):
        super().__init__(message)
        self.code = code


def request_media(
    user, conversation: Conversation, kind: str, prompt: str, *, source_message: Message | None = None,
    source_job: MediaJob | None = None, params: dict[str, Any] | None = None, size: str | None = None,
) -> MediaJob:
    """Create a media job for the user's own conversation.

    Raises ImageRequestRejected for someone else's conversation, message or picture, an empty or too
    long prompt, or too many requests. A prompt the checks refuse gives a job already `blocked`; no
    usable key, a connection without the capability or a spent daily quota a job already `failed`:
    none ever reaches a provider."""
    conversation = _own_conversation(user, conversation)
    if source_message is not None and not conversation.messages.filter(pk=source_message.pk).exists():
        raise ImageRequestRejected("消息不属于这段对话。", "not_found")
    if source_job is not None and not MediaJob.objects.for_user(user).filter(pk=source_job.pk).exists():
        raise ImageRequestRejected("找不到这幅图片。", "not_found")
    params = params or {}
    prompt = _clean(prompt, settings.MUSIC_LYRICS_MAX_CHARS if kind == Kind.MUSIC else settings.IMAGE_PROMPT_MAX_CHARS,
                    kind)  # fmt: skip
    # One budget for every kind: a clip or a song is not cheaper than a picture.
    if not ratelimit.hit(ratelimit.cache_key("image", str(user.pk)), limit=settings.IMAGE_LIMIT_PER_HOUR, window=3600):
        raise ImageRequestRejected("生成请求太频繁，请稍后再试。", "rate_limited")
    job = MediaJob(owner=user, conversation=conversation, kind=kind, source_message=source_message,
                   source_job=source_job, prompt=prompt, params=params, size=size or settings.IMAGE_SIZE)  # fmt: skip
    check = check_prompt(media_text(kind, prompt, params), conversation.persona)
    credential = credential_resolve(user)
    quota = quota_for(user)
    refusal = offered(credential, kind)
    if check.blocked:
        _finish(job, MediaJob.Status.BLOCKED, check.category, check.message)
    elif quota.exceeded:
        _finish(job, MediaJob.Status.FAILED, "quota", refusal_text(quota))
    elif refusal:
        _finish(job, MediaJob.Status.FAILED, "no_key" if credential is None else "not_offered", refusal)
    else:
        if kind != Kind.MUSIC:
            composed = compose_prompt(prompt, conversation.persona)
            job.actual_prompt, job.negative_prompt = composed.prompt, composed.negative_prompt
        job.credential, job.backend, job.model = credential, credential.kind, model_of(credential, kind)
    job.save()
    return job


def request_image(
    user, conversation: Conversation, prompt: str, source_message: Message | None = None, *, size: str | None = None,
    engine: str = "",
) -> MediaJob:
    """A new picture; `engine="midjourney"` draws it through the Midjourney proxy instead."""
    kind = Kind.MIDJOURNEY if engine == "midjourney" else Kind.IMAGE
    return request_media(user, conversation, kind, prompt, source_message=source_message, size=size)


def request_edit(user, picture: MediaJob, prompt: str) -> MediaJob:
    """Change a finished picture as the words say ("把背景换成长安城"), keeping the rest."""
    picture = _own_picture(user, picture)
    return request_media(user, picture.conversation, Kind.IMAGE_EDIT, prompt, source_job=picture, size=picture.size)


def video_params(duration: Any, resolution: Any, aspect_ratio: Any) -> dict[str, Any]:
    """The clip's settings from a form, each held to the choices the page offers."""
    try:
        duration = int(duration)
    except (TypeError, ValueError):
        duration = settings.VIDEO_DURATIONS[0]
    return {
        "duration": duration if duration in settings.VIDEO_DURATIONS else settings.VIDEO_DURATIONS[0],
        "resolution": resolution if resolution in VIDEO_RESOLUTIONS else "720p",
        "aspect_ratio": aspect_ratio if aspect_ratio in VIDEO_RATIOS else "16:9",
    }


def video_estimate(params: dict[str, Any]) -> VideoEstimate:
    """What a clip with these settings costs; settings a job never recorded take the form's defaults."""
    return estimate_video(int(params.get("duration", settings.VIDEO_DURATIONS[0])), params.get("resolution", "720p"),
                          params.get("aspect_ratio", "16:9"), yuan_per_million=settings.VIDEO_YUAN_PER_MILLION_TOKENS)


def request_video(user, conversation: Conversation, prompt: str, *, params: dict[str, Any],
                  source_job: MediaJob | None = None, source_message: Message | None = None,
                  confirmed: bool = False) -> MediaJob:
    """A short clip of a moment (text to video) or of a picture (its first frame). A clip is billed
    by the hundred thousand tokens: nothing is made until the user confirmed the estimate."""
    if not confirmed:
        raise ImageRequestRejected("视频费用较高，请先确认预计消耗后再生成。", "unconfirmed")
    if source_job is not None:
        source_job = _own_picture(user, source_job)
    params = {**params, "estimate_tokens": video_estimate(params).tokens}
    return request_media(user, conversation, Kind.VIDEO, prompt, source_job=source_job, source_message=source_message,
                         params=params)  # fmt: skip


def request_music(user, conversation: Conversation, message: Message, *, tags: str = "", title: str = "") -> MediaJob:
    """Set a poem the figure wrote to music: the lyrics are the reply's own words."""
    message = _own_reply(user, conversation, message)
    params = {"tags": _tags(tags), "title": _clean_title(title)}
    return request_media(user, conversation, Kind.MUSIC, lyrics_of(message.content), source_message=message,
                         params=params)  # fmt: skip


def request_midjourney_action(user, grid: MediaJob, custom_id: str) -> MediaJob:
    """U1-U4 (upscale) or V1-V4 (variation) on a finished Midjourney grid: a new task from its button."""
    grid = _own_picture(user, grid)
    buttons = {b["custom_id"]: b["label"] for b in grid.result.get("buttons", [])}
    if grid.kind != Kind.MIDJOURNEY or custom_id not in buttons:
        raise ImageRequestRejected("这张图片没有该按钮，请刷新后再试。", "bad_request")
    return request_media(user, grid.conversation, Kind.MIDJOURNEY, grid.prompt, source_job=grid,
                         params={"action": {"custom_id": custom_id, "label": buttons[custom_id]}})  # fmt: skip


arequest_image = database_sync_to_async(request_image)


def _own_conversation(user, conversation: Conversation) -> Conversation:
    try:
        return Conversation.objects.for_user(user).select_related("persona").get(pk=conversation.pk)
    except Conversation.DoesNotExist:
        raise ImageRequestRejected("找不到这段对话。", "not_found") from None


def _own_picture(user, job: MediaJob) -> MediaJob:
    try:
        job = MediaJob.objects.for_user(user).select_related("conversation").get(pk=job.pk)
    except MediaJob.DoesNotExist:
        raise ImageRequestRejected("找不到这幅图片。", "not_found") from None
    if job.status != MediaJob.Status.DONE or job.media_type != "image":
        raise ImageRequestRejected("只能用已经画好的图片。", "bad_request")
    return job


def _own_reply(user, conversation: Conversation, message: Message) -> Message:
    conversation = _own_conversation(user, conversation)
    found = conversation.messages.filter(pk=message.pk, role=Message.Role.ASSISTANT).first()
    if found is None:
        raise ImageRequestRejected("只能为人物写下的诗文谱曲。", "not_found")
    return found


_MARKUP = re.compile(r"[*_`#>]+|!\[[^\]]*\]\([^)]*\)|\[\^?\d+\]")


def lyrics_of(text: str) -> str:
    """A reply as lyrics: its lines without Markdown marks or citation markers."""
    lines = [_MARKUP.sub("", line).strip() for line in (text or "").splitlines()]
    return "\n".join(line for line in lines if line)


def _tags(text: str) -> list[str]:
    tags = [t.strip() for t in re.split(r"[,，、;；\s]+", text or "") if t.strip()]
    tags = tags or list(DEFAULT_TAGS)
    if len("、".join(tags)) > settings.MUSIC_TAGS_MAX_CHARS:
        raise ImageRequestRejected(f"风格标签太长了，请控制在 {settings.MUSIC_TAGS_MAX_CHARS} 字以内。", "too_long")
    return tags[:8]


def _clean_title(title: str) -> str:
    return " ".join((title or "").split())[:40]


def _clean(prompt: str, limit: int, kind: str) -> str:
    # Lyrics keep their line breaks (a poem's lines); a description is one line.
    if kind == Kind.MUSIC:
        prompt = "\n".join(" ".join(line.split()) for line in (prompt or "").splitlines() if line.strip())
    else:
        prompt = " ".join((prompt or "").split())
    if not prompt:
        raise ImageRequestRejected("这段话里没有可谱曲的诗文。" if kind == Kind.MUSIC else "请描述想画的画面。", "empty")
    if len(prompt) > limit:
        raise ImageRequestRejected(f"{'歌词' if kind == Kind.MUSIC else '描述'}太长了（{len(prompt)} 字），"
                                   f"请控制在 {limit} 字以内。", "too_long")  # fmt: skip
    return prompt


def _finish(job: MediaJob, status: str, kind: str, message: str) -> None:
    job.status, job.error_kind, job.error_message, job.finished_at = status, kind, message, timezone.now()


def get_media_job_for_user(user, conversation: Conversation, pk: int) -> MediaJob:
    """The only way views fetch a job: someone else's, or another conversation's, is a 404."""
    return get_object_or_404(MediaJob.objects.for_user(user).filter(conversation=conversation), pk=pk)


def conversation_media(user, conversation: Conversation, *, limit: int | None = None) -> list[MediaJob]:
    jobs = MediaJob.objects.for_user(user).filter(conversation=conversation).order_by("-created_at", "-pk")
    return list(jobs[:limit] if limit else jobs)


def media_job_retry(user, job: MediaJob, *, confirmed: bool = False) -> MediaJob:
    """A timed-out poll resumes the same provider task (no new submission); anything else failed
    starts a new job of the same kind with the same words (a clip only once the user confirmed again)."""
    if job.owner_id != user.pk:
        raise Http404
    if job.status != MediaJob.Status.FAILED:
        raise ImageRequestRejected("只能重试失败的任务。")
    if job.error_kind == "poll_timeout" and job.task_id:
        resumed = MediaJob.objects.filter(pk=job.pk, status=MediaJob.Status.FAILED).update(
            status=MediaJob.Status.GENERATING, error_kind="", error_message="", claimed_by="",
            poll_since=timezone.now(), finished_at=None, updated_at=timezone.now(),
        )  # fmt: skip
        if resumed:
            job.refresh_from_db()
            return job
    if job.kind == Kind.VIDEO and not confirmed:
        raise ImageRequestRejected("视频费用较高，请先确认预计消耗后再生成。", "unconfirmed")
    params = {k: v for k, v in job.params.items() if k != "estimate_tokens"}
    return request_media(user, job.conversation, job.kind, job.prompt, source_message=job.source_message,
                         source_job=job.source_job, params=params or None, size=job.size)  # fmt: skip


def describe_for_tool(job: MediaJob) -> str:
    """One line for the model's tool message: what happened, never a URL or a key. The user's
    description goes beside it, as data (chat/tools/image.py)."""
    if job.status == MediaJob.Status.BLOCKED:
        return f"作画请求未通过审核：{job.error_message}"
    if job.status == MediaJob.Status.FAILED:
        return f"作画失败：{job.error_message}"
    if job.status == MediaJob.Status.DONE:
        return "画已作成（AI 想象图，非史料）。"
    return "画作正在生成，稍后会出现在对话中。"

