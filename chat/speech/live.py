"""What of a streaming reply has reached the page, for reading it aloud while it is written.

Only the text the page was sent (the delta frames, which carry what the output guard released and
the judge let through) is ever spoken. The reply's run wraps its frame sender in a `Tap`: this
process keeps the shown text in memory, and each time a sentence becomes final the text goes to the
Django cache too, so a speech request served by another process (Redis) sees it as well. Once the
reply is saved, the message row is the truth (chat/speech/services.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.core.cache import cache

from chat.speech.sentences import CLOSERS, ENDS, split_sentences

CACHE_SECONDS = 600
KEEP_CLOSED_SECONDS = 60.0
_MAY_END = ENDS | CLOSERS | {"\n", "."}


@dataclass
class Live:
    text: str
    final: int = 0  # final sentences in `text`
    closed_at: float | None = None  # the run has sent its last frame; the row is being saved


_live: dict[int, Live] = {}  # message id → its shown text, in this process


def cache_key(message_id: int) -> str:
    return f"speech:shown:{message_id}"


def shown(message_id: int) -> Live | None:
    return _live.get(message_id)


async def shown_elsewhere(message_id: int) -> str:
    """The shown text another process published (with REDIS_URL), or ""."""
    return await cache.aget(cache_key(message_id)) or ""


class Tap:
    """Wraps a reply's frame sender: the delta frames' text is what may be read aloud."""

    def __init__(self, message_id: int, prefix: str, send: Callable[[dict], Awaitable[None]]):
        self.message_id, self._send = message_id, send
        self.live = _live[message_id] = Live(prefix, final=len(split_sentences(prefix, complete=False)))
        self._tail_may_end = bool(prefix) and prefix[-1] in _MAY_END
        self._writing: asyncio.Task | None = None
        self._dirty = False
        _forget_old()

    async def send(self, frame: dict) -> None:
        await self._send(frame)
        if frame.get("type") == "delta":
            await self._grow(frame["text"])

    async def _grow(self, text: str) -> None:
        live = self.live
        live.text += text
        # Counting sentences costs a pass over the text: only when a sentence may have ended.
        if not (self._tail_may_end or any(ch in _MAY_END for ch in text)):
            return
        self._tail_may_end = bool(text) and text[-1] in _MAY_END
        final = len(split_sentences(live.text, complete=False))
        if final > live.final:
            live.final = final
            self._publish()

    def _publish(self) -> None:
        """To the cache beside the stream, never in its way: the frame loop does not wait for it."""
        if self._writing is not None and not self._writing.done():
            self._dirty = True  # the write in flight is followed by one of the newest text
            return
        self._writing = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while True:
            self._dirty = False
            await cache.aset(cache_key(self.message_id), self.live.text, CACHE_SECONDS)
            if not self._dirty:
                return

    def close(self) -> None:
        self.live.closed_at = time.monotonic()


def _forget_old() -> None:
    now = time.monotonic()
    for pk in [pk for pk, live in _live.items() if live.closed_at and now - live.closed_at > KEEP_CLOSED_SECONDS]:
        _live.pop(pk, None)
