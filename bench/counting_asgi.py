"""guyue.asgi.application, plus a count of every SQL statement this process runs (bench only).

    daphne -b 127.0.0.1 -p 8001 bench.counting_asgi:application

Every database connection Django opens gets an execute wrapper that counts statements (a
statement run through executemany counts once), whichever thread runs it. `GET /__bench__/stats`
is answered here, before Django, so asking does not itself touch the database:

    {"queries": 123, "by_kind": {"SELECT": 80, "INSERT": 20, ...}, "connections": 45,
     "loop_lag_ms": {"samples": 900, "p50": 0.1, "p99": 2.5, "max": 7.0}}

`connections` counts connections opened (each one also runs the settings' init_command, which
is not counted as a query). `loop_lag_ms` is how late a 20 ms timer on daphne's event loop fires
(how long the loop was busy, or waited for the GIL) over the samples since the last
`GET /__bench__/stats?reset=1`.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections import Counter

from django.db.backends.signals import connection_created

from guyue.asgi import application as site_application

_lock = threading.Lock()
_by_kind: Counter[str] = Counter()
_connections = 0


def _count(execute, sql, params, many, context):
    kind = sql.lstrip().split(None, 1)[0].upper() if sql and sql.strip() else "?"
    if kind == "UPDATE" and '"heartbeat_at" =' in sql:
        # chat/durable.py's checkpoints: one per tick for all of the process's live replies, so
        # they follow the clock, not the reply; counted apart from the reply's own statements.
        kind = "CHECKPOINT"
    with _lock:
        _by_kind[kind] += 1
    return execute(sql, params, many, context)


def _on_connection_created(sender, connection, **kwargs) -> None:
    global _connections
    with _lock:
        _connections += 1
    # The same DatabaseWrapper reconnects after close_old_connections(): wrap it only once.
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


connection_created.connect(_on_connection_created, dispatch_uid="bench-count-queries")


LAG_TICK = 0.02  # 50 wake-ups a second: about 1 % of a core when idle
_lags: list[float] = []
_watcher: asyncio.Task | None = None


async def _watch_loop() -> None:
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(LAG_TICK)
        _lags.append((loop.time() - start - LAG_TICK) * 1000)


def _lag_summary() -> dict:
    lags = sorted(_lags)
    if not lags:
        return {"samples": 0}
    pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))], 2)  # noqa: E731
    return {"samples": len(lags), "p50": pick(0.5), "p99": pick(0.99), "max": round(lags[-1], 2)}


def stats() -> dict:
    with _lock:
        return {"queries": sum(_by_kind.values()), "by_kind": dict(_by_kind), "connections": _connections,
                "loop_lag_ms": _lag_summary(), "pid": os.getpid()}


async def application(scope, receive, send):
    global _watcher
    if _watcher is None:
        _watcher = asyncio.get_running_loop().create_task(_watch_loop())
    if scope["type"] == "http" and scope["path"] == "/__bench__/stats":
        body = json.dumps(stats()).encode()
        if b"reset" in scope.get("query_string", b""):
            _lags.clear()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await site_application(scope, receive, send)
