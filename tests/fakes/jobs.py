"""Run the worker's background jobs inside a test, as `manage.py worker` would."""

from __future__ import annotations

from asgiref.sync import async_to_sync

from chat.jobs.runner import JobRunner, RunnerOptions


async def run_jobs() -> int:
    """Every queued job, until none is left; returns how many ran."""
    return await JobRunner(worker_id="test:0:jobs", options=RunnerOptions(idle=0.05)).serve(once=True)


def run_jobs_sync() -> int:
    return async_to_sync(run_jobs)()


def is_title_request(body: bytes) -> bool:
    """The title job's call (chat/titles.py), routed apart with `upstream.route(..., when=is_title_request)`
    so tests of other jobs keep their scripted replies in order."""
    return "拟一个简短的标题".encode() in body
