"""Streaming benchmark: N users chat over websockets at once while a scripted upstream streams replies.

    .venv/bin/python bench/stream.py                 # N = 1, 50, 200 (a few minutes at most)
    .venv/bin/python bench/stream.py --sizes 1,10 --rounds 2

Everything runs on 127.0.0.1 in a temporary directory (own SQLite database, removed at the end):
a scripted upstream (bench/upstream.py, one Chinese token every 1/30 s), the site under daphne
(bench/counting_asgi.py: the real ASGI app plus a SQL statement counter), and this process as the
clients. For each N it reports

- added TTFT: the client receives its first `delta` frame minus the upstream writes its first
  content byte (both time.monotonic(), one clock for all processes on Linux), p50 and p99;
- the same for a direct path in the same run: httpx clients in this process streaming from the
  same upstream, N at once (one client and connection each, opened beforehand), no app in between:
  what the loopback, an httpx reader and this machine cost anyway;
- end-to-end TTFT: `send` frame written → first delta (includes the upstream's scripted think time),
  and its first part, `send` → the upstream has read the request (the app's work before the call);
  beside it the direct path's request written → first text (`direct_e2e_ttft_ms_*`, the same think time);
- frames per second per stream: delta frames / (reply_end − first delta), mean over streams; and the
  delta cadence, (deltas − 1) / (last delta − first delta), which leaves out the wait for reply_end;
- queries per reply and CPU seconds per reply of the daphne process, over send → last reply_end
  (connecting and the websocket handshake are outside that window); daphne's event-loop lag;
- errors: refused or failed connects, error frames, replies not `complete`, wrong text, timeouts;
  daphne's log is scanned for tracebacks, "database is locked" and provider retries.

A length check at N = 1 (20- and 200-token replies) shows whether queries per reply depend on the
reply's length. The last line printed is one JSON object: {"runs": [{"n": 1, ...}, ...], ...}.
The client, the upstream and daphne share this machine's cores: see docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.stats import percentile, r  # noqa: E402
from bench.upstream import reply_text  # noqa: E402
from bench.wsclient import Closed, HandshakeError, WebSocket  # noqa: E402

HOST = "127.0.0.1"
# Different questions in turn: the same words again and again in one conversation is what the input
# guard calls circling, and it would answer that in role without calling the model.
PROMPTS = (
    "请以月为题，作一首诗。", "太白兄平生最爱哪一处山水？", "长安三年，供奉翰林时可还快意？", "蜀道之难，究竟难在何处？",
    "与杜甫相识于何年何地？", "饮酒作诗，孰先孰后？", "赐金放还之后，先生去了哪里？", "黄鹤楼上为何不题诗？",
    "先生如何看待求仙访道？", "《将进酒》作于何时？", "江陵一别，可曾再见孟浩然？", "先生少年时读些什么书？",
)
_asked = itertools.count()
PREFIX = ""  # --risky: a weak cue the input guard passes but sends to the model judge
TARGETS = {"added_ttft_ms_p50_at_1": 5.0, "added_ttft_ms_p99_at_200": 30.0, "queries_per_reply": 5}


# --- small helpers -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The most memory the process has held so far (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat: the bench's own processes included."""
    with open("/proc/stat") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def others_cpu_seconds(exclude: set[int]) -> float:
    """CPU of every other process on the machine, reaped children included (cutime, cstime).

    Differences of this between two moments are what other jobs used meanwhile (kernel work
    that no process is charged for, such as some loopback networking, is not in it).
    """
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


