"""The image worker behind `manage.py imageworker` (docs/images.md).

It claims jobs with one conditional UPDATE that must change exactly one row (PostgreSQL also picks
the row with `select_for_update(skip_locked=True)`), runs up to `concurrency` of them in threads,
and keeps its claims alive with a heartbeat thread; a claim whose heartbeat is older than
IMAGE_WORKER_STALE_SECONDS, on the database's clock, belongs to a dead worker and is taken over (no
guess from a host and pid: workers in containers may share both).

Crash safety. Every write is fenced on `claimed_by = this worker`. For a DashScope task `submitting`
is committed before the create call and the task id, with `generating`, right after it, before
anything else. A job found later in `submitting` without a task id may or may not exist upstream
(the worker died inside the call or before the next write): it is failed as "interrupted", never
submitted again, because a second submission would be a second bill. A job in `generating` with a
task id resumes polling. Synchronous back-ends have no task id; a job that was `generating` there
when its worker died is failed the same way.

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
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import ApiCredential, CredentialKind
from accounts.services import credential_guard
from chat.images.backends import (
    MIME_EXT,
    BackendConfig,
    ImageError,
    ImageRequest,
    ImageResult,
    wait_for_task,
)  # fmt: skip
from chat.images.checks import check_prompt, compose_prompt
from chat.images.dashscope import DashScopeBackend, native_base
from chat.images.openai_images import OpenAIImagesBackend
from chat.images.openrouter import OpenRouterBackend
from chat.models import ImageJob, image_upload_to
from chat.providers.errors import ProviderError
from guyue.lib.netguard import UnsafeURL, check_public_url, sync_client

logger = logging.getLogger(__name__)

Status = ImageJob.Status


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
    poll_deadline: float = field(default_factory=lambda: float(settings.IMAGE_POLL_DEADLINE))
    submits_per_second: int = field(default_factory=lambda: settings.IMAGE_SUBMITS_PER_SECOND)


class SubmitLimiter:
    """At most `rate` task submissions in any one-second window (DashScope: 2 per second)."""

    def __init__(self, rate: int, stop: threading.Event) -> None:
        self.rate, self.stop = max(rate, 1), stop
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and now - self.sent[0] >= 1.0:
                    self.sent.popleft()
                if len(self.sent) < self.rate:
                    self.sent.append(now)
                    return
                wait = 1.0 - (now - self.sent[0])
            if self.stop.wait(wait):
                raise Stopping


def backend_config(credential: ApiCredential) -> BackendConfig:
    base_url = credential.effective_base_url()
    allowed = list(settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS)
    if not credential.is_site_wide:
        check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)  # DNS may have moved since saving
    else:
        # The operator chose this server, so its pictures come from it too (a local relay or model server).
        allowed.append(_host_port(base_url))
    if credential.kind == CredentialKind.DASHSCOPE:
        base_url = native_base(base_url)
    return BackendConfig(
        kind=credential.kind, base_url=base_url.rstrip("/"), api_key=credential.api_key,
        model=credential.effective_image_model(), connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT,
        request_timeout=float(settings.IMAGE_REQUEST_TIMEOUT),
        allowed_hosts=tuple(allowed), max_bytes=settings.IMAGE_MAX_BYTES,
        site_url=settings.SITE_URL,
    )  # fmt: skip


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


BACKENDS = {
    CredentialKind.DASHSCOPE: DashScopeBackend,
    CredentialKind.OPENAI_COMPATIBLE: OpenAIImagesBackend,
    CredentialKind.OPENROUTER: OpenRouterBackend,
}


def backend_for(credential: ApiCredential, http: httpx.Client) -> Any:
    return BACKENDS[CredentialKind(credential.kind)](backend_config(credential), http)


class Worker:
    def __init__(self, *, worker_id: str | None = None, options: WorkerOptions | None = None) -> None:
        # host:pid:random, for the logs only: liveness is the heartbeat on the database's clock, never a
        # guess from the host and pid (workers in containers may share both).
        self.id = worker_id or f"{socket.gethostname()[:30].replace(':', '-')}:{os.getpid()}:{secrets.token_hex(3)}"
        self.options = options or WorkerOptions()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.limiter = SubmitLimiter(self.options.submits_per_second, self.stop)
        self.processed = 0

    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set()

    # --- the loop ----------------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        """Serve until stopped (or, with `once`, until nothing is left to claim). Returns jobs run."""
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat_loop, args=(beat_stop,), name="imageworker-heartbeat",
                                daemon=True)  # fmt: skip
        beat.start()
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="imagejob")
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
                mine = ImageJob.objects.filter(claimed_by=self.id, status__in=ImageJob.ACTIVE)
                mine.update(heartbeat_at=Now())  # the database's clock, which every worker's claim reads
            except DatabaseError:
                logger.exception("image worker heartbeat failed")
            finally:
                close_old_connections()

    # --- claiming ----------------------------------------------------------------------------------

    def _claim_safely(self) -> ImageJob | None:
        try:
            return self.claim()
        except DatabaseError:
            logger.exception("image worker could not claim a job")
            return None
        finally:
            close_old_connections()

    def claim(self) -> ImageJob | None:
        # A claim lapses when its heartbeat is older than the stale time on the database's clock, so
        # workers on several hosts agree whatever their own clocks say (docs/images.md, Claiming).
        lapsed = ExpressionWrapper(Now() - timedelta(seconds=self.options.stale), output_field=DateTimeField())
        claimable = Q(status__in=ImageJob.ACTIVE) & (
            Q(claimed_by="") | Q(heartbeat_at__lt=lapsed) | Q(heartbeat_at=None)
        )
        take = {"claimed_by": self.id, "claimed_at": Now(), "heartbeat_at": Now(), "attempts": F("attempts") + 1}
        oldest_first = ImageJob.objects.filter(claimable).order_by("created_at", "pk").values_list("pk", flat=True)
        if connection.features.has_select_for_update_skip_locked:
            with transaction.atomic():
                pk = oldest_first.select_for_update(skip_locked=True).first()
                won = pk is not None and ImageJob.objects.filter(claimable, pk=pk).update(**take) == 1
        else:
            # The row must still be claimable when the UPDATE runs: of two workers racing for it,
            # exactly one changes a row.
            won = False
            for pk in oldest_first[:5]:
                if ImageJob.objects.filter(claimable, pk=pk).update(**take) == 1:
                    won = True
                    break
        if not won:
            return None
        return ImageJob.objects.select_related("conversation__persona", "credential").get(pk=pk)

    # --- one job -----------------------------------------------------------------------------------

    def _run_job(self, job: ImageJob) -> None:
        started = time.monotonic()
        try:
            self.process(job)
            took = time.monotonic() - started
            logger.info("image job %s: %s in %.1fs (worker %s)", job.pk, job.status, took, self.id)
        except Stopping:
            self._release(job)
            logger.info("image job %s released at %s (worker stopping)", job.pk, job.status)
        except ClaimLost:
            logger.warning("image job %s was taken over by another worker", job.pk)
        except Exception:
            logger.exception("image job %s crashed", job.pk)
            self._fail_quietly(job)
        finally:
            self.processed += 1
            close_old_connections()
            self.wake.set()

    def process(self, job: ImageJob) -> None:
        check = check_prompt(job.prompt, job.conversation.persona)
        if check.blocked:
            return self._finish(job, Status.BLOCKED, check.category, check.message)
        if job.credential is None:
            return self._finish(job, Status.FAILED, "no_key", ImageError("no_key").message)
        if not job.actual_prompt:
            composed = compose_prompt(job.prompt, job.conversation.persona)
            self._update(job, actual_prompt=composed.prompt, negative_prompt=composed.negative_prompt)
        request = ImageRequest(job.actual_prompt, job.negative_prompt, job.size)
        try:
            # A user's key talks to its base URL through the address guard; a site-wide key is trusted.
            with sync_client(credential_guard(job.credential)) as http:
                backend = backend_for(job.credential, http)
                result = self._generate(job, backend, request)
        except UnsafeURL as exc:
            return self._finish(job, Status.FAILED, "bad_request", str(exc))
        except ProviderError as error:
            logger.warning("image job %s failed: %s", job.pk, error)
            return self._finish(job, Status.FAILED, error.kind, error.message)
        self._store(job, result)

    def _generate(self, job: ImageJob, backend: Any, request: ImageRequest) -> ImageResult:
        if not backend.is_async:
            if job.status != Status.QUEUED:
                raise ImageError("interrupted", detail="worker died during a synchronous image call")
            self._update(job, status=Status.GENERATING, submitted_at=timezone.now(), submissions=F("submissions") + 1)
            return backend.generate(request)
        first_wait = 0.0
        if not job.task_id:
            if job.status != Status.QUEUED:
                raise ImageError("interrupted", detail="worker died between submitting and saving the task id")
            self.limiter.acquire()
            self._update(job, status=Status.SUBMITTING, submitted_at=timezone.now(), submissions=F("submissions") + 1)
            task_id = backend.submit(request)
            # Nothing between the answer and this write: it is what makes a crash resumable.
            self._update(job, task_id=task_id, status=Status.GENERATING, poll_since=timezone.now())
            first_wait = self.options.poll_interval
        state = wait_for_task(
            backend, job.task_id, interval=self.options.poll_interval, max_interval=self.options.poll_max_interval,
            deadline=(job.poll_since or timezone.now()).timestamp() + self.options.poll_deadline, first_wait=first_wait,
            sleep=self._sleep,
        )  # fmt: skip
        return backend.fetch(state)

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopping

    def _store(self, job: ImageJob, result: ImageResult) -> None:
        name = image_upload_to(job, f"{job.pk}-{secrets.token_hex(8)}.{MIME_EXT[result.mime]}")
        stored = default_storage.save(name, ContentFile(result.data))
        try:
            self._finish(job, Status.DONE, "", "", image=stored, revised_prompt=result.revised_prompt[:2000],
                         warning=result.warning[:300])  # fmt: skip
        except ClaimLost:
            default_storage.delete(stored)
            raise

    # --- fenced writes -----------------------------------------------------------------------------

    def _update(self, job: ImageJob, **fields: Any) -> None:
        changed = ImageJob.objects.filter(pk=job.pk, claimed_by=self.id).update(updated_at=timezone.now(), **fields)
        if changed != 1:
            raise ClaimLost
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(job, name, value)

    def _finish(self, job: ImageJob, status: str, kind: str, message: str, **fields: Any) -> None:
        self._update(job, status=status, error_kind=kind[:20], error_message=message[:300], claimed_by="",
                     finished_at=timezone.now(), **fields)  # fmt: skip

    def _release(self, job: ImageJob) -> None:
        try:
            self._update(job, claimed_by="")
        except (ClaimLost, DatabaseError):
            logger.warning("image job %s could not be released; its claim will go stale", job.pk)

    def _fail_quietly(self, job: ImageJob) -> None:
        try:
            self._finish(job, Status.FAILED, "upstream", "图片生成出错，请稍后重试。")
        except (ClaimLost, DatabaseError):
            logger.exception("image job %s: could not record the failure", job.pk)
