"""One reply: resolve the key, call the provider, coalesce deltas into frames, save once at the end."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import ApiCredential
from accounts.services import credential_resolve
from chat import services
from chat.models import Conversation, Message
from chat.prompting import build_messages
from chat.providers.chat import ProviderConfig, TextDelta, Usage, stream_chat
from chat.providers.errors import ProviderError
from guyue.lib.netguard import UnsafeURL, check_public_url

logger = logging.getLogger(__name__)

FRAME_INTERVAL = 0.05  # at most one delta frame per 50 ms per stream
_DONE = object()
_STOP = object()

Send = Callable[[dict], Awaitable[None]]


@dataclass
class ReplyResult:
    text: str = ""
    status: str = Message.Status.COMPLETE
    error_kind: str = ""
    usage: Usage | None = None
    model: str = ""
    provider: str = ""
    parts: list[str] = field(default_factory=list)


def provider_config(credential: ApiCredential) -> ProviderConfig:
    base_url = credential.effective_base_url()
    if not credential.is_site_wide:
        check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)  # DNS may have moved since saving
    return ProviderConfig(
        kind=credential.kind,
        base_url=base_url,
        api_key=credential.api_key,
        model=credential.effective_text_model(),
        connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT,
        first_byte_timeout=settings.PROVIDER_FIRST_BYTE_TIMEOUT,
        first_content_timeout=settings.PROVIDER_FIRST_CONTENT_TIMEOUT,
        idle_timeout=settings.PROVIDER_IDLE_TIMEOUT,
        total_timeout=settings.PROVIDER_TOTAL_TIMEOUT,
        site_url=settings.SITE_URL,
    )


@database_sync_to_async
def _resolve_config(user) -> ProviderConfig | None:
    credential = credential_resolve(user)
    return provider_config(credential) if credential else None


class ReplyRun:
    """Streams one reply. `stop()` ends it early; the partial text is kept either way."""

    def __init__(self, *, user, conversation: Conversation, parent: Message, branch: list[Message], send: Send):
        self.user, self.conversation, self.parent, self.branch, self.send = user, conversation, parent, branch, send
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.queue.put_nowait(_STOP)

    async def run(self) -> Message:
        await self.send({"type": "reply_start", "reply_to": self.parent.pk})
        result = ReplyResult()
        try:
            config = await _resolve_config(self.user)
        except UnsafeURL:
            config, result.error_kind = None, "bad_request"
        if config is None:
            result.status, result.error_kind = Message.Status.ERROR, result.error_kind or "no_key"
        else:
            result.model, result.provider = config.model, config.kind
            await self._stream(config, result)
        return await database_sync_to_async(services.reply_save)(
            conversation=self.conversation, parent=self.parent, content="".join(result.parts),
            status=result.status, error_kind=result.error_kind, model=result.model, provider=result.provider,
            prompt_tokens=result.usage.prompt_tokens if result.usage else None,
            completion_tokens=result.usage.completion_tokens if result.usage else None,
        )

    async def _stream(self, config: ProviderConfig, result: ReplyResult) -> None:
        conversation = self.conversation
        messages = await sync_to_async(build_messages)(
            persona=conversation.persona, life_stage=conversation.life_stage, style=conversation.style_preset,
            branch=self.branch, budget_tokens=settings.PROMPT_TOKEN_BUDGET,
        )
        pump = asyncio.create_task(self._pump(config, messages))
        buffer: list[str] = []
        last_flush = 0.0
        try:
            while True:
                timeout = None if not buffer else max(0.0, last_flush + FRAME_INTERVAL - time.monotonic())
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    item = None
                if isinstance(item, TextDelta):
                    buffer.append(item.text)
                    result.parts.append(item.text)
                elif isinstance(item, Usage):
                    result.usage = item
                elif item is _STOP:
                    result.status = Message.Status.STOPPED
                    break
                elif item is _DONE:
                    break
                elif isinstance(item, ProviderError):
                    result.status, result.error_kind = Message.Status.ERROR, item.kind
                    break
                elif isinstance(item, BaseException):
                    logger.error("reply failed", exc_info=item)
                    result.status, result.error_kind = Message.Status.ERROR, "internal"
                    break
                if buffer and time.monotonic() - last_flush >= FRAME_INTERVAL:
                    await self.send({"type": "delta", "text": "".join(buffer)})
                    buffer.clear()
                    last_flush = time.monotonic()
            if buffer:
                await self.send({"type": "delta", "text": "".join(buffer)})
        finally:
            # Cancelling the pump closes the httpx response, which releases (or drops) the connection.
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, config: ProviderConfig, messages: list[dict]) -> None:
        try:
            async for event in stream_chat(config, messages, max_tokens=settings.REPLY_MAX_TOKENS):
                await self.queue.put(event)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer loop, which records it
            await self.queue.put(exc)
            return
        await self.queue.put(_DONE)