# --- the processes -----------------------------------------------------------------------------
class Stack:
    """Temporary directory, scripted upstream, migrated database with users, daphne. close() undoes it."""

    def __init__(self, users: int, rate: float, think: float, *, keep: bool = False,
                 asgi_app: str = "bench.counting_asgi:application", extra_env: dict[str, str] | None = None,
                 judge_delay: float = 0.3, processes: int = 0):
        self.users, self.rate, self.think, self.keep, self.asgi_app = users, rate, think, keep, asgi_app
        # processes > 0: `manage.py serve` (that many daphne on one socket) on PostgreSQL and Redis
        self.processes = processes
        self.servers = contextlib.ExitStack()
        self.web_pids: list[int] = []
        self.judge_delay = judge_delay
        self.extra_env = extra_env or {}
        self.idle_cpu_share = 0.0
        self.procs: list[subprocess.Popen] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="guyue-bench-"))
        self.log_offset = 0

    def start(self) -> None:
        from cryptography.fernet import Fernet

        self.upstream = self._spawn(
            [sys.executable, "-m", "bench.upstream", "--rate", str(self.rate), "--think", str(self.think),
             "--judge-delay", str(self.judge_delay)],
            "upstream", env=self._base_env(), stdout=subprocess.PIPE,
        )
        line = self.upstream.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the scripted upstream did not start: {line!r}")
        self.upstream_url = f"http://{HOST}:{int(line.split()[1])}"
        self.port = free_port()
        self.origin = f"http://{HOST}:{self.port}"
        (self.tmp / "static").mkdir()
        (self.tmp / "media").mkdir()
        database_url, redis_url = f"sqlite:///{self.tmp / 'db.sqlite3'}", ""
        if self.processes:
            from tests.servers import postgres_server, redis_server

            database_url = self.servers.enter_context(postgres_server())
            redis_url = self.servers.enter_context(redis_server())
        self.env = {
            **self._base_env(),
            "DATABASE_URL": database_url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": f"{HOST},localhost",
            "SITE_URL": self.origin,
            "DEBUG": "false",
            "REDIS_URL": redis_url,  # one daphne process: in-memory channel layer and cache
            "SEND_LIMIT_PER_MINUTE": "1000000",
            "STATIC_ROOT": str(self.tmp / "static"),
            "MEDIA_ROOT": str(self.tmp / "media"),
            "LOG_LEVEL": "WARNING",
            "DASHSCOPE_API_KEY": "",
            "OPENROUTER_API_KEY": "bench-key",
            "OPENROUTER_BASE_URL": f"{self.upstream_url}/api/v1",
            # The reply path only: background memory extraction (every 8 user messages) would add
            # calls the scripted upstream does not expect (measure it with --env MEMORY_EXTRACTION=true).
            "MEMORY_EXTRACTION": "false",
            **self.extra_env,
        }
        for command in (["migrate", "--noinput"], ["seedpersonas"], ["envcredentials"]):
            self._run([sys.executable, "manage.py", *command])
        self.accounts_file = self.tmp / "accounts.json"
        self._run([sys.executable, "-m", "bench.setup_data", str(self.users), str(self.accounts_file)])
        self.accounts = json.loads(self.accounts_file.read_text())
        self.log = open(self.tmp / "daphne.log", "ab")
        self.serve()

    def serve(self) -> None:
        """Start daphne on the prepared database (again, after it was killed) and wait until it answers."""
        daphne = Path(sys.executable).parent / "daphne"
        command = [str(daphne)] if daphne.exists() else [sys.executable, "-m", "daphne"]
        if self.processes:
            command = [sys.executable, "manage.py", "serve", "--host", HOST, "--port", str(self.port),
                       "--processes", str(self.processes), "--no-worker", "--app", self.asgi_app]
        else:
            command = [*command, "-b", HOST, "-p", str(self.port), self.asgi_app]
        self.daphne = self._spawn(command, "daphne", env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.origin}/__bench__/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if self.daphne.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start:\n" + self.server_log()) from None
                time.sleep(0.2)
        self.web_pids = [self.daphne.pid]
        if self.processes:  # each daphne answers for itself: ask until every one has
            found: set[int] = set()
            while len(found) < self.processes and time.monotonic() < deadline:
                found.add(httpx.get(f"{self.origin}/__bench__/stats", headers={"Connection": "close"}).json()["pid"])
            self.web_pids = sorted(found)

    def server_sessions(self) -> int | None:
        """Sessions PostgreSQL has opened so far (each call is a session of its own: callers subtract it)."""
        if not self.processes:
            return None
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"]) as connection:
            return connection.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                                       ).fetchone()[0]

    def web_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.web_pids)

    async def app_stats(self, http: httpx.AsyncClient, reset: bool = False) -> dict:
        """The site's counters: of the one daphne, or summed over the serve command's processes."""
        url = f"{self.origin}/__bench__/stats" + ("?reset=1" if reset else "")
        if not self.processes:
            return (await http.get(url)).json()
        seen: dict[int, dict] = {}
        async with httpx.AsyncClient(timeout=30) as fresh:
            for _ in range(400):
                if len(seen) == len(self.web_pids):
                    break
                stats = (await fresh.get(url, headers={"Connection": "close"})).json()
                seen.setdefault(stats["pid"], stats)
        by_kind: Counter = Counter()
        for stats in seen.values():
            by_kind.update(stats["by_kind"])
        lags = [stats["loop_lag_ms"] for stats in seen.values()]
        return {"queries": sum(s["queries"] for s in seen.values()), "by_kind": dict(by_kind),
                "connections": sum(s["connections"] for s in seen.values()),
                "loop_lag_ms": {key: max((lag.get(key) or 0) for lag in lags) for key in (lags[0] if lags else {})}}

    @staticmethod
    def _base_env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.endswith("_FILE") and k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        path = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        return {**env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "guyue.settings"}

    def _spawn(self, command: list[str], name: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, **kwargs)
        proc.bench_name = name
        self.procs.append(proc)
        return proc

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command[1:])} failed:\n{done.stdout}\n{done.stderr}")

    def server_log(self) -> str:
        self.log.flush()
        return (self.tmp / "daphne.log").read_text(errors="replace")

    def new_log_problems(self) -> Counter:
        """Tracebacks, errors, lock errors and provider retries daphne logged since the last call."""
        text = self.server_log()
        fresh, self.log_offset = text[self.log_offset:], len(text)
        problems = Counter()
        for line in fresh.splitlines():
            if "Traceback" in line:
                problems["traceback"] += 1
            if "database is locked" in line:
                problems["database is locked"] += 1
            if " ERROR " in f" {line} " or line.startswith("ERROR"):
                problems["error line"] += 1
            if "failed (" in line and ", retry " in line:  # chat.providers.chat retrying a call
                problems["provider retry: " + ("PoolTimeout" if "PoolTimeout" in line else "other")] += 1
        return problems

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if hasattr(self, "log"):
            self.log.close()
        self.servers.close()
        if self.keep:
            print(f"kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- one stream through the app ------------------------------------------------------------------
@dataclass
class Stream:
    stream_id: str
    tokens: int
    error: str = ""
    sent_at: float = 0.0
    first_delta_at: float | None = None
    last_delta_at: float | None = None
    end_at: float | None = None
    deltas: int = 0
    text: list[str] = field(default_factory=list)
    upstream_first: float | None = None
    upstream_requested: float | None = None

    @property
    def ok(self) -> bool:
        return not self.error


async def app_stream(ws: WebSocket, stream: Stream, timeout: float) -> None:
    text = f"[bench id={stream.stream_id} tokens={stream.tokens}] {PREFIX}{PROMPTS[next(_asked) % len(PROMPTS)]}"
    await ws.send_text(json.dumps({"type": "send", "text": text}, ensure_ascii=False))
    stream.sent_at = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            while True:
                data, at = await ws.recv()
                frame = json.loads(data)
                kind = frame.get("type")
                if kind == "delta":
                    if stream.first_delta_at is None:
                        stream.first_delta_at = at
                    stream.last_delta_at = at
                    stream.deltas += 1
                    stream.text.append(frame["text"])
                elif kind == "reply_end":
                    stream.end_at = at
                    status = frame["message"]["status"]
                    if status != "complete":
                        stream.error = f"reply {status} ({frame['message'].get('error_kind')})"
                    elif "".join(stream.text) != reply_text(stream.tokens):
                        stream.error = "streamed text differs from the upstream's"
                    return
                elif kind == "error":
                    stream.error = f"error frame: {frame.get('code')}"
                    return
    except TimeoutError:
        stream.error = "timeout"
    except Closed as exc:
        stream.error = f"closed: {exc}"


async def connect(stack: Stack, account: dict) -> WebSocket:
    return await WebSocket.connect(HOST, stack.port, f"/ws/chat/{account['conversation']}/", {
        "Origin": stack.origin, "Cookie": f"sessionid={account['sessionid']}"})


@dataclass
class Phase:
    streams: list[Stream]
    queries: int = 0
    queries_by_kind: Counter = field(default_factory=Counter)
    connections: int = 0
    server_sessions: int | None = None  # PostgreSQL: sessions the server opened (pg_stat_database)
    peak_rss_mb: float = 0.0  # the largest peak RSS of a web process so far
    cpu: float = 0.0
    wall: float = 0.0
    upstream_max_streams: int = 0
    log_problems: Counter = field(default_factory=Counter)
    loop_lag_ms: dict = field(default_factory=dict)
    machine_busy: float = 0.0
    bench_cpu: float = 0.0  # this client process and the scripted upstream
    others_cpu: float = 0.0  # every other process on the machine


async def app_round(stack: Stack, http: httpx.AsyncClient, n: int, tokens: int, label: str) -> Phase:
    accounts = stack.accounts[:n]
    streams = [Stream(f"{label}-u{i}", tokens) for i in range(n)]
    sockets = await asyncio.gather(*(connect(stack, a) for a in accounts), return_exceptions=True)
    for stream, ws in zip(streams, sockets):
        if isinstance(ws, BaseException):
            stream.error = f"connect: {ws!r}" if not isinstance(ws, HandshakeError) else f"connect refused: {ws}"
    await http.get(f"{stack.upstream_url}/__bench__/stats?reset=1")
    before = await stack.app_stats(http, reset=True)
    sessions0 = stack.server_sessions()
    cpu0, t0, busy0 = stack.web_cpu(), time.monotonic(), machine_busy()
    bench0 = cpu_seconds(os.getpid()) + cpu_seconds(stack.upstream.pid)
    ours = {os.getpid(), stack.upstream.pid, stack.daphne.pid, *stack.web_pids}
    others0 = others_cpu_seconds(ours)
    timeout = 30 + 3 * tokens / stack.rate
    await asyncio.gather(*(app_stream(ws, s, timeout) for s, ws in zip(streams, sockets)
                           if isinstance(ws, WebSocket)))
    cpu1, t1, busy1 = stack.web_cpu(), time.monotonic(), machine_busy()
    bench1 = cpu_seconds(os.getpid()) + cpu_seconds(stack.upstream.pid)
    others1 = others_cpu_seconds(ours)
    after = await stack.app_stats(http)
    sessions1 = stack.server_sessions()
    up = (await http.get(f"{stack.upstream_url}/__bench__/stats")).json()
    await asyncio.gather(*(ws.close() for ws in sockets if isinstance(ws, WebSocket)))
    for stream in streams:
        stream.upstream_first = up["first_content"].get(stream.stream_id)
        stream.upstream_requested = up["requested"].get(stream.stream_id)
        if stream.ok and stream.upstream_first is None:
            stream.error = "upstream saw no request"
    by_kind = Counter(after["by_kind"])
    by_kind.subtract(before["by_kind"])
    return Phase(streams, queries=after["queries"] - before["queries"], queries_by_kind=+by_kind,
                 connections=after["connections"] - before["connections"], cpu=cpu1 - cpu0, wall=t1 - t0,
                 server_sessions=None if sessions0 is None else sessions1 - sessions0 - 1,
                 peak_rss_mb=max(peak_rss_mb(pid) for pid in stack.web_pids),
                 upstream_max_streams=up["max_open_streams"], log_problems=stack.new_log_problems(),
                 loop_lag_ms=after["loop_lag_ms"], bench_cpu=bench1 - bench0, others_cpu=others1 - others0,
                 machine_busy=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]))


