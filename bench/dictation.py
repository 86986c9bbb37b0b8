"""Dictation benchmark: upload → text latency of `POST /chat/dictation/` at 1 and 20 concurrent users.

    .venv/bin/python bench/dictation.py                  # 1 and 20 users, 5 s recordings
    .venv/bin/python bench/dictation.py --sizes 1,5,20 --rounds 3 --think 0.3

Everything runs on 127.0.0.1 in a temporary directory (removed at the end): the scripted upstream
(tests/fakes/upstream.py) answering `POST /api/v1/audio/transcriptions` with `{"text": ...}` after
`--think` seconds, and the site under daphne (tests/e2e/live_app.py, as `make run` serves it) whose
site-wide key points at it with a transcription model. Each user is a logged-in session
(bench/setup_data.py). A round is N users posting a WebM recording at once (bench client: httpx);
N = 1 runs `--rounds` × 20 requests one after the other.

Per N it reports the latency from the client starting the upload to the text received (p50, p95,
max), the same call made straight to the upstream (no site in between: the floor), and errors
(a status other than 200, or text other than the upstream's). The last line printed is one JSON object:
{"recording_s": s, "think_ms": x, "n1_p50_ms": x, "n1_p95_ms": x, "n20_p50_ms": x, "n20_p95_ms": x,
 "direct_n1_p50_ms": x, "direct_n20_p50_ms": x, "errors": n}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.chat.audio_samples import webm  # noqa: E402
from tests.e2e.live_app import LiveApp  # noqa: E402
from tests.fakes.upstream import Upstream, json_reply  # noqa: E402

TEXT = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
PATH = "/api/v1/audio/transcriptions"
ENABLE = ("from accounts.models import ApiCredential; "
          "ApiCredential.objects.filter(owner=None).update(transcription_model='whisper-1')")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,20", help="concurrent users, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the recording sent")
    parser.add_argument("--think", type=float, default=0.2, help="seconds the upstream takes to answer")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="guyue-dictation-bench-"))
    try:
        with Upstream() as upstream:
            upstream.route("POST", PATH, json_reply(200, {"text": TEXT}, header_delay=args.think), repeat=True)
            app = LiveApp(workdir, upstream.url + "/api/v1", DICTATION_LIMIT_PER_MINUTE="100000",
                          LOG_LEVEL="WARNING").start()
            try:
                app.manage_output("shell", "-c", ENABLE)
                accounts = make_accounts(app, max(sizes), workdir)
                return asyncio.run(run(args, sizes, app, upstream, accounts))
            finally:
                app.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def make_accounts(app: LiveApp, users: int, workdir: Path) -> list[dict]:
    out = workdir / "accounts.json"
    subprocess.run([sys.executable, "-m", "bench.setup_data", str(users), str(out)], cwd=REPO, env=app.env,
                   check=True, capture_output=True, timeout=300)
    return json.loads(out.read_text())


async def run(args, sizes: list[int], app: LiveApp, upstream: Upstream, accounts: list[dict]) -> int:
    audio = webm(args.seconds)
    summary: dict = {"recording_s": args.seconds, "think_ms": round(args.think * 1000)}
    errors = 0
    clients = [site_client(app.url, account) for account in accounts]
    direct = [httpx.AsyncClient(base_url=upstream.url, timeout=60) for _ in accounts]
    try:
        await asyncio.gather(*(upload(c, audio) for c in clients[:max(sizes)]))  # warm-up, not counted
        for n in sizes:
            site, site_errors = await measure(lambda i: upload(clients[i], audio), n, args.rounds)
            floor, _ = await measure(lambda i: upload_direct(direct[i], audio), n, args.rounds)
            errors += site_errors
            print(f"N={n:>3}: upload → text p50 {pct(site, 50):.1f} ms, p95 {pct(site, 95):.1f} ms, "
                  f"max {max(site):.1f} ms over {len(site)} uploads; straight to the upstream p50 "
                  f"{pct(floor, 50):.1f} ms; errors {site_errors}", flush=True)
            summary.update({f"n{n}_p50_ms": round(pct(site, 50), 1), f"n{n}_p95_ms": round(pct(site, 95), 1),
                            f"direct_n{n}_p50_ms": round(pct(floor, 50), 1)})
    finally:
        await asyncio.gather(*(c.aclose() for c in clients + direct))
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}; recording {len(audio)} bytes, upstream think {args.think} s")
    problems = [line for line in app.server_log().splitlines() if "Traceback" in line]
    if problems:
        print(f"daphne logged {len(problems)} traceback(s)")
    summary["errors"] = errors
    print(json.dumps(summary))
    return 0 if errors == 0 else 1


def site_client(base: str, account: dict) -> httpx.AsyncClient:
    # Django accepts a 32-character secret as both the CSRF cookie and the header token.
    token = secrets.token_hex(16)
    return httpx.AsyncClient(base_url=base, timeout=120, headers={"X-CSRFToken": token},
                             cookies={"sessionid": account["sessionid"], "csrftoken": token})


async def measure(call, n: int, rounds: int) -> tuple[list[float], int]:
    latencies, errors = [], 0
    batches = [[0]] * (rounds * 20) if n == 1 else [list(range(n))] * rounds
    for batch in batches:
        for ms, ok in await asyncio.gather(*(timed(call, i) for i in batch)):
            latencies.append(ms)
            errors += not ok
    return latencies, errors


async def timed(call, i: int) -> tuple[float, bool]:
    started = time.monotonic()
    ok = await call(i)
    return (time.monotonic() - started) * 1000, ok


async def upload(client: httpx.AsyncClient, audio: bytes) -> bool:
    response = await client.post("/chat/dictation/", content=audio, headers={"Content-Type": "audio/webm"})
    return response.status_code == 200 and response.json().get("text") == TEXT


async def upload_direct(client: httpx.AsyncClient, audio: bytes) -> bool:
    response = await client.post(PATH, files={"file": ("recording.webm", audio, "audio/webm")},
                                 data={"model": "whisper-1", "language": "zh"})
    return response.status_code == 200


def pct(values: list[float], p: int) -> float:
    return values[0] if len(values) == 1 else statistics.quantiles(values, n=100, method="inclusive")[p - 1]


if __name__ == "__main__":
    sys.exit(main())
