"""The job table's operations: queue, claim, keep the lease, finish (docs/jobs.md).

Every time comparison is on the database's clock (`Now()`), so workers on several hosts agree on
whose lease lapsed whatever their own clocks say. Every write after the claim is fenced on
`claimed_by`: a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now

from chat.models import BackgroundJob

Status = BackgroundJob.Status


def enqueue(kind: str, conversation_id: int) -> bool:
    """Queue one job; False when one of this kind already waits for the conversation (it will read
    the newest state when it runs, so a second would only repeat it)."""
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives the conflict
            BackgroundJob.objects.create(kind=kind, conversation_id=conversation_id)
    except IntegrityError:
        return False
    return True


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30].replace(':', '-')}:{os.getpid()}:{secrets.token_hex(3)}"


def _lease(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def _claimable() -> Q:
    return Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_until__lt=Now())


def claim(worker_id: str, lease_seconds: float) -> BackgroundJob | None:
    """The oldest claimable job, taken by one conditional UPDATE that must change exactly one row."""
    take = {"status": Status.RUNNING, "claimed_by": worker_id, "lease_until": _lease(lease_seconds),
            "attempts": F("attempts") + 1, "started_at": Now()}
    oldest = BackgroundJob.objects.filter(_claimable()).order_by("created_at", "pk").values_list("pk", flat=True)
    won = None
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            pk = oldest.select_for_update(skip_locked=True).first()
            if pk is not None and BackgroundJob.objects.filter(_claimable(), pk=pk).update(**take) == 1:
                won = pk
    else:
        for pk in oldest[:5]:  # of two workers racing for a row, exactly one changes it
            if BackgroundJob.objects.filter(_claimable(), pk=pk).update(**take) == 1:
                won = pk
                break
    if won is None:
        return None
    return BackgroundJob.objects.select_related("conversation__owner").get(pk=won)


def extend(worker_id: str, lease_seconds: float) -> int:
    return BackgroundJob.objects.filter(claimed_by=worker_id, status=Status.RUNNING).update(
        lease_until=_lease(lease_seconds))


def finish(job: BackgroundJob, worker_id: str, *, error: str = "") -> bool:
    status = Status.FAILED if error else Status.DONE
    return bool(BackgroundJob.objects.filter(pk=job.pk, claimed_by=worker_id, status=Status.RUNNING).update(
        status=status, error=error[:300], claimed_by="", lease_until=None, finished_at=Now()))


def release(job: BackgroundJob, worker_id: str) -> bool:
    """Back to the queue (the worker is stopping); if another of its kind was queued meanwhile, that
    one will do the work and this one ends."""
    mine = BackgroundJob.objects.filter(pk=job.pk, claimed_by=worker_id, status=Status.RUNNING)
    try:
        with transaction.atomic():
            return bool(mine.update(status=Status.QUEUED, claimed_by="", lease_until=None))
    except IntegrityError:
        return bool(mine.update(status=Status.DONE, claimed_by="", lease_until=None, finished_at=Now()))


def prune(keep_days: float) -> int:
    """Ended jobs are kept a while (the page that followed a callback reads its reason), then deleted."""
    ended = BackgroundJob.objects.filter(status__in=(Status.DONE, Status.FAILED),
                                         finished_at__lt=Now() - timedelta(days=keep_days))
    return ended.delete()[0]
