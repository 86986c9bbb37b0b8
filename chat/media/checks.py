"""Every media prompt passes the picture checks before any call (chat/images/checks.py): the input
guard's classifier plus nudity, gore and defamation. A song's lyrics and style tags are checked
together, as one text; a Midjourney button or an edit is checked with the words it carries."""

from __future__ import annotations

from chat.images.checks import PromptCheck, check_prompt
from chat.models import MediaJob


def media_text(kind: str, prompt: str, params: dict) -> str:
    if kind == MediaJob.Kind.MUSIC:
        return "\n".join(filter(None, [params.get("title", ""), prompt, "、".join(params.get("tags", []))]))
    return prompt


def check_media(job: MediaJob) -> PromptCheck:
    return check_prompt(media_text(job.kind, job.prompt, job.params), job.conversation.persona)
