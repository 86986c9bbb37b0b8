"""The worker in-process: atomic claims, stale claims taken over, the crash window, fencing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from chat.media.services import request_image
from chat.media.worker import ClaimLost, Worker
from chat.models import MediaJob
from tests.images.conftest import fast_options

pytestmark = pytest.mark.django_db


def test_a_job_is_claimed_by_one_worker_only(dashscope, alice, conversation):
    job = request_image(alice, conversation, "李白月下独酌")
    first, second = Worker(worker_id="a", options=fast_options()), Worker(worker_id="b", options=fast_options())
    assert first.claim().pk == job.pk
    assert second.claim() is None
    job.refresh_from_db()
    assert job.claimed_by == "a" and job.attempts == 1 and job.heartbeat_at is not None


def test_a_stale_claim_is_taken_over_and_the_old_worker_is_fenced_off(dashscope, alice, conversation):
    job = request_image(alice, conversation, "李白月下独酌")
    dead = Worker(worker_id="dead", options=fast_options(stale=5))
    alive = Worker(worker_id="alive", options=fast_options(stale=5))
    claimed = dead.claim()
    MediaJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=6))
    assert alive.claim().pk == job.pk
    with pytest.raises(ClaimLost):
        dead._update(claimed, status="generating")
    job.refresh_from_db()
    assert job.claimed_by == "alive" and job.attempts == 2 and job.status == "queued"


def test_the_crash_window_fails_the_job_instead_of_submitting_twice(upstream, dashscope, alice, conversation,
                                                                     run_worker):
    # A worker died after marking the job `submitting` and before saving a task id: the create call may
    # or may not have reached DashScope. At most once: no second submission, a clear message instead.
    job = request_image(alice, conversation, "李白月下独酌")
    MediaJob.objects.filter(pk=job.pk).update(status="submitting", submissions=1, claimed_by="dead",
                                              heartbeat_at=timezone.now() - timedelta(minutes=5))
    run_worker()
    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "interrupted" and "重复计费" in job.error_message
    assert job.submissions == 1 and upstream.requests == []


def test_a_synchronous_call_cut_by_a_crash_is_not_repeated(upstream, alice, conversation, run_worker):
    from tests.images.conftest import site_credential

    site_credential("openai_compatible", upstream.url + "/v1", model="nano-banana")
    job = request_image(alice, conversation, "李白月下独酌")
    MediaJob.objects.filter(pk=job.pk).update(status="generating", submissions=1, claimed_by="dead",
                                              heartbeat_at=timezone.now() - timedelta(minutes=5))
    run_worker()
    job.refresh_from_db()
    assert job.status == MediaJob.Status.FAILED and job.error_kind == "interrupted" and upstream.requests == []


def test_a_generating_task_resumes_from_its_task_id(upstream, dashscope, alice, conversation, run_worker):
    from tests.fakes.imagetasks import DashScopeTasks

    tasks = DashScopeTasks(upstream, delay=0.0)
    job = request_image(alice, conversation, "李白月下独酌")
    run_worker()  # one full run creates the task …
    job.refresh_from_db()
    task_id = job.task_id
    # … now pretend the worker died before downloading: the job is `generating`, claimed by a dead worker.
    MediaJob.objects.filter(pk=job.pk).update(status="generating", file="", claimed_by="dead",
                                              heartbeat_at=timezone.now() - timedelta(minutes=5))
    run_worker()
    job.refresh_from_db()
    assert job.status == MediaJob.Status.DONE and job.task_id == task_id and tasks.created == 1
    assert job.submissions == 1 and job.attempts == 2


def test_each_submission_draws_on_the_accounts_shared_limit(dashscope, alice, conversation, upstream, run_worker,
                                                            monkeypatch):
    from chat.media import worker as worker_module
    from chat.media.limits import account_key
    from tests.fakes.imagetasks import DashScopeTasks

    DashScopeTasks(upstream, delay=0)
    drawn = []

    class Recorder:
        def acquire(self, account, rate, stop, *, stopping):
            drawn.append((account, rate, stopping))
            return 0

    monkeypatch.setattr(worker_module, "shared_submit_limit", Recorder)
    request_image(alice, conversation, "李白月下独酌")
    run_worker(submits_per_second=2)
    key = account_key(dashscope.kind, dashscope.effective_base_url(), dashscope.api_key)
    assert drawn == [(key, 2, worker_module.Stopping)] and dashscope.api_key not in key


def test_a_fresh_claim_is_never_taken_whatever_its_holder_id_says(dashscope, alice, conversation):
    # Workers in containers may share a hostname and pids: only the heartbeat, on the database's clock, counts.
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    worker = Worker(options=fast_options(stale=3600))
    host = worker.id.split(":")[0]
    job = request_image(alice, conversation, "一")
    MediaJob.objects.filter(pk=job.pk).update(status="generating", task_id="t", claimed_by=f"{host}:{gone.stdout.strip()}:abc",
                                              heartbeat_at=Now())
    assert worker.claim() is None  # same host, a pid that no longer exists: still a live lease
    MediaJob.objects.filter(pk=job.pk).update(heartbeat_at=Now() - timedelta(hours=2))
    assert worker.claim().pk == job.pk  # lapsed on the database's clock: taken over

