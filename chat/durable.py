"""A streaming reply outlives its process: its text is checkpointed while it grows, and a reply
whose process died is found and marked `interrupted` with what was saved (docs/websocket.md).

One checkpointer per event loop writes every live reply of the process in one statement per tick,
so the cost follows the clock and the number of processes, not the number of tokens or streams.
Liveness is a lease on the database's clock (`heartbeat_at`), never a guess from host and pid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db.models import Case, Q, TextField, Value, When
from django.db.models.functions import Now

from chat.models import Message

logger = logging.getLogger(__name__)

LIVE = (Message.Status.STREAMING, Message.Status.INTERRUPTED)


def heartbeat_every() -> float:
    """How often a reply with no new text is stamped: often enough that a slow tick never lets the
    lease lapse for a live process."""
    return max(settings.REPLY_CHECKPOINT_SECONDS, settings.REPLY_LEASE_SECONDS / 4)


@dataclass
class _Live:
    parts: list[str]  # the run's released text; the run appends, the checkpointer reads
    saved_parts: int
    stamped: float


class Checkpointer:
    def __init__(self) -> None:
        self.live: dict[int, _Live] = {}
        self.task: asyncio.Task | None = None

    def track(self, pk: int, parts: list[str]) -> None:
        self.live[pk] = _Live(parts, saved_parts=len(parts), stamped=time.monotonic())
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._loop())

    def untrack(self, pk: int) -> None:
        self.live.pop(pk, None)

    async def _loop(self) -> None:
        while self.live:
            await asyncio.sleep(settings.REPLY_CHECKPOINT_SECONDS)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - a failed checkpoint is retried on the next tick
                logger.exception("checkpoint of streaming replies failed")

    async def flush(self) -> None:
        now = time.monotonic()
        texts: dict[int, str] = {}
        stamps: list[int] = []
        for pk, live in list(self.live.items()):
            if len(live.parts) != live.saved_parts:
                texts[pk] = "".join(live.parts)
                live.saved_parts, live.stamped = len(live.parts), now
            elif now - live.stamped >= heartbeat_every():
                stamps.append(pk)
                live.stamped = now
        if texts or stamps:
            await database_sync_to_async(write_checkpoint)(texts, stamps)


def write_checkpoint(texts: dict[int, str], stamps: list[int]) -> None:
    """At most two statements for all of a process's live replies. A reply already saved as
    finished is left alone (the status filter); one that another process wrongly thought dead
    (its stamp was late) is taken back."""
    live = Message.objects.filter(status__in=LIVE)
    if texts:
        # One UPDATE … CASE (bulk_update would add a transaction: BEGIN and COMMIT around it).
        content = Case(*(When(pk=pk, then=Value(text)) for pk, text in texts.items()), output_field=TextField())
        live.filter(pk__in=list(texts)).update(content=content, heartbeat_at=Now(), status=Message.Status.STREAMING)
    if stamps:
        live.filter(pk__in=stamps).update(heartbeat_at=Now(), status=Message.Status.STREAMING)


_checkpointers: dict[asyncio.AbstractEventLoop, Checkpointer] = {}


def checkpointer() -> Checkpointer:
    loop = asyncio.get_running_loop()
    for stale in [other for other in _checkpointers if other.is_closed()]:
        del _checkpointers[stale]
    return _checkpointers.setdefault(loop, Checkpointer())


# --- recovery ----------------------------------------------------------------------------------

def _stale() -> Q:
    cutoff = Now() - timedelta(seconds=settings.REPLY_LEASE_SECONDS)
    return Q(status=Message.Status.STREAMING) & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))


def mark_interrupted(queryset) -> int:
    return queryset.filter(_stale()).update(
        status=Message.Status.INTERRUPTED, error_kind="interrupted", finished_at=Now())


def recover(messages: list[Message]) -> None:
    """Lazily, for messages just read for a page or a socket: a `streaming` one whose process is
    gone becomes `interrupted`. Costs nothing unless one of them is streaming."""
    streaming = [m for m in messages if m.status == Message.Status.STREAMING]
    if not streaming:
        return
    pks = [m.pk for m in streaming]
    mark_interrupted(Message.objects.filter(pk__in=pks))
    current = {row[0]: row[1:] for row in Message.objects.filter(pk__in=pks)
               .values_list("pk", "status", "content", "error_kind", "finished_at")}
    for message in streaming:
        if message.pk in current:
            message.status, message.content, message.error_kind, message.finished_at = current[message.pk]


_swept = False


def sweep_once() -> int:
    """At a process's start (its first socket): every reply whose lease has lapsed, site-wide."""
    global _swept
    if _swept:
        return 0
    _swept = True
    return mark_interrupted(Message.objects.all())
