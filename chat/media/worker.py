"""The media worker behind `manage.py mediaworker` (docs/media.md): pictures, edits, video, music and
Midjourney jobs, one claim/resume/retry mechanism for all of them.

It claims jobs with one conditional UPDATE that must change exactly one row (PostgreSQL also picks
the row with `select_for_update(skip_locked=True)`), runs up to `concurrency` of them in threads,
and keeps its claims alive with a heartbeat thread; a claim whose heartbeat is older than
IMAGE_WORKER_STALE_SECONDS on the database's clock (the claim's lease) belongs to a dead worker and is taken over (no
guess from a host and pid: workers in containers may share both).

Crash safety. Every write is fenced on `claimed_by = this worker`. For a DashScope task `submitting`
is committed before the create call and the task id, with `generating`, right after it, before
anything else (every asynchronous kind: DashScope, Seedance, the task platform, Suno, Midjourney). A job found later in `submitting` without a task id may or may not exist upstream
(the worker died inside the call or before the next write): it is failed as "interrupted", never
submitted again, because a second submission would be a second bill. A job in `generating` with a
task id resumes polling. Synchronous back-ends (OpenAI images, OpenRouter, edits) have no task id;
a job that was `generating` there when its worker died is failed the same way.

SIGTERM/SIGINT set `stop`: each job finishes the step it is in (a submit, a poll, a download), is
released with its task id at the next wait, and the process exits.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from accounts.services import credential_guard
from chat.images.backends import ImageError, wait_for_task
from chat.images.checks import compose_prompt
from chat.media.checks import check_media
from chat.media.engines import Engine, engine_for, offered
from chat.media.files import EXTENSIONS
from chat.media.limits import account_key, shared_submit_limit
from chat.models import MediaJob, media_upload_to
from chat.notify import conversation_group
from chat.providers.errors import ProviderError
from guyue.lib.netguard import UnsafeURL, sync_client

logger = logging.getLogger(__name__)

Status = MediaJob.Status


WAITED = {"image_edit": "改图", "video": "视频生成", "music": "谱曲", "midjourney": "Midjourney 作画"}


class Stopping(Exception):
    """The worker is stopping: the job is released where it stands."""


class ClaimLost(Exception):
    """Another worker took the job over (this one looked dead): stop touching it."""


@dataclass
class WorkerOptions:
    concurrency: int = field(default_factory=lambda: settings.IMAGE_WORKER_CONCURRENCY)
    idle: float = field(default_factory=lambda: settings.IMAGE_WORKER_IDLE_SECONDS)
    stale: float = field(default_factory=lambda: float(settings.IMAGE_WORKER_STALE_SECONDS))
    poll_interval: float = field(default_factory=lambda: settings.IMAGE_POLL_INTERVAL)
    poll_max_interval: float = field(default_factory=lambda: settings.IMAGE_POLL_MAX_INTERVAL)
    poll_deadline: float = 0.0  # 0: each kind's own deadline from the settings; else a cap on all of them
    submits_per_second: int = field(default_factory=lambda: settings.IMAGE_SUBMITS_PER_SECOND)


class Worker:
    def __init__(self, *, worker_id: str | None = None, options: WorkerOptions | None = None) -> None:
        # host:pid:random, for the logs only: liveness is the heartbeat on the database's clock, never a
        # guess from the host and pid (workers in containers may share both).
        self.id = worker_id or f"{socket.gethostname()[:30].replace(':', '-')}:{os.getpid()}:{secrets.token_hex(3)}"
        self.options = options or WorkerOptions()
        self.stop = threading.Event()
        self.wake = threading.Event()
        # One budget per provider account for all workers on all hosts (docs/submit-limits.md).
        self.limit = shared_submit_limit()
        self.processed = 0

    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set()

    # --- the loop ----------------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        """Serve until stopped (or, with `once`, until nothing is left to claim). Returns jobs run."""
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat_loop, args=(beat_stop,), name="mediaworker-heartbeat",
                                daemon=True)  # fmt: skip
        beat.start()
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="mediajob")
        running: set[Future] = set()
        idle = 0.05
        try:
            while not self.stop.is_set():
                self.wake.clear()  # before looking, so a job finishing from here on is not missed
                running = {f for f in running if not f.done()}
                claimed = 0
                while len(running) < self.options.concurrency and not self.stop.is_set():
                    job = self._claim_safely()
                    if job is None:
                        break
                    running.add(pool.submit(self._run_job, job))
                    claimed += 1
                if once and not running and not claimed:
                    break
                # No busy loop: idle waits back off to `idle` seconds; a finishing job wakes us.
                idle = 0.05 if claimed else min(idle * 2, self.options.idle)
                self.wake.wait(idle if len(running) < self.options.concurrency else self.options.idle)
        finally:
            pool.shutdown(wait=True)
            beat_stop.set()
            beat.join()
            close_old_connections()
        return self.processed

    def _heartbeat_loop(self, beat_stop: threading.Event) -> None:
        period = max(0.2, self.options.stale / 4)
        while not beat_stop.wait(period):
            try:
                mine = MediaJob.objects.filter(claimed_by=self.id, status__in=MediaJob.ACTIVE)
                mine.update(heartbeat_at=Now())  # the database's clock, which every worker's claim reads
            except DatabaseError:
                logger.exception("media worker heartbeat failed")
            finally:
                close_old_connections()

    # --- claiming ----------------------------------------------------------------------------------

    def _claim_safely(self) -> MediaJob | None:
        try:
            return self.claim()
        except DatabaseError:
            logger.exception("media worker could not claim a job")
            return None
        finally:
            close_old_connections()

    def claim(self) -> MediaJob | None:
        # A claim lapses when its heartbeat is older than the stale time on the database's clock, so
        # workers on several hosts agree whatever their own clocks say (docs/media.md, Claiming).
        lapsed = ExpressionWrapper(Now() - timedelta(seconds=self.options.stale), output_field=DateTimeField())
        claimable = Q(status__in=MediaJob.ACTIVE) & (
            Q(claimed_by="") | Q(heartbeat_at__lt=lapsed) | Q(heartbeat_at=None)
        )
        take = {"claimed_by": self.id, "claimed_at": Now(), "heartbeat_at": Now(), "attempts": F("attempts") + 1}
        oldest_first = MediaJob.objects.filter(claimable).order_by("created_at", "pk").values_list("pk", flat=True)
        if connection.features.has_select_for_update_skip_locked:
            with transaction.atomic():
                pk = oldest_first.select_for_update(skip_locked=True).first()
                won = pk is not None and MediaJob.objects.filter(claimable, pk=pk).update(**take) == 1
        else:
            # The row must still be claimable when the UPDATE runs: of two workers racing for it,
            # exactly one changes a row.
            won = False
            for pk in oldest_first[:5]:
                if MediaJob.objects.filter(claimable, pk=pk).update(**take) == 1:
                    won = True
                    break
        if not won:
            return None
        return MediaJob.objects.select_related("conversation__persona", "credential", "source_job").get(pk=pk)

    # --- one job -----------------------------------------------------------------------------------

    def _run_job(self, job: MediaJob) -> None:
        started = time.monotonic()
        try:
            self.process(job)
            took = time.monotonic() - started
            logger.info("media job %s: %s in %.1fs (worker %s)", job.pk, job.status, took, self.id)
        except Stopping:
            self._release(job)
            logger.info("media job %s released at %s (worker stopping)", job.pk, job.status)
        except ClaimLost:
            logger.warning("media job %s was taken over by another worker", job.pk)
        except Exception:
            logger.exception("media job %s crashed", job.pk)
            self._fail_quietly(job)
        finally:
            self.processed += 1
            close_old_connections()
            self.wake.set()

    def process(self, job: MediaJob) -> None:
        check = check_media(job)
        if check.blocked:
            return self._finish(job, Status.BLOCKED, check.category, check.message)
        refusal = offered(job.credential, job.kind)
        if refusal:
            return self._finish(job, Status.FAILED, "no_key" if job.credential is None else "not_offered", refusal)
        if not job.actual_prompt and job.kind != MediaJob.Kind.MUSIC:
            composed = compose_prompt(job.prompt, job.conversation.persona)
            self._update(job, actual_prompt=composed.prompt, negative_prompt=composed.negative_prompt)
        try:
            # A user's key talks to its base URL through the address guard; a site-wide key is trusted.
            with sync_client(credential_guard(job.credential)) as http:
                engine = engine_for(job, http, source=_source_bytes(job), reference=_reference_bytes(job))
                self._update(job, backend=engine.name)
                result = self._generate(job, engine)
        except UnsafeURL as exc:
            return self._finish(job, Status.FAILED, "bad_request", str(exc))
        except ProviderError as error:
            logger.warning("media job %s failed: %s", job.pk, error)
            message = error.message
            if error.kind == "poll_timeout" and job.kind != MediaJob.Kind.IMAGE:
                message = f"{WAITED[job.kind]}超时，可以继续等待或重新生成（任务仍在服务端，继续等待不会重复计费）。"
            return self._finish(job, Status.FAILED, getattr(error, "reason", error.kind), message)
        self._store(job, result)

    def _generate(self, job: MediaJob, engine: Engine) -> Any:
        backend, request = engine.backend, engine.request
        if not backend.is_async:
            if job.status != Status.QUEUED:
                raise ImageError("interrupted", detail="worker died during a synchronous call")
            self._update(job, status=Status.GENERATING, submitted_at=timezone.now(), submissions=F("submissions") + 1)
            return backend.generate(request)
        first_wait = 0.0
        if not job.task_id:
            if job.status != Status.QUEUED:
                raise ImageError("interrupted", detail="worker died between submitting and saving the task id")
            self._acquire_submit(job)
            self._update(job, status=Status.SUBMITTING, submitted_at=timezone.now(), submissions=F("submissions") + 1)
            task_id = backend.submit(request)
            # Nothing between the answer and this write: it is what makes a crash resumable.
            self._update(job, task_id=task_id, status=Status.GENERATING, poll_since=timezone.now())
            first_wait = self.options.poll_interval
        state = wait_for_task(
            backend, job.task_id, interval=self.options.poll_interval, max_interval=self.options.poll_max_interval,
            deadline=(job.poll_since or timezone.now()).timestamp() + self._deadline(engine), first_wait=first_wait,
            sleep=self._sleep, on_state=lambda state: self._progress(job, state),
        )  # fmt: skip
        return backend.fetch(state)

    def _acquire_submit(self, job: MediaJob) -> None:
        credential = job.credential
        account = account_key(credential.kind, credential.effective_base_url(), credential.api_key)
        self.limit.acquire(account, self.options.submits_per_second, self.stop, stopping=Stopping)

    def _deadline(self, engine: Engine) -> float:
        # WorkerOptions.poll_deadline (tests, the benchmark) caps every kind's own deadline.
        return min(engine.deadline, self.options.poll_deadline) if self.options.poll_deadline else engine.deadline

    def _progress(self, job: MediaJob, state: Any) -> None:
        value = getattr(state, "progress", None)
        if value is not None and value != job.progress and not state.done:
            self._update(job, progress=value)

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopping

    def _store(self, job: MediaJob, result: Any) -> None:
        job.mime = result.mime  # media_upload_to picks the folder from it
        name = media_upload_to(job, f"{job.pk}-{secrets.token_hex(8)}.{EXTENSIONS[result.mime]}")
        storage = MediaJob._meta.get_field("file").storage
        stored = storage.save(name, ContentFile(result.data))
        extra = getattr(result, "extra", {}) or {}
        try:
            self._finish(job, Status.DONE, "", "", file=stored, mime=result.mime, progress=100,
                         revised_prompt=(getattr(result, "revised_prompt", "") or extra.get("revised_prompt", ""))[:2000],
                         warning=getattr(result, "warning", "")[:300], result=result_summary(extra))  # fmt: skip
        except ClaimLost:
            # Taken over, or the job (its conversation, its owner) was deleted meanwhile: no orphan file.
            storage.delete(stored)
            raise

    # --- fenced writes -----------------------------------------------------------------------------

    def _update(self, job: MediaJob, **fields: Any) -> None:
        changed = MediaJob.objects.filter(pk=job.pk, claimed_by=self.id).update(updated_at=timezone.now(), **fields)
        if changed != 1:
            raise ClaimLost
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(job, name, value)
        if {"status", "progress"} & fields.keys():
            push(job)

    def _finish(self, job: MediaJob, status: str, kind: str, message: str, **fields: Any) -> None:
        self._update(job, status=status, error_kind=kind[:20], error_message=message[:300], claimed_by="",
                     finished_at=timezone.now(), **fields)  # fmt: skip

    def _release(self, job: MediaJob) -> None:
        try:
            self._update(job, claimed_by="")
        except (ClaimLost, DatabaseError):
            logger.warning("media job %s could not be released; its claim will go stale", job.pk)

    def _fail_quietly(self, job: MediaJob) -> None:
        try:
            self._finish(job, Status.FAILED, "upstream", "生成出错，请稍后重试。")
        except (ClaimLost, DatabaseError):
            logger.exception("media job %s: could not record the failure", job.pk)


def _source_bytes(job: MediaJob) -> bytes | None:
    source = job.source_job
    if source is None or not source.file or job.kind == MediaJob.Kind.MIDJOURNEY:
        return None
    try:
        with source.file.open("rb") as handle:
            return handle.read()
    except OSError:  # the picture was deleted since; the engine says so
        return None


def _reference_bytes(job: MediaJob) -> bytes | None:
    """The figure's reference portrait, for a picture of it or an edit, when the connection can edit."""
    persona = job.conversation.persona
    if job.kind not in (MediaJob.Kind.IMAGE, MediaJob.Kind.IMAGE_EDIT) or not persona.reference_portrait:
        return None
    if offered(job.credential, MediaJob.Kind.IMAGE_EDIT):
        return None
    try:
        with persona.reference_portrait.open("rb") as handle:
            return handle.read()
    except OSError:
        return None


