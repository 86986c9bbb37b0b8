"""Reading a reply aloud: which sentence, with which voice, from the cache or the speech endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.http import Http404

from accounts.models import ApiCredential
from accounts.services import credential_guard, credential_resolve
from chat import durable
from chat.models import Conversation, Message, MessageSpeech
from chat.speech import live
from chat.speech.sentences import split_sentences
from chat.speech.tts import SpeechConfig, SpeechError, synthesize
from chat.speech.voices import voice_for
from guyue import ratelimit
from guyue.lib.netguard import UnsafeURL, check_public_url
from personas.models import Persona

NO_SPEECH = "当前密钥不支持朗读：请在设置中为密钥填写朗读模型。"
NO_KEY = "尚未配置可用的密钥，无法朗读。"
BAD_URL = "密钥的接口地址不可用（须为公网地址），无法朗读。请检查密钥设置。"
TOO_MANY = "朗读请求过于频繁，请稍候再试。"
NOT_YET = object()  # the sentence is not final yet: ask again
POLL_HERE = 0.02  # the reply streams in this process: its shown text is read from memory
POLL_ELSEWHERE = 0.25  # another process writes it: the row and the cache are read


class NoSpeech(Exception):
    """No call can be made (no key, no speech model, an address not allowed); `message` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def speech_config(credential: ApiCredential | None, persona: Persona) -> SpeechConfig:
    """How to read for this figure with this connection, or NoSpeech. Checks a user's base URL again
    (DNS may have moved since saving), so call it off the event loop."""
    if credential is None:
        raise NoSpeech(NO_KEY)
    model = credential.model_for("speech")
    if not model:
        raise NoSpeech(NO_SPEECH)
    base_url = credential.effective_base_url()
    if not credential.is_site_wide:
        try:
            check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)
        except UnsafeURL:
            raise NoSpeech(BAD_URL) from None
    return SpeechConfig(base_url=base_url, api_key=credential.api_key, model=model, voice=voice_for(persona),
                        speed=persona.speech_speed or 1.0, timeout=settings.SPEECH_TIMEOUT,
                        guard=credential_guard(credential))


def speech_offered(user) -> bool:
    """Whether the key this user's replies use offers 朗读 (the page says so before any click)."""
    credential = credential_resolve(user)
    return credential is not None and credential.offers("speech")


@database_sync_to_async
def reply_and_config(user, message_id: int) -> tuple[Message, SpeechConfig]:
    """One trip to the database: the figure's reply in one of the user's conversations (anything
    else is a 404), and how to read it (else NoSpeech, before any call)."""
    message = (Message.objects.filter(pk=message_id, conversation__owner=user, role=Message.Role.ASSISTANT)
               .select_related("speaker", "conversation__persona").first())
    if message is None:
        raise Http404
    return message, speech_config(credential_resolve(user), message.speaker or message.conversation.persona)


async def _released(message: Message) -> tuple[str, bool]:
    """The reply's text that may be spoken now, and whether it is complete."""
    here = live.shown(message.pk)
    if here is not None and here.closed_at is None:
        return here.text, False
    row = await Message.objects.filter(pk=message.pk).values_list("status", "content").afirst()
    if row is None:
        return "", True  # deleted meanwhile
    status, content = row
    if status != Message.Status.STREAMING:
        return content, True  # saved: the row holds exactly what the page shows
    if here is not None:
        return here.text, False  # the run is saving it
    return await live.shown_elsewhere(message.pk), False


async def sentence_at(message: Message, index: int, *, wait: float):
    """Sentence `index` once it is final (waiting up to `wait` seconds while the reply is written),
    None when the reply has no such sentence, NOT_YET when it did not become final in time."""
    if message.status == Message.Status.STREAMING and live.shown(message.pk) is None:
        await database_sync_to_async(durable.recover)([message])  # its process may be gone
    deadline = time.monotonic() + wait
    while True:
        text, complete = await _released(message)
        sentences = split_sentences(text, complete=complete)
        if index < len(sentences):
            return sentences[index]
        if complete:
            return None
        if time.monotonic() >= deadline:
            return NOT_YET
        here = live.shown(message.pk)
        await asyncio.sleep(POLL_HERE if here is not None else POLL_ELSEWHERE)


def digest_of(config: SpeechConfig, text: str) -> str:
    return hashlib.sha256("\x00".join([config.model, config.voice, f"{config.speed:g}", text]).encode()).hexdigest()


async def sentence_audio(*, user, message: Message, index: int, text: str,
                         config: SpeechConfig) -> tuple[bytes, Callable[[], Awaitable[None]] | None]:
    """The mp3 of one sentence, from the cache or else from the speech endpoint, and for fresh audio
    the step that keeps it: the caller sends the audio first and keeps it after (a write to the
    database is the slowest step here, and the page need not wait for it)."""
    digest = digest_of(config, text)
    cached = await database_sync_to_async(_cached_or_counted)(user, message.pk, index, digest)
    if cached is not None:
        return cached, None
    audio = await synthesize(config, text)

    async def keep() -> None:
        await database_sync_to_async(speech_store)(message_id=message.pk, index=index, digest=digest, audio=audio)

    return audio, keep


def _cached_or_counted(user, message_id: int, index: int, digest: str) -> bytes | None:
    """One trip off the event loop: the cached audio, else one call counted against the user's limit."""
    cached = MessageSpeech.objects.filter(message_id=message_id, index=index, digest=digest).first()
    if cached is not None:
        with cached.audio.open("rb") as handle:
            return handle.read()
    if not ratelimit.hit(ratelimit.cache_key("speech", str(user.pk)), limit=settings.SPEECH_LIMIT_PER_MINUTE, window=60):
        raise NoSpeech(TOO_MANY)
    return None


def auto_read_set(*, conversation: Conversation, on: bool) -> None:
    conversation.auto_read = on
    conversation.save(update_fields=["auto_read"])  # not updated_at: a switch does not reorder the list


def speech_store(*, message_id: int, index: int, digest: str, audio: bytes) -> None:
    speech = MessageSpeech(message_id=message_id, index=index, digest=digest)
    speech.audio.save(f"{index}-{digest[:12]}.mp3", ContentFile(audio), save=False)
    try:
        with transaction.atomic():
            speech.save()
    except IntegrityError:  # another request stored it first, or the message was deleted meanwhile
        speech.audio.delete(save=False)


__all__ = ["NOT_YET", "NoSpeech", "SpeechError", "reply_and_config", "sentence_at", "sentence_audio", "speech_config"]