# --- the direct path: httpx → upstream, no app -------------------------------------------------
async def direct_stream(client: httpx.AsyncClient, url: str, stream: Stream, timeout: float, delay: float) -> None:
    await asyncio.sleep(delay)
    body = {"model": "bench", "stream": True, "stream_options": {"include_usage": True}, "messages": [
        {"role": "system", "content": "你是李白。"},
        {"role": "user", "content": f"[bench id={stream.stream_id} tokens={stream.tokens}] {PROMPTS[0]}"}]}
    stream.sent_at = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
            async with client.stream("POST", f"{url}/api/v1/chat/completions", json=body, headers=headers) as response:
                response.raise_for_status()
                buffer = b""
                async for chunk in response.aiter_raw():
                    at = time.monotonic()
                    buffer += chunk
                    *events, buffer = buffer.split(b"\n\n")
                    for event in events:
                        data = event.removeprefix(b"data: ")
                        if data == b"[DONE]":
                            stream.end_at = at
                            continue
                        for choice in json.loads(data)["choices"]:
                            text = choice["delta"].get("content")
                            if text:
                                stream.first_delta_at = stream.first_delta_at or at
                                stream.text.append(text)
        if "".join(stream.text) != reply_text(stream.tokens):
            stream.error = "text differs"
    except TimeoutError:
        stream.error = "timeout"
    except httpx.HTTPError as exc:
        stream.error = f"{type(exc).__name__}: {exc}"


