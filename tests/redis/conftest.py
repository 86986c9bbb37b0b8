"""The site's Redis settings (guyue/lib/redisconf.py) switched on for every test in this directory, on the
session's throwaway redis-server (`redis_url`, tests/servers.py)."""

from __future__ import annotations

import pytest

from guyue.lib import redisconf


@pytest.fixture(autouse=True)
def on_redis(settings, redis_url):
    """The cache (busy lock, rate limits, login throttle) and the channel layer, as REDIS_URL sets them."""
    settings.CACHES = redisconf.caches(redis_url)
    settings.CHANNEL_LAYERS = redisconf.channel_layers(redis_url)
    from django.core.cache import cache

    cache.clear()  # FLUSHDB: this server is the tests' own
    yield
    cache.clear()
