"""A real daphne process stopped mid-reply: SIGKILL keeps what was checkpointed, SIGTERM keeps all
that was written, and after the restart the reply is interrupted, continuable and followed."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from bench.wsclient import WebSocket
from tests.e2e.live_app import ROOT, LiveApp
from tests.fakes.upstream import sse_reply

PATH = "/api/v1/chat/completions"
PIECES = [f"第{i}句。" for i in range(400)]  # 40 s at one piece per 0.1 s: far longer than the test
HANG_GUARD = 60


def slow_stream():
    events = []
    for piece in PIECES:
        events += [{"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}, 0.1]
    return sse_reply(events + ["data: [DONE]\n\n"])


def quick_stream(text: str):
    return sse_reply([{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
                      {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, "data: [DONE]\n\n"])


@pytest.fixture
def live(tmp_path, upstream):
    app = LiveApp(tmp_path, upstream.url + "/api/v1", REPLY_CHECKPOINT_SECONDS="1", REPLY_LEASE_SECONDS="2").start()
    out = tmp_path / "accounts.json"
    subprocess.run([sys.executable, "-m", "bench.setup_data", "1", str(out)], cwd=ROOT, env=app.env, check=True,
                   timeout=120)
    app.account = json.loads(out.read_text())[0]
    app.db = tmp_path / "db.sqlite3"
    yield app
    app.stop()


def reply_row(app) -> tuple | None:
    with sqlite3.connect(app.db) as db:
        return db.execute("SELECT id, status, content, parent_id FROM chat_message WHERE role = 'assistant' "
                          "AND provider != 'greeting' ORDER BY id DESC LIMIT 1").fetchone()


async def socket_for(app) -> WebSocket:
    return await WebSocket.connect("127.0.0.1", app.port, f"/ws/chat/{app.account['conversation']}/", {
        "Origin": app.url, "Cookie": f"sessionid={app.account['sessionid']}"})


async def frame(ws, kind: str) -> dict:
    while True:
        data, _ = await asyncio.wait_for(ws.recv(), HANG_GUARD)
        got = json.loads(data)
        if got["type"] == kind or got["type"] == "error":
            return got


async def stream_then(app, *, until_saved: int) -> str:
    """Send a message, read deltas until the database holds `until_saved` characters of the reply,
    and return the text the client has seen by then (the socket is left open)."""
    ws = await socket_for(app)
    await ws.send_text(json.dumps({"type": "send", "text": "讲一个很长的故事"}))
    seen, deadline = "", time.monotonic() + HANG_GUARD
    while True:
        data, _ = await asyncio.wait_for(ws.recv(), HANG_GUARD)
        got = json.loads(data)
        if got["type"] == "delta":
            seen += got["text"]
        row = reply_row(app)
        if row and len(row[2]) >= until_saved:
            app.open_socket = ws
            return seen
        assert time.monotonic() < deadline, "the reply was never checkpointed"


def page(app) -> str:
    request = urllib.request.Request(f"{app.url}/chat/{app.account['conversation']}/",
                                     headers={"Cookie": f"sessionid={app.account['sessionid']}"})
    with urllib.request.urlopen(request, timeout=HANG_GUARD) as response:
        return response.read().decode()


def wait_for_page(app, text: str) -> str:
    deadline = time.monotonic() + HANG_GUARD
    while text not in (body := page(app)):
        assert time.monotonic() < deadline, f"the page never showed {text}"
        time.sleep(0.2)
    return body


async def test_sigkill_mid_reply_keeps_the_checkpointed_text_and_the_restart_offers_to_continue(live, upstream):
    upstream.route("POST", PATH, slow_stream())
    seen = await stream_then(live, until_saved=30)
    checkpointed = reply_row(live)[2]
    assert live.kill(signal.SIGKILL) == -signal.SIGKILL
    reply_id, status, content, question_id = reply_row(live)
    # Nothing checkpointed is lost, and only text the user was shown was saved.
    assert status == "streaming" and content.startswith(checkpointed) and seen.startswith(content)

    live.serve()
    body = wait_for_page(live, "已中断")  # the lease lapsed: the page marks it, lazily
    assert f'data-action="continue" data-message-id="{reply_id}"' in body and content[-10:] in body
    assert reply_row(live)[1:3] == ("interrupted", content)

    upstream.route("POST", PATH, quick_stream("后来呢，且听下回。"), quick_stream("续完。"))
    ws = await socket_for(live)
    await ws.send_text(json.dumps({"type": "send", "text": "然后呢？"}))
    sent = await frame(ws, "message")
    assert sent["message"]["parent_id"] == reply_id  # follows the reply, not the unanswered question
    assert (await frame(ws, "reply_end"))["message"]["status"] == "complete"
    await ws.send_text(json.dumps({"type": "continue", "message_id": reply_id}))
    end = await frame(ws, "reply_end")
    assert end["message"]["status"] == "complete" and end["message"]["parent_id"] == question_id
    with sqlite3.connect(live.db) as db:
        (continued,) = db.execute("SELECT content FROM chat_message WHERE id = ?", (end["message"]["id"],)).fetchone()
    assert continued == content + "续完。"
    await ws.close()


async def test_sigterm_mid_reply_saves_everything_written_as_stopped(live, upstream):
    upstream.route("POST", PATH, slow_stream())
    seen = await stream_then(live, until_saved=1)
    assert live.kill(signal.SIGTERM) == 0
    _, status, content, _ = reply_row(live)
    assert status == "stopped" and content.startswith(seen) and len(content) > 0