async def direct_round(stack: Stack, http: httpx.AsyncClient, n: int, tokens: int, label: str) -> list[Stream]:
    streams = [Stream(f"{label}-u{i}", tokens) for i in range(n)]
    # One client (one connection, opened beforehand) per stream: httpcore's pool does work in
    # proportion to its connections on every request and close, which would load this reader.
    tls = ssl.create_default_context()  # unused on http://, but each client would load the CA file
    clients = [httpx.AsyncClient(verify=tls, timeout=httpx.Timeout(60)) for _ in range(n)]
    try:
        await asyncio.gather(*(client.get(f"{stack.upstream_url}/__bench__/ping") for client in clients))
        # Starts spread over one token interval: the tokens of the N streams interleave, as those of the
        # app's streams do (its sends are staggered by its own work), instead of arriving in one burst.
        timeout = 30 + 3 * tokens / stack.rate
        await asyncio.gather(*(direct_stream(client, stack.upstream_url, s, timeout, delay=i / n / stack.rate)
                               for i, (client, s) in enumerate(zip(clients, streams))))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    up = (await http.get(f"{stack.upstream_url}/__bench__/stats")).json()
    for stream in streams:
        stream.upstream_first = up["first_content"].get(stream.stream_id)
    return streams


# --- figures -----------------------------------------------------------------------------------
def ttfts_ms(streams: list[Stream]) -> list[float]:
    return [(s.first_delta_at - s.upstream_first) * 1000 for s in streams
            if s.ok and s.first_delta_at is not None and s.upstream_first is not None]


