"""The loop that runs background jobs in the worker process (`manage.py worker`; docs/jobs.md).

One asyncio loop runs up to `concurrency` jobs at once (each is mostly a wait on one model call),
keeps their leases alive, and on stop hands the unfinished ones back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError

from chat.jobs import queue
from chat.jobs.handlers import HANDLERS
from chat.models import BackgroundJob

logger = logging.getLogger(__name__)

PRUNE_SECONDS = 600


@dataclass
class RunnerOptions:
    concurrency: int = field(default_factory=lambda: settings.JOB_WORKER_CONCURRENCY)
    lease: float = field(default_factory=lambda: settings.JOB_LEASE_SECONDS)
    idle: float = field(default_factory=lambda: settings.JOB_WORKER_IDLE_SECONDS)
    max_attempts: int = field(default_factory=lambda: settings.JOB_MAX_ATTEMPTS)
    keep_days: float = field(default_factory=lambda: settings.JOB_KEEP_DAYS)


class JobRunner:
    def __init__(self, *, worker_id: str | None = None, options: RunnerOptions | None = None) -> None:
        self.id = worker_id or queue.new_worker_id()
        self.options = options or RunnerOptions()
        self.processed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def request_stop(self) -> None:
        """Safe from any thread (a signal handler)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def serve(self, *, once: bool = False) -> int:
        """Run jobs until stopped (or, with `once`, until none is left to claim). Returns jobs run."""
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        beat = asyncio.create_task(self._heartbeat())
        stopping = asyncio.create_task(self._stop.wait())
        running: set[asyncio.Task] = set()
        idle = 0.05
        try:
            while not self._stop.is_set():
                claimed = 0
                while len(running) < self.options.concurrency and not self._stop.is_set():
                    job = await self._claim()
                    if job is None:
                        break
                    running.add(asyncio.create_task(self._run(job)))
                    claimed += 1
                if once and not running and not claimed:
                    break
                idle = 0.05 if claimed else min(idle * 2, self.options.idle)
                done, _ = await asyncio.wait({*running, stopping}, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
                running -= done
        finally:
            for task in running:
                task.cancel()  # each hands its job back to the queue
            await asyncio.gather(*running, return_exceptions=True)
            beat.cancel()
            stopping.cancel()
            await asyncio.gather(beat, stopping, return_exceptions=True)
        return self.processed

    async def _claim(self) -> BackgroundJob | None:
        try:
            return await database_sync_to_async(queue.claim)(self.id, self.options.lease)
        except DatabaseError:
            logger.exception("job worker %s could not claim a job", self.id)
            return None

    async def _heartbeat(self) -> None:
        beats, prune_every = 0, max(1, round(PRUNE_SECONDS / max(0.2, self.options.lease / 4)))
        while True:
            if beats % prune_every == 0:  # at start, then about every PRUNE_SECONDS
                try:
                    await database_sync_to_async(queue.prune)(self.options.keep_days)
                except DatabaseError:
                    logger.exception("job worker %s could not prune ended jobs", self.id)
            await asyncio.sleep(max(0.2, self.options.lease / 4))
            beats += 1
            try:
                await database_sync_to_async(queue.extend)(self.id, self.options.lease)
            except DatabaseError:
                logger.exception("job worker %s could not extend its leases", self.id)

    async def _run(self, job: BackgroundJob) -> None:
        error = ""
        try:
            if job.attempts > self.options.max_attempts:
                error = "多次尝试未能完成"  # it kept losing its worker: a crash it causes is not retried forever
            else:
                error = await HANDLERS[job.kind](job)
        except asyncio.CancelledError:
            await asyncio.shield(database_sync_to_async(queue.release)(job, self.id))
            logger.info("job %s (%s) handed back to the queue", job.pk, job.kind)
            raise
        except Exception:
            logger.exception("job %s (%s) crashed", job.pk, job.kind)
            error = "内部错误"
        self.processed += 1
        try:
            if not await database_sync_to_async(queue.finish)(job, self.id, error=error):
                logger.warning("job %s finished after its lease was taken over", job.pk)
        except DatabaseError:
            logger.exception("job %s: could not record its end; its lease will lapse", job.pk)
