"""Frame coalescing: the first text at once, then at most one frame per FRAME_INTERVAL."""

from __future__ import annotations

import asyncio
import time

from chat.streaming import _FLUSH, FRAME_INTERVAL, _Coalescer


async def test_first_text_at_once_then_one_frame_per_interval():
    sent: list[tuple[float, str]] = []

    async def send(frame):
        sent.append((time.monotonic(), frame["text"]))

    queue: asyncio.Queue = asyncio.Queue()
    frames = _Coalescer(send, queue)
    started = time.monotonic()
    await frames.add("床")
    assert [text for _, text in sent] == ["床"]  # no waiting for the first words
    await frames.add("前")
    await frames.add("明")
    assert len(sent) == 1 and queue.empty()  # held back, a timer is armed
    assert await asyncio.wait_for(queue.get(), 1) is _FLUSH
    await frames.flush()
    assert [text for _, text in sent] == ["床", "前明"]
    assert sent[1][0] - started >= FRAME_INTERVAL * 0.9


async def test_cancel_disarms_the_timer():
    async def send(frame):
        raise AssertionError("nothing should be sent")

    queue: asyncio.Queue = asyncio.Queue()
    frames = _Coalescer(send, queue)
    frames.last = time.monotonic()  # as if a frame had just gone out
    await frames.add("月")
    frames.cancel()
    await asyncio.sleep(FRAME_INTERVAL * 2)
    assert queue.empty()