def summarize(n: int, tokens: int, phases: list[Phase], direct: list[Stream], idle_cpu_share: float) -> dict:
    streams = [s for p in phases for s in p.streams]
    ok = [s for s in streams if s.ok]
    replies = sum(1 for s in streams if s.end_at is not None)
    added = ttfts_ms(streams)
    direct_ms = ttfts_ms(direct)
    e2e = [(s.first_delta_at - s.sent_at) * 1000 for s in ok if s.first_delta_at is not None]
    # The direct path's request written → its first text: the same think time, no app in between.
    direct_e2e = [(s.first_delta_at - s.sent_at) * 1000 for s in direct
                  if not s.error and s.first_delta_at is not None and s.sent_at is not None]
    fps = [s.deltas / (s.end_at - s.first_delta_at) for s in ok if s.end_at and s.end_at > s.first_delta_at]
    cadence = [(s.deltas - 1) / (s.last_delta_at - s.first_delta_at) for s in ok
               if s.deltas > 1 and s.last_delta_at > s.first_delta_at]
    end_lag = [(s.end_at - s.last_delta_at) * 1000 for s in ok if s.end_at and s.last_delta_at]
    pre_request = [(s.upstream_requested - s.sent_at) * 1000 for s in ok if s.upstream_requested]
    lag_p99 = [p.loop_lag_ms["p99"] for p in phases if p.loop_lag_ms.get("samples")]
    lag_max = [p.loop_lag_ms["max"] for p in phases if p.loop_lag_ms.get("samples")]
    cpu, wall = sum(p.cpu for p in phases), sum(p.wall for p in phases)
    queries = sum(p.queries for p in phases)
    by_kind = sum((p.queries_by_kind for p in phases), Counter())
    errors = Counter(s.error.split(":")[0] if s.error.startswith("connect") else s.error for s in streams if s.error)
    if direct_errors := sum(1 for s in direct if s.error):
        errors["direct path"] = direct_errors
    problems = sum((p.log_problems for p in phases), Counter())
    return {
        "n": n,
        "tokens": tokens,
        "streams": len(streams),
        "replies": replies,
        "added_ttft_ms_p50": r(percentile(added, 50)),
        "added_ttft_ms_p99": r(percentile(added, 99)),
        "added_ttft_ms_max": r(max(added, default=None)),
        "direct_ttft_ms_p50": r(percentile(direct_ms, 50)),
        "direct_ttft_ms_p99": r(percentile(direct_ms, 99)),
        "e2e_ttft_ms_p50": r(percentile(e2e, 50), 1),
        "e2e_ttft_ms_p99": r(percentile(e2e, 99), 1),
        "direct_e2e_ttft_ms_p50": r(percentile(direct_e2e, 50), 1),
        "direct_e2e_ttft_ms_p99": r(percentile(direct_e2e, 99), 1),
        "frames_per_s_per_stream": r(statistics.fmean(fps) if fps else None),
        "frames_per_s_per_stream_min": r(min(fps, default=None)),
        "delta_cadence_per_s": r(statistics.fmean(cadence) if cadence else None),
        "reply_end_after_last_delta_ms_p50": r(percentile(end_lag, 50), 1),
        "reply_end_after_last_delta_ms_p99": r(percentile(end_lag, 99), 1),
        "send_to_upstream_request_ms_p50": r(percentile(pre_request, 50), 1),
        "send_to_upstream_request_ms_p99": r(percentile(pre_request, 99), 1),
        "deltas_per_reply": r(statistics.fmean([s.deltas for s in ok]) if ok else None, 1),
        # The reply's own statements; checkpoints (chat/durable.py) are per process and tick.
        "queries_per_reply": r((queries - by_kind["CHECKPOINT"]) / replies if replies else None),
        "checkpoints_per_reply": r(by_kind["CHECKPOINT"] / replies if replies else None),
        "checkpoints_per_s": r(by_kind["CHECKPOINT"] / wall if wall else None),
        "queries_by_kind_per_reply": {k: r(v / replies) for k, v in sorted(by_kind.items())} if replies else {},
        "db_connections_per_reply": r(sum(p.connections for p in phases) / replies if replies else None),
        # On PostgreSQL the figure above counts the pool's checkouts; this one the server's new sessions.
        "peak_rss_mb_per_process": r(max(p.peak_rss_mb for p in phases) if phases else None, 1),
        "pg_new_sessions_per_reply": r(sum(p.server_sessions for p in phases) / replies
                                       if replies and all(p.server_sessions is not None for p in phases) else None),
        "cpu_s_per_reply": r(cpu / replies if replies else None, 4),
        "cpu_s_per_reply_net_of_idle": r(max(0.0, cpu - idle_cpu_share * wall) / replies if replies else None, 4),
        "daphne_idle_cpu_share": r(idle_cpu_share, 3),
        "daphne_cpu_share": r(cpu / wall if wall else None),
        "bench_cpu_share": r(sum(p.bench_cpu for p in phases) / wall if wall else None),
        "machine_cpu_busy": r(statistics.fmean([p.machine_busy for p in phases]) if phases else None),
        # Cores used by other processes meanwhile (other jobs on the machine make every figure worse).
        "other_load_cores": r(max(0.0, sum(p.others_cpu for p in phases)) / wall if wall else None),
        "daphne_loop_lag_ms_p99": max(lag_p99, default=None),
        "daphne_loop_lag_ms_max": max(lag_max, default=None),
        "upstream_max_concurrent_streams": max((p.upstream_max_streams for p in phases), default=0),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "server_log_problems": dict(problems),
    }


