"""The channel layer and cache on Redis (settings with REDIS_URL; docs/deploy.md).

redis-py 8 gives every socket read a 5 s timeout by default, and channels_redis waits on BZPOPMIN
for up to 5 s (`brpop_timeout`) while a socket has nothing to receive: with the defaults the read
times out first and the websocket dies about 5 s after it connects. So the layer's reads get room
beyond the block, and both clients check an idle connection before reusing it.
"""

from __future__ import annotations

BLOCK_SECONDS = 5  # channels_redis's BZPOPMIN timeout (RedisChannelLayer.brpop_timeout)
LAYER_READ_TIMEOUT = BLOCK_SECONDS + 10  # a blocking read always ends (empty-handed) before this
CACHE_READ_TIMEOUT = 5.0  # cache commands never block on the server
CONNECT_TIMEOUT = 5.0
HEALTH_CHECK_SECONDS = 30  # PING a connection idle this long before using it (a NAT or proxy may have cut it)
# redis-py 8 caps a pool at 100 connections and raises at once past it; every reply frame is a group_send
# that holds one while it runs, so 100 streams of one process under load ran out (bench/stream.py --serve).
MAX_CONNECTIONS = 1000


def _socket_options(read_timeout: float) -> dict:
    return {
        "socket_timeout": read_timeout, "socket_connect_timeout": CONNECT_TIMEOUT, "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_SECONDS, "max_connections": MAX_CONNECTIONS,
    }  # fmt: skip


def channel_layers(url: str) -> dict:
    host = {"address": url, **_socket_options(LAYER_READ_TIMEOUT)}
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [host]}}}


def caches(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "OPTIONS": _socket_options(CACHE_READ_TIMEOUT)}}
