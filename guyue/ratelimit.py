"""Fixed-window counters in the Django cache (Redis when several processes share the load)."""

from __future__ import annotations

import hashlib

from django.core.cache import cache


def cache_key(prefix: str, *parts: str) -> str:
    # Hash the parts: user names can hold characters memcached-style keys reject.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"rl:{prefix}:{digest}"


def hit(key: str, *, limit: int, window: int) -> bool:
    """Count one event; True while the window has seen at most `limit` events."""
    cache.add(key, 0, window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        count = 1
    return count <= limit


def client_ip(request) -> str:
    from django.conf import settings

    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The last entry is the one our proxy appended; anything before it came from the client.
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")