def print_table(runs: list[dict], lengths: list[dict]) -> None:
    head = ("N", "replies", "err", "added p50", "added p99", "direct p50", "direct p99", "e2e p50", "e2e p99",
            "frames/s", "q/reply", "CPU s/reply", "net", "CPU share", "up streams")
    rows = [head]
    for run in runs + lengths:
        label = f"{run['n']}" + ("" if run in runs else f" ({run['tokens']} tok)")
        rows.append((label, run["replies"], run["errors"], run["added_ttft_ms_p50"], run["added_ttft_ms_p99"],
                     run["direct_ttft_ms_p50"], run["direct_ttft_ms_p99"],
                     run["e2e_ttft_ms_p50"], run["e2e_ttft_ms_p99"],
                     run["frames_per_s_per_stream"], run["queries_per_reply"], run["cpu_s_per_reply"],
                     run["cpu_s_per_reply_net_of_idle"],
                     run["daphne_cpu_share"], run["upstream_max_concurrent_streams"]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    print("TTFT in ms (added = client's first delta − upstream's first content byte); CPU = daphne process "
          "(net: less its idle burn); up streams = most concurrent upstream streams")
    for row in rows:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))
    for run in runs + lengths:
        extra = {k: run[k] for k in (
            "added_ttft_ms_max", "send_to_upstream_request_ms_p50", "send_to_upstream_request_ms_p99",
            "delta_cadence_per_s", "reply_end_after_last_delta_ms_p50", "reply_end_after_last_delta_ms_p99",
            "bench_cpu_share", "machine_cpu_busy", "other_load_cores", "daphne_loop_lag_ms_p99", "daphne_loop_lag_ms_max",
            "queries_by_kind_per_reply", "db_connections_per_reply", "error_kinds", "server_log_problems") if run[k]}
        print(f"N={run['n']} ({run['tokens']} tokens): {json.dumps(extra, ensure_ascii=False)}")


