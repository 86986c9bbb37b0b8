"""`manage.py mediaworker` as a real process: SIGKILL mid-job and restart, SIGTERM, two workers, idle CPU.

Each test gets its own site (SQLite file, media directory) via tests.fakes.imageworld, and a
DashScope task service on the scripted upstream that finishes each task after a fixed delay.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.fakes.imagetasks import PNG, DashScopeTasks
from tests.fakes.imageworld import ImageWorld

HANG_GUARD = 60  # seconds; only bounds a hang

# The stale time stays long: on a loaded machine a late heartbeat must not look like a dead worker
# (only the SIGKILL test waits for a claim to go stale, with one worker at a time).
FAST = {"IMAGE_POLL_INTERVAL": "0.2", "IMAGE_POLL_MAX_INTERVAL": "0.2", "IMAGE_WORKER_STALE_SECONDS": "30",
        "IMAGE_WORKER_IDLE_SECONDS": "0.2"}


@pytest.fixture
def world(tmp_path, upstream):
    world = ImageWorld(tmp_path, upstream.url, **FAST)
    yield world
    world.stop_all()


def final(jobs) -> bool:
    return all(j["status"] in ("done", "failed", "blocked") for j in jobs)


def stored(world: ImageWorld, job: dict) -> bytes:
    return (Path(world.env["MEDIA_ROOT"]) / job["file"]).read_bytes()


def test_sigkill_mid_job_resumes_from_the_task_id(world, upstream):
    tasks = DashScopeTasks(upstream, delay=3600)  # cannot finish before the kill, however slow the machine
    [job_id] = world.setup(jobs=1)
    first = world.start_worker()
    world.wait_until(lambda jobs: jobs[0]["status"] == "generating" and jobs[0]["task_id"], timeout=HANG_GUARD)
    time.sleep(0.5)  # a poll or two in flight

    first.send_signal(signal.SIGKILL)
    assert first.wait(HANG_GUARD) == -signal.SIGKILL
    [killed] = world.jobs()
    assert killed["status"] == "generating" and killed["claimed_by"]  # a dead worker's claim, left as it was

    tasks.delay = 0  # the task is done upstream by the time the new worker polls it
    # The new worker takes the job over once the dead one's heartbeat is 3 s old on the database's clock
    # (nothing is guessed from its host and pid); no other worker runs meanwhile.
    world.env["IMAGE_WORKER_STALE_SECONDS"] = "3"
    world.start_worker()
    [job] = world.wait_until(final, timeout=HANG_GUARD)

    assert job["id"] == job_id and job["status"] == "done", world.log(1)
    assert job["task_id"] == killed["task_id"] and job["submissions"] == 1 and job["attempts"] == 2
    assert tasks.created == 1 and tasks.rejected == []  # exactly one submission upstream
    assert stored(world, job) == PNG
    assert "Traceback" not in world.log(1)


def test_sigterm_finishes_the_step_releases_the_job_and_exits(world, upstream):
    # The task would take an hour: a worker that waited for its job to end would not exit in time
    # for first.wait() below. That, not a stopwatch, shows SIGTERM does not wait for the job.
    tasks = DashScopeTasks(upstream, delay=3600)
    world.setup(jobs=1)
    first = world.start_worker()
    world.wait_until(lambda jobs: jobs[0]["status"] == "generating", timeout=HANG_GUARD)

    first.send_signal(signal.SIGTERM)
    assert first.wait(HANG_GUARD) == 0
    [released] = world.jobs()
    assert released["status"] == "generating" and released["task_id"] and released["claimed_by"] == ""
    assert "SIGTERM received" in world.log(0) and "released" in world.log(0)

    tasks.delay = 0
    world.start_worker()
    [job] = world.wait_until(final, timeout=HANG_GUARD)
    assert job["status"] == "done" and job["task_id"] == released["task_id"] and tasks.created == 1


def test_two_workers_never_run_the_same_job(world, upstream):
    tasks = DashScopeTasks(upstream, delay=0.3)
    ids = world.setup(jobs=12)
    world.start_worker("--concurrency", "3", "--worker-id", "w1")
    world.start_worker("--concurrency", "3", "--worker-id", "w2", IMAGE_SUBMITS_PER_SECOND="2")
    jobs = world.wait_until(final, timeout=2 * HANG_GUARD)

    assert [j["id"] for j in jobs] == ids and {j["status"] for j in jobs} == {"done"}
    assert all(j["submissions"] == 1 and j["attempts"] == 1 for j in jobs)
    assert tasks.created == 12 and len({j["task_id"] for j in jobs}) == 12
    assert len({j["file"] for j in jobs}) == 12


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_an_idle_worker_uses_no_cpu_to_speak_of(world, upstream):
    world.setup(jobs=0)
    worker = world.start_worker(IMAGE_WORKER_IDLE_SECONDS="1")
    deadline = time.monotonic() + 90  # a hang guard: start-up on a loaded machine can be slow
    while "started" not in world.log(0):  # start-up (imports, the guard's patterns) is not idling
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)
    before, started = _cpu_seconds(worker.pid), time.monotonic()
    time.sleep(4.0)
    used = _cpu_seconds(worker.pid) - before
    assert worker.poll() is None
    # CPU time, not wall time: other processes' turns do not count, and a busy machine only makes
    # the wall-clock divisor larger. A busy loop would take most of a core.
    assert used / (time.monotonic() - started) < 0.03, f"{used:.3f} s of CPU in 4 s"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
