"""A worker in another process tells the conversation's pages about its job through Redis."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chat.notify import conversation_group
from tests.fakes.imagetasks import DashScopeTasks
from tests.fakes.imageworld import ImageWorld

HANG_GUARD = 90  # seconds; only bounds a hang
FAST = {"IMAGE_POLL_INTERVAL": "0.2", "IMAGE_POLL_MAX_INTERVAL": "0.2", "IMAGE_WORKER_IDLE_SECONDS": "0.2"}


def test_a_worker_process_pushes_job_changes_through_redis(tmp_path, upstream, redis_url):
    DashScopeTasks(upstream, delay=1.0)
    world = ImageWorld(tmp_path, upstream.url, REDIS_URL=redis_url, **FAST)
    [job_id] = world.setup(jobs=1)
    [job] = world.jobs()
    layer = get_channel_layer()

    async def listen() -> list[dict]:
        channel = await layer.new_channel()
        await layer.group_add(conversation_group(job["conversation_id"]), channel)
        world.start_worker()
        events = []
        async with asyncio.timeout(HANG_GUARD):
            while not events or events[-1]["status"] != "done":
                events.append(await layer.receive(channel))
        await layer.group_discard(conversation_group(job["conversation_id"]), channel)
        return events

    try:
        events = async_to_sync(listen)()
    finally:
        world.stop_all()
    assert {e["type"] for e in events} == {"media.job"} and {e["job"] for e in events} == {job_id}
    assert [e["status"] for e in events][-1] == "done" and "generating" in [e["status"] for e in events]
    assert world.jobs()[0]["status"] == "done"