def machine() -> dict:
    with open("/proc/cpuinfo") as fh:
        model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
    with open("/proc/meminfo") as fh:
        mem_kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal"))
    from importlib.metadata import version

    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 2**20, 1),
            "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version,
            **{name: version(name) for name in ("django", "daphne", "channels", "twisted", "httpx")}}


def verdict(result: dict, sizes: list[int]) -> dict:
    """Each target of the issue, and whether this run met it (None: the run did not measure it)."""
    by_n = {run["n"]: run for run in result["runs"]}
    every = result["runs"] + result["length_check"]
    queries = {run["queries_per_reply"] for run in every if run["queries_per_reply"] is not None}
    p50 = by_n.get(1, {}).get("added_ttft_ms_p50")
    p99 = by_n.get(200, {}).get("added_ttft_ms_p99")
    return {
        "added_ttft_ms_p50_at_1": {"target": TARGETS["added_ttft_ms_p50_at_1"], "got": p50,
                                   "met": None if p50 is None else p50 <= TARGETS["added_ttft_ms_p50_at_1"]},
        "added_ttft_ms_p99_at_200": {"target": TARGETS["added_ttft_ms_p99_at_200"], "got": p99,
                                     "met": None if p99 is None else p99 <= TARGETS["added_ttft_ms_p99_at_200"]},
        "queries_per_reply": {"target": f"constant, <= {TARGETS['queries_per_reply']}", "got": sorted(queries),
                              "met": len(queries) == 1 and max(queries) <= TARGETS["queries_per_reply"]},
        "errors": {"target": 0, "got": sum(run["errors"] for run in every),
                   "met": sum(run["errors"] for run in every) == 0},
    }


