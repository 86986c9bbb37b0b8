"""Scripted OpenAI-style chat/completions upstream for bench/stream.py, on 127.0.0.1 only.

    python -m bench.upstream [--rate 30] [--think 0.05] [--judge-delay 0.3]

Prints `PORT <n>` on its first stdout line. Every POST .../chat/completions streams SSE: a role
chunk at once, then (after `--think` seconds) one Chinese token every 1/rate s on an absolute
schedule, a finish_reason chunk, a usage chunk with `choices: []`, and `data: [DONE]`.

The last user message must carry a tag `[bench id=<id> tokens=<n>]`: the id names the stream, n
is its length. Just before the first content token is written, `time.monotonic()` is recorded
under the id, as is the time the request had been read in full (CLOCK_MONOTONIC is one clock for
all processes on Linux, so the client compares these with its own monotonic clock).
A request whose first message is the guard judge's instructions (chat/guard/judge.py) is answered
`in_scope` after `--judge-delay` seconds, and counted apart (`judge_requests`).
`GET /__bench__/stats` answers those times and a few counters as JSON (`?reset=1` restarts the
high-water mark of concurrent streams); `GET /__bench__/ping` answers `{}` (to open connections).

Stdlib only; one asyncio loop; HTTP/1.1 keep-alive; TCP_NODELAY like any real SSE server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import time

JUDGE_OPENING = "你是一个内容分类器"  # chat/guard/judge.py's SYSTEM starts so
TAG = re.compile(r"\[bench id=([\w.-]+) tokens=(\d+)\]")
# The reply is this text cycled, one character per token.
POEM = "床前明月光疑是地上霜举头望明月低头思故乡朝辞白帝彩云间千里江陵一日还两岸猿声啼不住轻舟已过万重山"


def reply_text(tokens: int) -> str:
    return "".join(POEM[i % len(POEM)] for i in range(tokens))


def _event(obj: dict) -> bytes:
    data = b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


class Server:
    def __init__(self, rate: float, think: float, judge_delay: float = 0.3):
        self.rate, self.think, self.judge_delay = rate, think, judge_delay
        self.judge_requests = 0
        self.first_content: dict[str, float] = {}
        self.requested: dict[str, float] = {}  # when the request had been read in full
        self.requests = self.completed = self.client_gone = self.bad_requests = 0
        self.open_streams = self.max_open_streams = 0
        self.errors: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if method == "GET" and target == "/__bench__/ping":
                    await self._json(writer, 200, {})
                elif method == "GET" and target.startswith("/__bench__/stats"):
                    await self._json(writer, 200, self.stats())
                    if "reset" in target:  # max_open_streams then covers the next phase only
                        self.max_open_streams = self.open_streams
                elif method == "POST" and target.endswith("/chat/completions"):
                    if not await self._completion(writer, body):
                        return
                else:
                    await self._json(writer, 404, {"error": {"message": f"no route {method} {target}"}})
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_gone += 1
        except Exception as exc:  # noqa: BLE001 - keep serving, report at the end
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()

    def stats(self) -> dict:
        return {
            "first_content": self.first_content, "requested": self.requested,
            "requests": self.requests, "judge_requests": self.judge_requests, "completed": self.completed, "client_gone": self.client_gone,
            "bad_requests": self.bad_requests,
            "max_open_streams": self.max_open_streams, "errors": self.errors[-20:],
        }

    async def _json(self, writer: asyncio.StreamWriter, status: int, obj: dict) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, len(body), body))
        await writer.drain()

    async def _judge(self, writer: asyncio.StreamWriter) -> bool:
        """The guard judge's one-label answer, after a scripted think time."""
        self.judge_requests += 1
        await asyncio.sleep(self.judge_delay)
        base = {"id": "chatcmpl-judge", "object": "chat.completion.chunk", "model": "bench"}
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            writer.write(_event({**base, "choices": [{"index": 0, "delta": {"content": "in_scope"},
                                                      "finish_reason": None}]}))
            writer.write(_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
            writer.write(b"%x\r\n%s\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            return False
        return True

    async def _completion(self, writer: asyncio.StreamWriter, body: bytes) -> bool:
        """Stream one reply; False when the client went away (the connection is then closed)."""
        received = time.monotonic()
        try:
            payload = json.loads(body)
            first = payload["messages"][0]
        except Exception:  # noqa: BLE001
            payload, first = {}, {}
        if first.get("role") == "system" and first.get("content", "").startswith(JUDGE_OPENING):
            return await self._judge(writer)
        self.requests += 1
        try:
            user_texts = [m["content"] for m in payload["messages"] if m.get("role") == "user"]
            match = TAG.search(user_texts[-1])
            assert match is not None
        except Exception:  # noqa: BLE001
            self.bad_requests += 1
            await self._json(writer, 400, {"error": {"message": "bench upstream: no [bench id=… tokens=…] tag"}})
            return True
        stream_id, tokens = match.group(1), int(match.group(2))
        self.requested[stream_id] = received
        chunk_id = f"chatcmpl-{stream_id}"
        base = {"id": chunk_id, "object": "chat.completion.chunk", "model": payload.get("model", "bench")}
        self.open_streams += 1
        self.max_open_streams = max(self.max_open_streams, self.open_streams)
        try:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            writer.write(_event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                      "finish_reason": None}]}))
            await writer.drain()
            loop = asyncio.get_running_loop()
            start = loop.time() + self.think
            for i in range(tokens):
                delay = start + i / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = _event({**base, "choices": [{"index": 0, "delta": {"content": POEM[i % len(POEM)]},
                                                    "finish_reason": None}]})
                if i == 0:
                    self.first_content[stream_id] = time.monotonic()
                writer.write(data)
                await writer.drain()
            writer.write(_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
            writer.write(_event({**base, "choices": [], "usage": {
                "prompt_tokens": 1000, "completion_tokens": tokens, "total_tokens": 1000 + tokens}}))
            data = b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
            await writer.drain()
            self.completed += 1
            return True
        except ConnectionError:
            self.client_gone += 1
            return False
        finally:
            self.open_streams -= 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=30.0, help="tokens per second")
    parser.add_argument("--think", type=float, default=0.05, help="seconds before the first token")
    parser.add_argument("--judge-delay", type=float, default=0.3, help="seconds before the guard judge's answer")
    args = parser.parse_args()
    server = Server(args.rate, args.think, args.judge_delay)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=1024)
    print(f"PORT {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
