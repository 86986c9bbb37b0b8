"""The media kinds, and the request, result and task-state types every media back-end shares.

The back-ends have the shapes of chat/images: asynchronous ones `submit()` a task, `poll()` its
state and `fetch()` the finished file; synchronous ones (image edits) `generate()` the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IMAGE_EDIT = "image_edit"
VIDEO = "video"
MUSIC = "music"
MIDJOURNEY = "midjourney"
KINDS = (IMAGE_EDIT, VIDEO, MUSIC, MIDJOURNEY)

STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    image: bytes = field(repr=False)
    mime: str = "image/png"
    mask: bytes | None = field(default=None, repr=False)
    reference_images: list[bytes] = field(default_factory=list, repr=False)
    aspect_ratio: str = ""  # nano-banana / Gemini only ("16:9"); empty keeps the model's default


@dataclass(frozen=True)
class VideoRequest:
    prompt: str
    image: bytes | None = field(default=None, repr=False)  # set: image-to-video
    duration: int = 5  # seconds
    resolution: str = "720p"
    aspect_ratio: str = "16:9"


@dataclass(frozen=True)
class MusicRequest:
    lyrics: str  # the poem
    style_tags: list[str] = field(default_factory=list)  # 古风、古琴 …
    title: str = ""


@dataclass(frozen=True)
class MidjourneyRequest:
    prompt: str


@dataclass(frozen=True)
class MidjourneyAction:
    task_id: str
    custom_id: str  # a button's customId, e.g. "MJ::JOB::upsample::1::<hash>"


@dataclass
class MediaResult:
    data: bytes = field(repr=False)
    mime: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MediaTaskState:
    status: str  # PENDING | RUNNING | SUCCEEDED | FAILED
    progress: int | None = None  # 0-100 when the provider reports it
    urls: list[str] = field(default_factory=list)
    buttons: list[dict[str, Any]] = field(default_factory=list)  # Midjourney only
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:  # the name chat.images.backends.wait_for_task polls on
        return self.status == "SUCCEEDED"