# --- main --------------------------------------------------------------------------------------
async def bench(stack: Stack, args) -> dict:
    runs, lengths = [], []
    async with httpx.AsyncClient(timeout=30) as http:
        # Warm-up (not reported): imports, templates, the app's httpx pool, SQLite pages.
        await app_round(stack, http, min(2, max(args.sizes)), 10, "warm")
        stack.new_log_problems()
        # What daphne burns with nothing to do (its timers, the loop-lag probe), to net it out.
        await asyncio.sleep(1)
        cpu0, t0 = stack.web_cpu(), time.monotonic()
        await asyncio.sleep(3)
        stack.idle_cpu_share = (stack.web_cpu() - cpu0) / (time.monotonic() - t0)
        for n in args.sizes:
            rounds = args.rounds or (10 if n == 1 else 3 if n <= 50 else 2)
            print(f"N={n}: {rounds} round(s) of {args.tokens}-token replies, direct path first", file=sys.stderr)
            direct = []
            for k in range(rounds):
                direct += await direct_round(stack, http, n, args.tokens, f"d{n}-r{k}")
                await asyncio.sleep(args.pause)
            phases = []
            for k in range(rounds):
                phases.append(await app_round(stack, http, n, args.tokens, f"n{n}-r{k}"))
                await asyncio.sleep(args.pause)
            runs.append(summarize(n, args.tokens, phases, direct, stack.idle_cpu_share))
        for tokens in args.length_check:
            print(f"length check: N=1, {tokens}-token replies", file=sys.stderr)
            phases = []
            for k in range(3):
                phases.append(await app_round(stack, http, 1, tokens, f"len{tokens}-r{k}"))
                await asyncio.sleep(args.pause)
            lengths.append(summarize(1, tokens, phases, [], stack.idle_cpu_share))
        judged = (await http.get(f"{stack.upstream_url}/__bench__/stats")).json()["judge_requests"]
    return {"runs": runs, "length_check": lengths, "upstream_judge_requests": judged}


def main() -> int:
    parser = argparse.ArgumentParser(description="Streaming benchmark (see the module docstring).")
    parser.add_argument("--sizes", default="1,50,200", help="concurrent users per run (default 1,50,200)")
    parser.add_argument("--tokens", type=int, default=60, help="tokens per reply (default 60: 2 s at 30/s)")
    parser.add_argument("--rate", type=float, default=30.0, help="upstream tokens per second (default 30)")
    parser.add_argument("--think", type=float, default=0.05, help="upstream delay before the first token, s")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per N (default 10 at N=1, 3 up to 50, else 2)")
    parser.add_argument("--length-check", default="20,200", help="reply lengths for the queries check, '' for none")
    parser.add_argument("--risky", action="store_true",
                        help="questions that open with 接下来 (a weak cue): each is judged beside its reply")
    parser.add_argument("--judge-delay", type=float, default=0.3, help="the scripted judge's answer time, s")
    parser.add_argument("--pause", type=float, default=0.5, help="pause between rounds, s")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, daphne log)")
    parser.add_argument("--asgi-app", default="bench.counting_asgi:application",
                        help="what daphne serves; a wrapper of it must keep /__bench__/stats (e.g. to profile)")
    parser.add_argument("--serve", type=int, default=0, metavar="N",
                        help="serve with `manage.py serve --processes N` on a throwaway PostgreSQL and redis-server")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for the site's processes, e.g. DB_CONN_MAX_AGE=60 (repeatable)")
    args = parser.parse_args()
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.length_check = [int(x) for x in args.length_check.split(",") if x]
    global PREFIX
    PREFIX = "接下来，" if args.risky else ""

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally: below still stops the children
    extra_env = dict(item.split("=", 1) for item in args.env)
    stack = Stack(max(args.sizes), args.rate, args.think, keep=args.keep, asgi_app=args.asgi_app, extra_env=extra_env,
                  judge_delay=args.judge_delay, processes=args.serve)
    try:
        print(f"starting upstream, database and daphne in {stack.tmp}", file=sys.stderr)
        stack.start()
        result = asyncio.run(bench(stack, args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stack.close()
    result["machine"] = machine()
    result["settings"] = {"rate_tokens_per_s": args.rate, "think_s": args.think, "tokens": args.tokens,
                          "env": extra_env, "risky": args.risky, "judge_delay_s": args.judge_delay,
                          "serve_processes": args.serve, "database": "postgresql" if args.serve else "sqlite",
                          "redis": bool(args.serve)}
    result["targets"] = verdict(result, args.sizes)
    print_table(result["runs"], result["length_check"])
    other = max((run["other_load_cores"] or 0 for run in result["runs"] + result["length_check"]), default=0)
    if other > 0.2:
        print(f"warning: other processes used up to {other:.2f} cores during the runs; the figures suffer",
              file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
