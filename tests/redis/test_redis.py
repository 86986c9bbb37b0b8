"""The Redis path with a real redis-server on a loopback port: websockets that stay up, the channel layer
across processes, and the busy lock, rate limits and login throttle on the shared cache."""

from __future__ import annotations

import asyncio

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings as django_settings
from django.core.cache import cache

from chat.models import Message
from chat.services import conversation_start
from tests.accounts.test_credentials import (  # noqa: F401  (fixtures, and the test that runs here again)
    test_key_checks_are_rate_limited_per_user,
    valid_upstream,
)
from tests.accounts.test_signup_login import (  # noqa: F401  (run here again, on Redis)
    test_it_locks_username_and_ip_after_five_failures,
    test_it_throttles_signups_per_ip,
    test_one_ip_trying_thirty_names_is_locked_out,
)
from tests.chat.test_consumer import (  # noqa: F401  (fixtures, and the tests that run here again)
    PATH,
    connect,
    conversation,
    credential,
    fast_timeouts,
    frames_until,
    replies,
    stream,
    test_a_second_send_while_streaming_is_busy,
    test_sends_are_rate_limited_per_user,
    text_of,
)
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)

IDLE_SECONDS = 60
REPLY_SECONDS = 30


def test_the_cache_and_the_layer_are_the_redis_server(redis_url):
    cache.set("guyue-probe", "墨", 60)
    raw = redis.Redis.from_url(redis_url)
    assert any(b"guyue-probe" in key for key in raw.keys("*"))  # a key the site wrote, read over a socket
    assert isinstance(get_channel_layer(), RedisChannelLayer)


async def test_many_group_sends_at_once_find_a_connection():
    """A reply frame is a group_send: hundreds at once in one process must not exhaust the pool
    (redis-py 8's default of 100 raised "Too many connections" at N = 200)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("many", channel)
    results = await asyncio.gather(*(layer.group_send("many", {"type": "x", "n": n}) for n in range(400)),
                                   return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    await layer.group_discard("many", channel)
    await layer.flush()


async def test_a_message_crosses_between_two_layers_as_between_two_processes():
    config = django_settings.CHANNEL_LAYERS["default"]["CONFIG"]
    here, there = RedisChannelLayer(**config), RedisChannelLayer(**config)
    channel = await there.new_channel()
    await there.group_add("conversation-test", channel)
    await here.group_send("conversation-test", {"type": "conversation.changed"})
    assert (await asyncio.wait_for(there.receive(channel), 30))["type"] == "conversation.changed"
    await here.close_pools()
    await there.close_pools()


async def test_an_idle_socket_survives_and_a_long_reply_completes(alice, conversation, credential, upstream, settings):
    """One socket idles for a minute while another gets a 30 s reply; both outlive every Redis timeout."""
    settings.PROVIDER_IDLE_TIMEOUT, settings.PROVIDER_TOTAL_TIMEOUT = 10.0, 120.0
    pieces = [f"{i}句。" for i in range(REPLY_SECONDS * 2)]
    upstream.route("POST", PATH, stream(*pieces, gap=0.5))
    upstream.route("POST", PATH, stream("白在此。"))
    other = await database_sync_to_async(
        lambda: conversation_start(owner=alice, persona=make_persona("du-fu", "杜甫")))()
    idle, busy = await connect(alice, conversation.pk), await connect(alice, other.pk)
    await busy.send_json_to({"type": "send", "text": "慢慢说来"})
    frames = await frames_until(busy, "reply_end", timeout=REPLY_SECONDS * 4)
    assert frames[-1]["message"]["status"] == Message.Status.COMPLETE and text_of(frames) == "".join(pieces)
    await asyncio.sleep(max(0, IDLE_SECONDS - REPLY_SECONDS))  # the first socket has said nothing all this time
    await idle.send_json_to({"type": "send", "text": "太白兄可在？"})
    frames = await frames_until(idle, "reply_end", timeout=60)
    assert text_of(frames) == "白在此。"
    [reply] = await replies(conversation)
    assert reply.status == Message.Status.COMPLETE
    await idle.disconnect()
    await busy.disconnect()
