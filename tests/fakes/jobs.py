"""Run the worker's background jobs inside a test, as `manage.py worker` would."""

from __future__ import annotations

from asgiref.sync import async_to_sync

from chat.jobs.runner import JobRunner, RunnerOptions


async def run_jobs() -> int:
    """Every queued job, until none is left; returns how many ran."""
    return await JobRunner(worker_id="test:0:jobs", options=RunnerOptions(idle=0.05)).serve(once=True)


def run_jobs_sync() -> int:
    return async_to_sync(run_jobs)()
