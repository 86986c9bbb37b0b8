"""The shared client serves more concurrent streams than httpx's default pool of 100."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.upstream import sse_reply
from tests.providers import PATH, Sleeps, config, reply_parts, run, shared_client  # noqa: F401

pytestmark = pytest.mark.usefixtures("shared_client")

STREAMS = 130


async def test_more_streams_than_the_default_pool_all_finish(upstream):
    # Each reply holds its connection for a while; with 100 slots the rest would wait past the
    # pool timeout and fail. Retries are disabled so a pool wait cannot hide behind a second try.
    upstream.route("POST", PATH, *[sse_reply(reply_parts("一"), header_delay=1.5) for _ in range(STREAMS)])
    cfg = config(upstream, connect_timeout=1.0, first_byte_timeout=5.0, idle_timeout=3.0,
                 first_content_timeout=6.0, max_retries=0)
    outcomes = await asyncio.gather(*(run(cfg, sleep=Sleeps()) for _ in range(STREAMS)))
    assert [o.error for o in outcomes if o.error] == []
    assert upstream.connections_accepted >= STREAMS
