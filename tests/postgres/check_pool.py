"""Run in a subprocess against PostgreSQL (DATABASE_URL): many database calls from the event loop, as
the websocket consumers make them, reuse a few pooled connections instead of opening one each.
Prints the number of calls and of distinct server processes (connections) that served them."""

import asyncio
import os
import sys

import django

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
django.setup()

from channels.db import database_sync_to_async  # noqa: E402
from django.db import connection  # noqa: E402

CALLS = 40


@database_sync_to_async
def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        return cursor.fetchone()[0]


async def main() -> None:
    pids = [await backend_pid() for _ in range(CALLS)]  # one at a time, as one reply's trips are
    pids += await asyncio.gather(*(backend_pid() for _ in range(CALLS)))  # and many sockets at once
    print(f"calls={len(pids)} connections={len(set(pids))}")


assert connection.vendor == "postgresql", connection.vendor
asyncio.run(main())
