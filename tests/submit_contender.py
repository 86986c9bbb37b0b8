"""Worker processes contending for one account's shared submit limit (tests/redis, tests/postgres).

Run as a module, it sets Django up from its environment (REDIS_URL, or DATABASE_URL), prints the
back-end it counts on, waits for a line on stdin so that every process starts at once, takes `each`
grants and prints the windows they fell in as JSON."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def contend_in_processes(
    env: dict[str, str], account: str, *, processes: int = 2, rate: int = 2, each: int = 4
) -> tuple[list[str], list[list[int]]]:
    """Where each process counted ("redis", or the database's vendor), and the windows of its grants."""
    # As a module from the project's root: run as a file, tests/ would come first on sys.path, and its
    # redis package would hide the real one.
    args = [sys.executable, "-m", "tests.submit_contender", account, str(rate), str(each)]
    started = [
        subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    try:
        backends = [process.stdout.readline().strip() for process in started]  # all set up
        for process in started:  # then all at once
            with contextlib.suppress(BrokenPipeError):  # one that died says why on stderr, below
                process.stdin.write("go\n")
                process.stdin.flush()
        outputs = [process.communicate(timeout=120) for process in started]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
    for process, (_, stderr) in zip(started, outputs):
        assert process.returncode == 0, stderr[-3000:]
    return backends, [json.loads(stdout) for stdout, _ in outputs]


def main(account: str, rate: int, each: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
    django.setup()
    from django.db import connection

    from chat.media.limits import RedisSubmitLimit, shared_submit_limit

    limit = shared_submit_limit()
    print("redis" if isinstance(limit, RedisSubmitLimit) else connection.vendor, flush=True)
    sys.stdin.readline()
    stop = threading.Event()
    print(json.dumps([limit.acquire(account, rate, stop) for _ in range(each)]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
