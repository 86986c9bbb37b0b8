"""朗读 benchmark: how soon after a reply's first sentence ends its audio reaches the page.

    .venv/bin/python bench/speech.py                      # 1 and 20 concurrent readers
    .venv/bin/python bench/speech.py --sizes 1,20 --rounds 5 --speech-delay 0.2

The site runs under daphne in a temporary directory (bench/stream.py's Stack: own SQLite database,
seeded figures, a site-wide key, one conversation and session per reader), its key pointing at a
scripted upstream that this file also is (`--upstream`): chat/completions streams 「君问何事？且」,
waits `--pause` s, then 「听白道来。」; audio/speech answers a short real mp3 after `--speech-delay`
s (default 0, so the figure is the site's own cost; a real endpoint adds its first-byte time).
`--think` delays the first words (default 0: the first sentence is final in the very first delta,
while every reply of the round is still starting, the worst case for the site).

Each reader does what static/js/speech.js does under 自动朗读: it sends a question on the socket and,
at `reply_start`, asks GET /chat/m/<id>/speech/0.mp3 (the server waits for sentence 0 to become
final). Measured per reply, on this process's monotonic clock: from the delta frame in which the
first sentence is final (its end and what follows it reached the page) to the first body bytes of
the audio response. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.stats import percentile, r  # noqa: E402
from bench.stream import HOST, PROMPTS, Stack, connect, machine  # noqa: E402

FIRST, REST = "君问何事？且", "听白道来。"
TAG = re.compile(r"\[bench id=([\w.-]+)\]")


# --- the scripted upstream (a process of its own, like bench/upstream.py) ----------------------------
class Upstream:
    def __init__(self, think: float, pause: float, speech_delay: float):
        from tests.fakes.speech import silent_mp3

        self.think, self.pause, self.speech_delay, self.mp3 = think, pause, speech_delay, silent_mp3(1.0)
        self.speech_calls = self.chat_calls = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = next((int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                               if k.strip().lower() == "content-length"), 0)
                await reader.readexactly(length)
                if target.endswith("/audio/speech"):
                    await self._speech(writer)
                elif target.endswith("/chat/completions"):
                    await self._chat(writer)
                elif target.startswith("/__bench__/stats"):
                    self._send(writer, 200, "application/json",
                               json.dumps({"speech_calls": self.speech_calls, "chat_calls": self.chat_calls}).encode())
                else:
                    self._send(writer, 404, "application/json", b'{"error": {"message": "no route"}}')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _send(writer, status: int, kind: str, body: bytes) -> None:
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, kind.encode(), len(body), body))

    async def _speech(self, writer) -> None:
        self.speech_calls += 1
        if self.speech_delay:
            await asyncio.sleep(self.speech_delay)
        self._send(writer, 200, "audio/mpeg", self.mp3)

    async def _chat(self, writer) -> None:
        self.chat_calls += 1

        def event(obj: dict) -> bytes:
            data = b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"
            return b"%x\r\n%s\r\n" % (len(data), data)

        def text(piece: str) -> bytes:
            return event({"id": "c", "object": "chat.completion.chunk",
                          "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})

        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(self.think)
        writer.write(text(FIRST))
        await writer.drain()
        await asyncio.sleep(self.pause)
        writer.write(text(REST) + event({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        done = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))


async def serve_upstream(think: float, pause: float, speech_delay: float) -> None:
    upstream = Upstream(think, pause, speech_delay)
    listener = await asyncio.start_server(upstream.handle, HOST, 0, backlog=1024)
    print(f"PORT {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await listener.serve_forever()


class SpeechStack(Stack):
    """bench/stream.py's stack with this file's upstream in place of bench/upstream.py."""

    def __init__(self, users: int, think: float, pause: float, speech_delay: float):
        super().__init__(users, rate=30.0, think=think, extra_env={"SPEECH_LIMIT_PER_MINUTE": "1000000"})
        self.pause, self.speech_delay = pause, speech_delay

    def _spawn(self, command: list[str], name: str, **kwargs) -> subprocess.Popen:
        if name == "upstream":
            command = [sys.executable, "-m", "bench.speech", "--upstream", "--think", str(self.think),
                       "--pause", str(self.pause),
                       "--speech-delay", str(self.speech_delay)]
        return super()._spawn(command, name, **kwargs)


# --- one reader ----------------------------------------------------------------------------------
async def read_one(stack: Stack, http: httpx.AsyncClient, account: dict, label: str, question: str) -> dict:
    from chat.speech.sentences import split_sentences

    ws = await connect(stack, account)
    out: dict = {"error": ""}
    audio: asyncio.Task | None = None

    async def fetch(url: str) -> None:
        async with http.stream("GET", url, cookies={"sessionid": account["sessionid"]}) as response:
            async for chunk in response.aiter_bytes():
                if chunk and "audio_at" not in out:
                    out["audio_at"], out["status"] = time.monotonic(), response.status_code
            out.setdefault("status", response.status_code)

    try:
        await ws.send_text(json.dumps({"type": "send", "text": f"[bench id={label}] {question}"},
                                      ensure_ascii=False))
        shown = ""
        async with asyncio.timeout(60):
            while True:
                data, at = await ws.recv()
                frame = json.loads(data)
                if frame["type"] == "reply_start":
                    audio = asyncio.create_task(fetch(f"{stack.origin}/chat/m/{frame['id']}/speech/0.mp3"))
                elif frame["type"] == "delta":
                    shown += frame["text"]
                    if "final_at" not in out and split_sentences(shown, complete=False):
                        out["final_at"] = at
                elif frame["type"] in ("reply_end", "error"):
                    break
            if audio is not None:
                await audio
    except Exception as exc:  # noqa: BLE001 - counted, reported
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await ws.close()
    if not out["error"] and (out.get("status") != 200 or "final_at" not in out or audio is None):
        out["error"] = f"status {out.get('status')}, final {'final_at' in out}"
    return out


async def bench(stack: Stack, sizes: list[int], rounds: int) -> list[dict]:
    runs = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        # Another question each round: the same words again are what the input guard calls circling.
        await read_one(stack, http, stack.accounts[-1], "warm", PROMPTS[-1])  # imports, templates, pools
        for n in sizes:
            waits, errors = [], []
            for k in range(rounds):
                question = PROMPTS[(len(runs) * rounds + k) % (len(PROMPTS) - 1)]
                results = await asyncio.gather(*(read_one(stack, http, stack.accounts[i], f"n{n}-r{k}-{i}", question)
                                                 for i in range(n)))
                for result in results:
                    if result["error"]:
                        errors.append(result["error"])
                    else:
                        waits.append((result["audio_at"] - result["final_at"]) * 1000)
            runs.append({"n": n, "replies": len(waits), "errors": len(errors), "error_samples": errors[:3],
                         "first_audio_ms_p50": r(percentile(waits, 50), 1),
                         "first_audio_ms_p99": r(percentile(waits, 99), 1),
                         "first_audio_ms_max": r(max(waits), 1) if waits else None})
            print(f"N={n}: {runs[-1]}", file=sys.stderr)
        calls = (await http.get(f"{stack.upstream_url}/__bench__/stats")).json()
    return runs, calls


def main() -> int:
    parser = argparse.ArgumentParser(description="朗读 benchmark (see the module docstring).")
    parser.add_argument("--sizes", default="1,20", help="concurrent readers per run (default 1,20)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="the model's wait before its first words, s (0: the page asks while the reply starts)")
    parser.add_argument("--pause", type=float, default=2.0, help="the model's pause after the first sentence, s")
    parser.add_argument("--speech-delay", type=float, default=0.0, help="the speech endpoint's time to answer, s")
    parser.add_argument("--upstream", action="store_true", help="(internal) be the scripted upstream")
    args = parser.parse_args()
    if args.upstream:
        asyncio.run(serve_upstream(args.think, args.pause, args.speech_delay))
        return 0
    sizes = [int(x) for x in args.sizes.split(",") if x]
    stack = SpeechStack(max(sizes), args.think, args.pause, args.speech_delay)
    try:
        print(f"starting upstream, database and daphne in {stack.tmp}", file=sys.stderr)
        stack.start()
        stack._run([sys.executable, "manage.py", "shell", "-c", "from accounts.models import ApiCredential; "
                    "ApiCredential.objects.filter(owner=None).update(speech_model='tts-1')"])
        runs, calls = asyncio.run(bench(stack, sizes, args.rounds))
        problems = stack.new_log_problems()
    finally:
        stack.close()
    result = {"runs": runs, "upstream": calls, "log_problems": dict(problems), "machine": machine(),
              "settings": {"think_s": args.think, "pause_s": args.pause, "speech_delay_s": args.speech_delay, "rounds": args.rounds},
              "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
