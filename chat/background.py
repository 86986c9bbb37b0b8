"""Background work of a daphne process (summaries, memory extraction): one task per name at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

_tasks: set[asyncio.Task] = set()  # running tasks; the event loop keeps only weak references


def start_once(name: str, work: Callable[[], Coroutine]) -> asyncio.Task | None:
    """Start `work()` unless a task of this name is still running (call from the event loop)."""
    if any(task.get_name() == name for task in _tasks):
        return None
    task = asyncio.get_running_loop().create_task(work(), name=name)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task
