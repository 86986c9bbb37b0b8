"""Retry timing, copied from openai-python's policy (docs/provider-reference.md §6)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_HONOURED_RETRY_AFTER = 60.0

_random: Callable[[], float] = random.random  # tests pin the jitter through this


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, then Retry-After as seconds or an HTTP-date."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return email.utils.mktime_tz(parsed) - (time.time() if now is None else now)


def backoff_delay(retries_done: int, retry_after: float | None) -> float:
    """How long to sleep before the next attempt.

    A server hint is honoured only when 0 < v <= 60: a longer wait would outlive the
    user's patience, and then normal backoff (or the overall deadline) decides.
    """
    if retry_after is not None and 0 < retry_after <= MAX_HONOURED_RETRY_AFTER:
        return retry_after
    base = min(INITIAL_DELAY * 2.0**retries_done, MAX_DELAY)
    # Jitter only shortens the delay, so clients that failed together spread out.
    return base * (1 - 0.25 * _random())


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number == number else None  # drop NaN
