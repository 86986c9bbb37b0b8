"""The shared client serves more concurrent streams than httpx's default pool of 100."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.upstream import Gate, sse_reply
from tests.providers import PATH, Sleeps, config, reply_parts, run, shared_client  # noqa: F401

pytestmark = pytest.mark.usefixtures("shared_client")

STREAMS = 130


async def test_more_streams_than_the_default_pool_all_finish(upstream):
    # The upstream answers nobody until all 130 requests are in: with 100 pool slots the other 30
    # could never be sent, so the gate would not fill. That is checked by counting, not by timing;
    # the timeouts only bound a hang. Retries are disabled so a pool wait cannot hide behind a second try.
    gate = Gate(STREAMS, timeout=30)
    upstream.route("POST", PATH, *[sse_reply(reply_parts("一"), hold=gate) for _ in range(STREAMS)])
    cfg = config(upstream, connect_timeout=30.0, first_byte_timeout=60.0, idle_timeout=30.0,
                 first_content_timeout=60.0, total_timeout=90.0, max_retries=0)
    outcomes = await asyncio.gather(*(run(cfg, sleep=Sleeps()) for _ in range(STREAMS)))
    assert gate.filled, f"at most {gate.most_waiting} streams were open at once"
    assert [o.error for o in outcomes if o.error] == []
    assert upstream.connections_accepted >= STREAMS
