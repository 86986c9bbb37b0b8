"""Task submissions per provider account, shared by every worker process (docs/submit-limits.md).

A provider counts submissions per account, not per process: every worker on every machine draws
from one budget of `rate` grants per fixed one-second window. The windows are whole seconds of
one shared clock (Redis's TIME, or the database's), never a worker's own clock, which may be off.
"""

from __future__ import annotations

import hashlib
import threading
import time

import redis
from django.conf import settings
from django.db import OperationalError, connection

from chat.models import SubmitSlot
from guyue.lib import redisconf

# A wake-up just past the window's start, so a sleep that ends early by a hair does not spin.
WAKE_MARGIN = 0.002
LOCKED_RETRIES = 5
KEEP_SECONDS = 60  # database rows older than this are deleted when a window opens


class Stopping(Exception):
    """`stop` was set before a slot was granted."""


def account_key(kind: str, base_url: str, api_key: str) -> str:
    """One id per provider account: the same key in two credential rows shares a limit, and the key
    itself never reaches Redis or the database."""
    return hashlib.sha256("\x00".join((kind, base_url, api_key)).encode()).hexdigest()[:32]


class SharedSubmitLimit:
    """`acquire` blocks until one more submission fits the account's current window."""

    def acquire(
        self, account: str, rate: int, stop: threading.Event, *, stopping: type[BaseException] = Stopping
    ) -> int:
        """Returns the window (a second of the shared clock) the grant belongs to; raises `stopping`
        when `stop` is set before a grant (a stopping worker should not take a slot it won't use)."""
        rate = max(rate, 1)
        while not stop.is_set():
            second, count, elapsed = self._count(account)
            if count <= rate:
                return second
            # Refused attempts count too, harmlessly: only counts up to `rate` are grants.
            if stop.wait(max(1.0 - elapsed, 0.0) + WAKE_MARGIN):
                break
        raise stopping

    def _count(self, account: str) -> tuple[int, int, float]:
        """Counts one attempt: (window second, attempts in it so far, seconds since it began)."""
        raise NotImplementedError


# Braces make the account a Redis Cluster hash tag: the key built from the clock in the script lands
# on the slot of KEYS[1].
_SCRIPT = """
local now = redis.call('TIME')
local key = KEYS[1] .. now[1]
local count = redis.call('INCR', key)
if count == 1 then redis.call('EXPIRE', key, 2) end
return {tonumber(now[1]), count, tonumber(now[2])}
"""


class RedisSubmitLimit(SharedSubmitLimit):
    """One atomic script per attempt: read TIME, count in that second's key, one round trip."""

    def __init__(self, url: str) -> None:
        client = redis.Redis.from_url(
            url,
            socket_timeout=redisconf.CACHE_READ_TIMEOUT,
            socket_connect_timeout=redisconf.CONNECT_TIMEOUT,
            health_check_interval=redisconf.HEALTH_CHECK_SECONDS,
        )
        self.script = client.register_script(_SCRIPT)  # EVALSHA, EVAL once if the server lost it

    def _count(self, account: str) -> tuple[int, int, float]:
        second, count, micros = self.script(keys=[f"submit:{{{account}}}:"])
        return int(second), int(count), int(micros) / 1_000_000


# One statement: the window comes from the database's clock and the count from the upsert, so two
# processes never both see the same count. SQLite's 'now' is fixed within one statement; PostgreSQL's
# clock_timestamp() moves (now() would be frozen for a whole transaction), so RETURNING reads it again
# and the time since the window began may pass 1 s: the wait is then zero.
_UPSERT = """
INSERT INTO {table} ({account}, {second}, {count}) VALUES (%s, {clock_second}, 1)
ON CONFLICT ({account}, {second}) DO UPDATE SET {count} = {table}.{count} + 1
RETURNING {second}, {count}, {clock_elapsed}
"""
_CLOCKS = {  # (the current second, seconds since the row's window began); %% is a literal % here
    "sqlite": (
        "CAST(strftime('%%s', 'now') AS INTEGER)",
        "strftime('%%f', 'now') - CAST(strftime('%%S', 'now') AS INTEGER)",
    ),
    "postgresql": (
        "floor(extract(epoch FROM clock_timestamp()))::bigint",
        "(extract(epoch FROM clock_timestamp()) - {table}.{second})::float8",
    ),
}


class DatabaseSubmitLimit(SharedSubmitLimit):
    """The same windows in the `SubmitSlot` table, for a site without Redis."""

    def _count(self, account: str) -> tuple[int, int, float]:
        for attempt in range(LOCKED_RETRIES):
            try:
                with connection.cursor() as cursor:
                    cursor.execute(_upsert_sql(SubmitSlot._meta.db_table), [account])
                    second, count, elapsed = cursor.fetchone()
                break
            except OperationalError as exc:
                # SQLite under load: another worker held the file past the busy timeout. The statement
                # did not run, so trying again counts the attempt once.
                if "locked" not in str(exc) or attempt == LOCKED_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if count == 1:  # a new window: drop this account's old ones, so the table stays tiny
            SubmitSlot.objects.filter(account=account, second__lt=second - KEEP_SECONDS).delete()
        return int(second), int(count), float(elapsed)


def _upsert_sql(table: str) -> str:
    q = connection.ops.quote_name
    names = {"table": q(table), "account": q("account"), "second": q("second"), "count": q("count")}
    clock_second, clock_elapsed = (clock.format(**names) for clock in _CLOCKS[connection.vendor])
    return _UPSERT.format(**names, clock_second=clock_second, clock_elapsed=clock_elapsed)


def shared_submit_limit() -> SharedSubmitLimit:
    """Redis when the site has it, else the database; make one per worker and share it across threads."""
    if settings.REDIS_URL:
        return RedisSubmitLimit(settings.REDIS_URL)
    return DatabaseSubmitLimit()
