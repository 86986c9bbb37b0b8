"""Which back-end runs a media job, with which request: the one place a job's kind and its connection's
capabilities meet (docs/media.md, Back-ends).

    engine = engine_for(job, http)
    engine.backend.submit(engine.request)   # or .generate(...) when not engine.backend.is_async

A capability's model names the service: `edit_model` nano-banana/gpt-image (the relay's images/edits)
or gemini-* (generateContent); `video_model` seedance (the relay's Seedance tasks) or
`platform:<name>[/<model>]` (the task platform); `music_model` a Suno version (the relay's Suno proxy)
or `platform:suno`; `midjourney_model` midjourney or niji (the relay's /mj proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from accounts.models import ApiCredential, CredentialKind
from chat.images.backends import BackendConfig, ImageRequest, aspect_ratio, sniff_mime
from chat.images.dashscope import DashScopeBackend, native_base
from chat.images.openai_images import OpenAIImagesBackend
from chat.images.openrouter import OpenRouterBackend
from chat.media.edits import EditsBackend, GeminiImageBackend
from chat.media.errors import MediaError
from chat.media.kinds import EditRequest, MidjourneyAction, MidjourneyRequest, MusicRequest, VideoRequest
from chat.media.midjourney import MidjourneyBackend
from chat.media.seedance import SeedanceBackend
from chat.media.suno import SunoBackend
from chat.media.taskplatform import TaskPlatformBackend
from chat.models import MediaJob
from guyue.lib.netguard import check_public_url

Kind = MediaJob.Kind
PLATFORM = "platform:"
# What each kind needs from a connection, beyond a usable key.
CAPABILITY = {Kind.IMAGE: "image", Kind.IMAGE_EDIT: "edit", Kind.VIDEO: "video", Kind.MUSIC: "music",
              Kind.MIDJOURNEY: "midjourney"}  # fmt: skip
NOT_OFFERED = {
    "edit": "当前连接没有配置改图模型，无法修改图片。",
    "video": "当前连接没有配置视频模型，无法生成视频。",
    "music": "当前连接没有配置作曲模型，无法谱曲。",
    "midjourney": "当前连接没有配置 Midjourney，无法用它作画。",
}
IMAGE_BACKENDS = {
    CredentialKind.DASHSCOPE: DashScopeBackend,
    CredentialKind.OPENAI_COMPATIBLE: OpenAIImagesBackend,
    CredentialKind.OPENROUTER: OpenRouterBackend,
}
KEEP_LOOK = "保持参考图中人物的相貌、发式与衣着特征，画出新的场景："


@dataclass
class Engine:
    backend: Any  # is_async; submit/poll/fetch, or generate
    request: Any
    name: str  # what job.backend records
    deadline: float  # seconds of polling, from the create call


def offered(credential: ApiCredential | None, kind: str) -> str:
    """"" when the connection can run this kind, else the Chinese reason it cannot."""
    capability = CAPABILITY[kind]
    if credential is None:
        return "还没有可用的 API 密钥，请先在“设置”中添加。"
    if capability == "image":
        return ""
    # These services are a relay's own paths (or the task platform behind one key): OpenAI-compatible only.
    if not credential.offers(capability) or credential.kind != CredentialKind.OPENAI_COMPATIBLE:
        return NOT_OFFERED[capability]
    return ""


def offers_of(credential: ApiCredential | None) -> str:
    """The media capabilities a connection offers, for the page's `data-offers`: a button for a
    service the connection lacks is hidden by CSS (frontend/site.css), wherever its partial is rendered."""
    return " ".join(CAPABILITY[kind] for kind in Kind if kind != Kind.IMAGE and not offered(credential, kind))


def model_of(credential: ApiCredential, kind: str) -> str:
    return credential.model_for(CAPABILITY[kind])


def config_for(credential: ApiCredential, *, model: str, max_bytes: int, root: bool = False) -> BackendConfig:
    """The connection as a back-end sees it. `root`: the relay's own paths (/mj, /suno, /seedance,
    /v1beta) hang off the host, not off its OpenAI-style …/v1 base."""
    base_url = credential.effective_base_url().rstrip("/")
    allowed = list(settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS)
    if not credential.is_site_wide:
        check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)  # DNS may have moved since saving
    else:
        # The operator chose this server, so its files come from it too (a local relay or model server).
        allowed.append(_host_port(base_url))
    if credential.kind == CredentialKind.DASHSCOPE:
        base_url = native_base(base_url)
    if root and base_url.endswith("/v1"):
        base_url = base_url[: -len("/v1")]
    return BackendConfig(
        kind=credential.kind, base_url=base_url, api_key=credential.api_key, model=model,
        connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT, request_timeout=float(settings.IMAGE_REQUEST_TIMEOUT),
        allowed_hosts=tuple(allowed), max_bytes=max_bytes, site_url=settings.SITE_URL,
    )  # fmt: skip


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def platform_of(model: str) -> tuple[str, str] | None:
    """"platform:kling/kling-v2" → ("kling", "kling-v2"); a relay model name → None."""
    if not model.startswith(PLATFORM):
        return None
    name, _, inner = model[len(PLATFORM):].partition("/")
    return name.strip() or "kling", inner.strip()


def engine_for(job: MediaJob, http: httpx.Client, *, source: bytes | None = None,
               reference: bytes | None = None) -> Engine:
    """`source`: the bytes of the picture the job starts from; `reference`: the figure's reference
    portrait, when it has one and the connection can edit."""
    credential = job.credential
    if job.kind == Kind.IMAGE and reference is None:
        config = config_for(credential, model=credential.effective_image_model(), max_bytes=settings.IMAGE_MAX_BYTES)
        backend = IMAGE_BACKENDS[CredentialKind(credential.kind)](config, http)
        return Engine(backend, ImageRequest(job.actual_prompt, job.negative_prompt, job.size), credential.kind,
                      float(settings.IMAGE_POLL_DEADLINE))  # fmt: skip
    if job.kind in (Kind.IMAGE, Kind.IMAGE_EDIT):
        return _edit_engine(job, http, source=source, reference=reference)
    model = model_of(credential, job.kind)
    if job.kind == Kind.VIDEO:
        return _video_engine(job, http, model, source)
    if job.kind == Kind.MUSIC:
        return _music_engine(job, http, model)
    config = config_for(credential, model=model, max_bytes=settings.IMAGE_MAX_BYTES, root=True)
    action = job.params.get("action")
    if action:
        parent = job.source_job
        request: Any = MidjourneyAction(task_id=parent.task_id if parent else "", custom_id=action["custom_id"])
    else:
        request = MidjourneyRequest(_with_negative(job))
    return Engine(MidjourneyBackend(config, http), request, "midjourney", float(settings.MIDJOURNEY_POLL_DEADLINE))


def _edit_engine(job: MediaJob, http: httpx.Client, *, source: bytes | None, reference: bytes | None) -> Engine:
    model = model_of(job.credential, Kind.IMAGE_EDIT)
    gemini = model.startswith("gemini")
    config = config_for(job.credential, model=model, max_bytes=settings.IMAGE_MAX_BYTES, root=gemini)
    references = [reference] if reference is not None else []
    if job.kind == Kind.IMAGE:
        # A new picture of a figure with a reference portrait: the portrait is the image to draw from.
        image, references, prompt = references[0], [], KEEP_LOOK + _with_negative(job)
    else:
        if source is None:
            raise MediaError("bad_request", "no_result", message="要修改的图片已不存在，请重新生成。",
                             detail="the source picture is gone")  # fmt: skip
        image, prompt = source, _with_negative(job)
    request = EditRequest(prompt=prompt, image=image, mime=_mime_of(image), reference_images=references,
                          aspect_ratio=aspect_ratio(job.size))  # fmt: skip
    backend = GeminiImageBackend(config, http) if gemini else EditsBackend(config, http)
    return Engine(backend, request, "gemini" if gemini else "edits", float(settings.IMAGE_POLL_DEADLINE))


def _video_engine(job: MediaJob, http: httpx.Client, model: str, source: bytes | None) -> Engine:
    params = job.params
    request = VideoRequest(prompt=_with_negative(job), image=source, duration=int(params.get("duration", 5)),
                           resolution=params.get("resolution", "720p"),
                           aspect_ratio=params.get("aspect_ratio", "16:9"))  # fmt: skip
    deadline = float(settings.VIDEO_POLL_DEADLINE)
    platform = platform_of(model)
    if platform:
        config = config_for(job.credential, model=platform[1], max_bytes=settings.VIDEO_MAX_BYTES, root=True)
        return Engine(TaskPlatformBackend(config, http, platform=platform[0]), request, "platform", deadline)
    config = config_for(job.credential, model=model, max_bytes=settings.VIDEO_MAX_BYTES, root=True)
    return Engine(SeedanceBackend(config, http), request, "seedance", deadline)


def _music_engine(job: MediaJob, http: httpx.Client, model: str) -> Engine:
    params = job.params
    request = MusicRequest(lyrics=job.prompt, style_tags=list(params.get("tags", [])), title=params.get("title", ""))
    deadline = float(settings.MUSIC_POLL_DEADLINE)
    platform = platform_of(model)
    if platform:
        config = config_for(job.credential, model=platform[1], max_bytes=settings.AUDIO_MAX_BYTES, root=True)
        return Engine(TaskPlatformBackend(config, http, platform=platform[0] or "suno"), request, "platform", deadline)
    config = config_for(job.credential, model=model, max_bytes=settings.AUDIO_MAX_BYTES, root=True)
    return Engine(SunoBackend(config, http), request, "suno", deadline)


def _with_negative(job: MediaJob) -> str:
    # Services without a negative-prompt field get the era's exclusions as a sentence (chat/images/openai_images.py).
    prompt = job.actual_prompt or job.prompt
    return f"{prompt}。画面中不要出现：{job.negative_prompt}" if job.negative_prompt else prompt


def _mime_of(data: bytes) -> str:
    return sniff_mime(data) or "image/png"
