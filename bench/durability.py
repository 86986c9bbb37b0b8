"""Durability benchmark: how much of a streaming reply a crash loses (docs/BENCHMARKS.md, Durable replies).

    .venv/bin/python bench/durability.py              # 8 trials, about 1.5 minutes
    .venv/bin/python bench/durability.py --trials 20

The same stack as bench/stream.py (scripted upstream at 30 tokens/s, daphne on a temporary SQLite
database). Each trial: one user sends a message that asks for a long reply; after a random time
between 1.5 and 6 s of streamed text the daphne process is killed with SIGKILL (no chance to save
anything); then the reply row is read straight from the database file and compared with what the
client had been shown. Daphne is started again and the client connects once: the reply must now
be `interrupted` with the same text (the sweep at a process's first socket).

Figures per trial: characters shown, characters saved, lost = shown − saved, and lost seconds =
how long the lost text took to arrive (the client receiving the last saved character → the last
shown one; 0 when nothing was lost). The last line
printed is one JSON object with `lost_chars` and `lost_s` (max, p50) and `trials`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.stats import percentile, r  # noqa: E402
from bench.stream import Stack, connect, machine  # noqa: E402

TOKENS = 600  # 20 s at 30 tokens/s: never finished before the kill


async def shown_until_kill(stack: Stack, account: dict, after: float) -> tuple[list[tuple[float, str]], float]:
    """Stream one reply, SIGKILL daphne `after` seconds past the first delta; the deltas seen and when."""
    ws = await connect(stack, account)
    text = f"[bench id=dur-{time.monotonic_ns()} tokens={TOKENS}] 请以长江为题，写一篇长长的游记。"
    await ws.send_text(json.dumps({"type": "send", "text": text}, ensure_ascii=False))
    deltas: list[tuple[float, str]] = []
    async with asyncio.timeout(60):
        while True:
            data, at = await ws.recv()
            frame = json.loads(data)
            if frame.get("type") == "delta":
                deltas.append((at, frame["text"]))
                if at - deltas[0][0] >= after:
                    break
            elif frame.get("type") in ("reply_end", "error"):
                raise RuntimeError(f"the reply ended before the kill: {frame}")
    # Whatever is already in flight counts as shown: read for a moment more, then kill.
    stack.daphne.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    stack.daphne.wait(10)
    try:
        while True:
            data, at = await asyncio.wait_for(ws.recv(), 1)
            frame = json.loads(data)
            if frame.get("type") == "delta":
                deltas.append((at, frame["text"]))
    except Exception:  # noqa: BLE001 - the socket died with the process, as it should
        pass
    return deltas, killed_at


def saved_reply(database: Path, conversation: int) -> tuple[str, str]:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT status, content FROM chat_message WHERE conversation_id = ? AND role = 'assistant'"
                         " ORDER BY id DESC LIMIT 1", (conversation,)).fetchone()
    return row[0], row[1]


async def trial(stack: Stack, account: dict, after: float) -> dict:
    deltas, killed_at = await shown_until_kill(stack, account, after)
    shown = "".join(text for _, text in deltas)
    status, saved = saved_reply(stack.tmp / "db.sqlite3", account["conversation"])
    if not shown.startswith(saved):
        raise RuntimeError("the saved text is not what the client was shown")
    # When did the client receive the last saved character?
    received, saved_at = 0, None
    for at, text in deltas:
        if received >= len(saved):
            break
        received += len(text)
        saved_at = at
    # The span of shown text that was not saved: from the last saved character to the last shown one.
    lost_s = max(0.0, deltas[-1][0] - (saved_at if saved_at is not None else deltas[0][0])) if shown != saved else 0.0
    stack.serve()
    ws = await connect(stack, account)  # the first socket of the new process sweeps
    await asyncio.sleep(0.5)
    await ws.close()
    status_after, text_after = saved_reply(stack.tmp / "db.sqlite3", account["conversation"])
    return {"after_s": r(after, 2), "shown_chars": len(shown), "saved_chars": len(saved),
            "lost_chars": len(shown) - len(saved), "lost_s": r(lost_s, 3), "status_at_kill": status,
            "status_after_restart": status_after, "text_kept": text_after == saved}


async def run(stack: Stack, trials: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        results.append(await trial(stack, stack.accounts[i], rng.uniform(1.5, 6.0)))
        print(json.dumps(results[-1]), file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="Text lost when daphne is killed mid-reply (module docstring).")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    # A short lease so the restarted process's sweep finds the dead reply at once.
    stack = Stack(args.trials, 30.0, 0.05, extra_env={"REPLY_LEASE_SECONDS": "1"})
    try:
        stack.start()
        results = asyncio.run(run(stack, args.trials, args.seed))
    finally:
        stack.close()
    lost = [t["lost_chars"] for t in results]
    seconds = [t["lost_s"] for t in results]
    summary = {
        "trials": len(results),
        "lost_chars_max": max(lost), "lost_chars_p50": percentile(lost, 50),
        "lost_s_max": max(seconds), "lost_s_p50": r(percentile(seconds, 50), 3),
        "lost_s_mean": r(statistics.fmean(seconds), 3),
        "interrupted_after_restart": sum(t["status_after_restart"] == "interrupted" for t in results),
        "text_kept_after_restart": sum(t["text_kept"] for t in results),
        "checkpoint_seconds": 1.0, "rate_tokens_per_s": 30.0,
        "machine": machine(), "per_trial": results,
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
