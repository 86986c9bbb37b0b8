"""The supervisord configuration `manage.py serve` runs: N daphne processes on one shared socket
(Channels' documented deployment, supervisor's `fcgi-program`) and the background worker.

Pure text: the command writes it into a private temporary directory and starts supervisord on it
(docs/deploy.md). Paths are the running interpreter's, found at start, never written into the repo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The background worker's management command: one name, so a rename is one edit.
WORKER_COMMAND = "worker"
ASGI_APPLICATION = "guyue.asgi:application"
# SIGTERM lets daphne save every streaming reply as stopped (chat/consumers.py waits up to 10 s for
# each) and lets the worker finish its step; only after this long does supervisord send SIGKILL.
STOP_WAIT_SECONDS = 30


class NeedsRedis(Exception):
    pass


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    processes: int
    python: Path  # the interpreter of the venv the command runs in; daphne sits beside it
    workdir: Path  # the project directory (manage.py), where every process starts
    rundir: Path  # the private temporary directory: pid file and supervisord's own files
    worker: bool = True
    # Daphne's --proxy-headers takes the client address from the *first* X-Forwarded-For entry and the
    # scheme from X-Forwarded-Proto: only behind a proxy that overwrites both (docs/deploy.md).
    proxy_headers: bool = False
    app: str = ASGI_APPLICATION  # bench/stream.py serves its counting wrapper of it


def check(processes: int, redis_url: str) -> None:
    """More than one process needs the shared channel layer and cache: with the in-memory layer and the
    local-memory cache each process would keep its own reply lock, rate limits and websocket groups."""
    if processes < 1:
        raise NeedsRedis(f"WEB_PROCESSES must be at least 1 (got {processes})")
    if processes > 1 and not redis_url:
        raise NeedsRedis(
            f"{processes} web processes need REDIS_URL: without Redis the channel layer and the cache live in each "
            "process, so the one-reply-at-a-time lock, the rate limits, the login throttle and messages between "
            "sockets would not span the processes. Set REDIS_URL, or WEB_PROCESSES=1 (make run serves one process).")


def _program_common() -> list[str]:
    return [
        "autostart=true",
        "autorestart=true",
        "startsecs=3",
        "stopsignal=TERM",
        f"stopwaitsecs={STOP_WAIT_SECONDS}",
        "killasgroup=true",
        "stdout_logfile=/dev/stdout",
        "stdout_logfile_maxbytes=0",
        "redirect_stderr=true",
    ]


def config(plan: Plan) -> str:
    daphne = plan.python.with_name("daphne")
    proxy = " --proxy-headers" if plan.proxy_headers else ""
    lines = [
        "; written by manage.py serve; regenerated at every start",
        "[supervisord]",
        "nodaemon=true",
        "logfile=/dev/null",  # in the foreground supervisord writes its own log to stdout as well
        "logfile_maxbytes=0",
        f"pidfile={plan.rundir / 'supervisord.pid'}",
        f"childlogdir={plan.rundir}",
        "",
        # supervisord opens the socket once and every daphne inherits it as fd 0: the kernel spreads
        # the connections over the processes, and a restarted process serves the same socket.
        "[fcgi-program:web]",
        f"socket=tcp://{plan.host}:{plan.port}",
        f"command={daphne} --fd 0{proxy} {plan.app}",
        f"directory={plan.workdir}",
        f"numprocs={plan.processes}",
        "process_name=web-%(process_num)d",
        *_program_common(),
    ]
    if plan.worker:
        lines += [
            "",
            "[program:worker]",
            f"command={plan.python} manage.py {WORKER_COMMAND}",
            f"directory={plan.workdir}",
            *_program_common(),
        ]
    return "\n".join(lines) + "\n"
