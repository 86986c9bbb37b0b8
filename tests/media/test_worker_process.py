"""`manage.py mediaworker` as a real process for the asynchronous media kinds: SIGKILL mid-task and a
second worker resumes the task (never submits it again), and two workers sharing one PostgreSQL database.

Each test gets its own site via tests.fakes.imageworld and the relay's task services on the scripted
upstream (tests.fakes.mediatasks), which finish each task a fixed delay after its creation.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from tests.fakes.imagetasks import PNG, DashScopeTasks
from tests.fakes.imageworld import RELAY_KEY, ImageWorld
from tests.fakes.mediatasks import MediaTasks

# The images' process tests' world, timings and checks (the stale time stays long there, so on a loaded
# machine a late heartbeat never looks like a dead worker; only the SIGKILL test shortens it).
from tests.images.test_worker_process import FAST, HANG_GUARD, final, stored, world  # noqa: F401  (fixture)

# world kind → (the fake service's attribute on MediaTasks, the job's backend, the mime stored, the
# progress the service reports while the task runs: None where the service documents none).
KINDS = {
    "video": ("seedance", "seedance", "video/mp4", None),
    "platform_video": ("platform", "platform", "video/mp4", None),
    "music": ("suno", "suno", "audio/mpeg", 40),
    "midjourney": ("midjourney", "midjourney", "image/png", 50),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_sigkill_mid_task_resumes_from_the_task_id(world, upstream, kind):
    name, backend, mime, running_progress = KINDS[kind]
    media = MediaTasks(upstream, delay=3600, key=RELAY_KEY)  # cannot finish before the kill, however slow the machine
    service = getattr(media, name)
    [job_id] = world.setup(jobs=1, kind=kind)
    first = world.start_worker()

    def polled(jobs) -> bool:
        # Generating with its task id saved; where the service reports progress, a poll was recorded too.
        job = jobs[0]
        return job["status"] == "generating" and job["task_id"] and job["progress"] == running_progress

    world.wait_until(polled, timeout=HANG_GUARD)
    time.sleep(0.5)  # a poll or two in flight

    first.send_signal(signal.SIGKILL)
    assert first.wait(HANG_GUARD) == -signal.SIGKILL
    [killed] = world.jobs()
    assert killed["status"] == "generating" and killed["claimed_by"] and killed["backend"] == backend
    assert killed["task_id"] in service.tasks and service.created == 1

    media.set_delay(0)  # the task is done upstream by the time the new worker polls it
    # The new worker takes the job over once the dead one's heartbeat is 3 s old on the database's clock.
    world.env["IMAGE_WORKER_STALE_SECONDS"] = "3"
    world.start_worker()
    [job] = world.wait_until(final, timeout=HANG_GUARD)

    assert job["id"] == job_id and job["status"] == "done", (job, world.log(1))
    assert job["task_id"] == killed["task_id"] and job["submissions"] == 1 and job["attempts"] == 2
    assert job["mime"] == mime and stored(world, job) == service.data and job["progress"] == 100
    # Resumed, not resubmitted: one create in all, at the service the kind belongs to.
    assert service.created == 1 and media.created == 1 and media.rejected == []
    assert service.downloads >= 1 and media.downloads_with_auth == 0
    if kind == "midjourney":
        assert any("::upsample::1::" in b["custom_id"] for b in _json(job["result"])["buttons"])
    assert "Traceback" not in world.log(0) + world.log(1)


def test_two_workers_on_one_postgresql_database_run_each_job_once(tmp_path, upstream, postgres_url):
    import psycopg

    name = f"media_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    world = ImageWorld(tmp_path, upstream.url, **{**FAST, "DATABASE_URL": url})
    try:
        images = DashScopeTasks(upstream, delay=2.0)
        media = MediaTasks(upstream, delay=2.0, key=RELAY_KEY, extra=[images])
        kinds = ["image", "video", "platform_video", "music", "midjourney"] * 2
        ids = world.setup(jobs=kinds)
        # Same host, so the two share a hostname: only the random part of the worker id tells them apart.
        workers = [world.start_worker("--concurrency", "3"), world.start_worker("--concurrency", "3")]
        jobs = world.wait_until(final, timeout=3 * HANG_GUARD, step=0.2)

        assert all(w.poll() is None for w in workers), "a worker died, so a takeover would be no fault"
        assert [j["id"] for j in jobs] == ids and {j["status"] for j in jobs} == {"done"}, jobs
        assert all(j["submissions"] == 1 and j["attempts"] == 1 for j in jobs), jobs
        assert media.created == len(ids) and media.rejected == [] and media.downloads_with_auth == 0
        assert len({j["task_id"] for j in jobs}) == len(ids)
        expected = {"image": PNG, "video": media.seedance.data, "platform_video": media.platform.data,
                    "music": media.suno.data, "midjourney": media.midjourney.data}  # fmt: skip
        assert [stored(world, j) for j in jobs] == [expected[k] for k in kinds]
        # Each job ran in exactly one worker (its log line says so), whichever one claimed it.
        logs = [world.log(0), world.log(1)]
        assert all(sum(f"media job {j['id']}: done " in log for log in logs) == 1 for j in jobs), logs
        assert "Traceback" not in "".join(logs)
    finally:
        world.stop_all()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _json(value):
    import json

    return value if isinstance(value, dict) else json.loads(value)