def result_summary(extra: dict[str, Any]) -> dict[str, Any]:
    """What the page needs from a finished task: Midjourney's U/V buttons, Suno's track titles, tokens."""
    summary: dict[str, Any] = {}
    buttons = [{"custom_id": b["customId"], "label": str(b.get("label") or b.get("emoji") or "")}
               for b in extra.get("buttons") or () if isinstance(b, dict) and isinstance(b.get("customId"), str)
               and ("::upsample::" in b["customId"] or "::variation::" in b["customId"])]  # fmt: skip
    if buttons:
        summary["buttons"] = buttons
    if extra.get("tracks"):
        summary["tracks"] = [{"title": str(t.get("title") or "")} for t in extra["tracks"] if isinstance(t, dict)]
    if isinstance(extra.get("tokens"), int):
        summary["tokens"] = extra["tokens"]
    return summary


def push(job: MediaJob) -> None:
    """Tell the conversation's open pages that a job changed (across processes when the channel layer is
    Redis); pages poll as well, so a lost push costs only a few seconds."""
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "media.job", "job": job.pk, "status": job.status, "progress": job.progress}
    try:
        async_to_sync(layer.group_send)(conversation_group(job.conversation_id), event)
    except Exception:  # never let a notification fail a job
        logger.warning("media job %s: push failed", job.pk, exc_info=True)
