"""Dictation (听写): check a recording, then send it to the user's transcription model once.

Every refusal is a `DictationRefused` with a message for the page; nothing is stored, and the
recording lives only in the request's memory (docs/voice-input.md).
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.models import ApiCredential
from accounts.services import credential_guard, credential_mark_rejected, credential_resolve
from chat.quota import QuotaExceeded, quota_check
from chat.speech_input import formats
from chat.speech_input.client import Transcriber, TranscriptionError, transcribe
from chat.streaming import key_rejected
from guyue import ratelimit
from guyue.lib.netguard import UnsafeURL, check_public_url

logger = logging.getLogger(__name__)

NOT_OFFERED = "当前密钥不支持语音输入"
# When the container does not state its length: MediaRecorder records at 32 kbit/s (static/js/dictation.js),
# so a recording is taken to last its size at that rate. A denser one is over-estimated, never under.
ESTIMATE_BYTES_PER_SECOND = 4000
# MediaRecorder stops a little after the timer fires; the container then says 60.2 s, say.
SLACK_SECONDS = 1.0


class DictationRefused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def dictation_offered(credential: ApiCredential | None) -> bool:
    return credential is not None and credential.offers("transcription")


def recording_check(audio: bytes) -> formats.AudioFormat:
    """The recording's format, or DictationRefused: empty, too large, not audio, or too long."""
    if not audio:
        raise DictationRefused("没有收到录音，请重新录制。")
    if len(audio) > settings.DICTATION_MAX_BYTES:
        raise DictationRefused(too_large_text(), 413)
    fmt = formats.sniff(audio)
    if fmt is None:
        raise DictationRefused("上传的内容不是可识别的音频（支持 WebM、Ogg、WAV、MP3、M4A）。", 415)
    seconds = formats.duration(fmt, audio)
    if seconds is None:
        seconds = len(audio) / ESTIMATE_BYTES_PER_SECOND
    if seconds > settings.DICTATION_MAX_SECONDS + SLACK_SECONDS:
        raise DictationRefused(f"录音太长（约 {seconds:.0f} 秒），每段最多 {settings.DICTATION_MAX_SECONDS} 秒，请分段说。")
    return fmt


def too_large_text() -> str:
    return f"录音太大，最多 {settings.DICTATION_MAX_BYTES // 1024} KB，请录短一些。"


def _transcriber_for(user) -> tuple[ApiCredential, Transcriber]:
    """The caller's own connection (else the site's), never one named by the request."""
    if not ratelimit.hit(ratelimit.cache_key("dictation", str(user.pk)),
                         limit=settings.DICTATION_LIMIT_PER_MINUTE, window=60):
        raise DictationRefused("语音输入过于频繁，请稍后再试。", 429)
    try:
        quota_check(user)
    except QuotaExceeded as exc:
        raise DictationRefused(str(exc), 429) from None
    credential = credential_resolve(user)
    if not dictation_offered(credential):
        raise DictationRefused(NOT_OFFERED + "。")
    base_url = credential.effective_base_url()
    if not credential.is_site_wide:
        try:
            check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)  # DNS may have moved since saving
        except UnsafeURL as exc:
            raise DictationRefused(str(exc)) from None
    return credential, Transcriber(base_url=base_url, api_key=credential.api_key,
                                   model=credential.model_for("transcription"),
                                   timeout=settings.DICTATION_TIMEOUT, guard=credential_guard(credential))


async def dictation_transcribe(*, user, audio: bytes) -> str:
    fmt = recording_check(audio)
    credential, target = await sync_to_async(_transcriber_for)(user)
    try:
        text = await transcribe(target, audio, fmt)
    except TranscriptionError as exc:
        logger.info("transcription failed for credential %s: %s", credential.pk, exc.error or exc.message)
        if exc.error is not None and key_rejected(exc.error):
            await sync_to_async(credential_mark_rejected)(credential)
        raise DictationRefused(exc.message, 502) from None
    if not text:
        raise DictationRefused("没有听清，请靠近话筒再说一遍。", 422)
    return text
