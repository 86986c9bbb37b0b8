"""Past one machine, for real: nginx in front of two daphne processes on PostgreSQL and Redis. A chat
through the proxy; the reply lock, the send rate and the login throttle span both processes; a second
tab on the other process follows a reply live; a process killed mid-reply leaves the reply durable
for the survivor; and `manage.py serve` runs N daphne processes on one socket under supervisord."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import httpx
import pytest
import redis

from bench.wsclient import WebSocket
from guyue.lib import supervise
from tests.chat.test_consumer import stream
from tests.cluster.conftest import LOGIN_FAILURE_LIMIT, SEND_LIMIT
from tests.cluster.stack import HANG_GUARD, ROOT, UPSTREAM_HEADER
from tests.fakes.upstream import Gate
from tests.servers import free_port

pytestmark = pytest.mark.cluster

PATH = "/api/v1/chat/completions"
# Questions unlike each other (the input guard answers messages that go in circles itself, with no call).
QUESTIONS = ["黄河之水从何而来？", "蜀道难在何处？", "长安的酒可好？", "月下独酌是何心境？", "再问一句"]


def login(stack, user: dict, password: str | None = None, client: httpx.Client | None = None,
          **headers: str) -> tuple[httpx.Client, httpx.Response]:
    client = client or httpx.Client(base_url=stack.nginx.url, timeout=HANG_GUARD)
    if "csrftoken" not in client.cookies:
        client.get("/accounts/login/")
    response = client.post("/accounts/login/", headers=headers, data={
        "username": user["username"], "password": password or user["password"],
        "csrfmiddlewaretoken": client.cookies["csrftoken"]})
    return client, response


def logged_in(stack, user: dict) -> httpx.Client:
    client, response = login(stack, user)
    assert response.status_code == 302 and "sessionid" in client.cookies, response.text[-2000:]
    return client


async def socket(stack, client: httpx.Client, conversation: int, *, avoid: str | None = None) -> WebSocket:
    """A websocket through nginx; with `avoid`, one that another daphne than that serves (round robin)."""
    for _ in range(8):
        ws = await WebSocket.connect("127.0.0.1", stack.nginx.port, f"/ws/chat/{conversation}/", {
            "Origin": stack.nginx.url, "Cookie": f"sessionid={client.cookies['sessionid']}"})
        if avoid is None or ws.headers[UPSTREAM_HEADER] != avoid:
            return ws
        await ws.close()
    raise AssertionError(f"nginx never sent a websocket past {avoid}")


async def send(ws: WebSocket, frame: dict) -> None:
    await ws.send_text(json.dumps(frame, ensure_ascii=False))


async def frames_until(ws: WebSocket, kind: str) -> list[dict]:
    """Frames up to the first of `kind` (or an error, which ends any wait)."""
    frames = []
    while True:
        data, _ = await asyncio.wait_for(ws.recv(), HANG_GUARD)
        frames.append(json.loads(data))
        if frames[-1]["type"] in (kind, "error"):
            return frames


def kinds(frames: list[dict]) -> list[str]:
    # A first exchange also titles the conversation: its `title` frame may come at any point.
    return [f["type"] for f in frames if f["type"] not in ("delta", "title")]


def text_of(frames: list[dict]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


def reply_row(stack, conversation: int) -> tuple:
    [row] = stack.query("SELECT id, status, content FROM chat_message WHERE conversation_id = %s AND role = 'assistant'"
                        " AND provider != 'greeting' ORDER BY id DESC LIMIT 1", conversation)
    return row


async def test_a_chat_through_nginx_logs_in_and_streams_a_reply(stack):
    [user] = stack.users(1)
    client = logged_in(stack, user)
    page = client.get(f"/chat/{user['conversation']}/")
    assert page.status_code == 200 and "李白" in page.text
    stack.upstream.route("POST", PATH, stream("君问", "何事？", "且听", "白道来。", gap=0.05))
    ws = await socket(stack, client, user["conversation"])
    await send(ws, {"type": "send", "text": "太白兄，别来无恙？"})
    frames = await frames_until(ws, "reply_end")
    assert kinds(frames) == ["message", "reply_start", "reply_end"]
    assert frames[0]["message"]["role"] == "user" and text_of(frames) == "君问何事？且听白道来。"
    assert frames[-1]["message"]["status"] == "complete"
    assert reply_row(stack, user["conversation"])[1:] == ("complete", "君问何事？且听白道来。")
    await ws.close()


async def test_a_second_tab_on_the_other_process_follows_the_reply_live(stack):
    [user] = stack.users(1)
    client = logged_in(stack, user)
    sender = await socket(stack, client, user["conversation"])
    follower = await socket(stack, client, user["conversation"], avoid=sender.headers[UPSTREAM_HEADER])
    pieces = [f"第{i}句。" for i in range(12)]
    stack.upstream.route("POST", PATH, stream(*pieces, gap=0.05))
    await send(sender, {"type": "send", "text": "讲个故事"})
    sent, followed = await frames_until(sender, "reply_end"), await frames_until(follower, "reply_end")
    # Each frame once on the sending socket; all of them, through Redis, on the other process's socket.
    assert kinds(sent) == kinds(followed) == ["message", "reply_start", "reply_end"]
    assert text_of(sent) == text_of(followed) == "".join(pieces)
    assert followed[-1]["message"]["id"] == sent[-1]["message"]["id"]
    with pytest.raises(TimeoutError):  # no echo of its own frames came after them either
        while True:
            data, _ = await asyncio.wait_for(sender.recv(), 1)
            assert json.loads(data)["type"] == "title", data  # the first exchange titles the conversation
    await sender.close()
    await follower.close()


async def test_the_reply_lock_holds_across_the_two_processes(stack):
    [user] = stack.users(1)
    client = logged_in(stack, user)
    first = await socket(stack, client, user["conversation"])
    second = await socket(stack, client, user["conversation"], avoid=first.headers[UPSTREAM_HEADER])
    held = Gate(timeout=HANG_GUARD)
    answer = stream("慢慢道来。")
    answer.hold = held
    stack.upstream.route("POST", PATH, answer)
    await send(first, {"type": "send", "text": "先问一句"})
    assert kinds(await frames_until(first, "reply_start")) == ["message", "reply_start"]
    await send(second, {"type": "send", "text": "再问一句"})
    refused = await frames_until(second, "error")  # (the first tab's frames, followed, come first)
    assert refused[-1]["code"] == "busy" and "另一个窗口" in refused[-1]["message"]
    held.release()
    assert (await frames_until(first, "reply_end"))[-1]["message"]["status"] == "complete"
    await frames_until(second, "reply_end")  # the first tab's reply, followed
    stack.upstream.route("POST", PATH, stream("又道。"))
    await send(second, {"type": "send", "text": "再问一句"})
    assert (await frames_until(second, "reply_end"))[-1]["message"]["status"] == "complete"  # the lock was let go
    await first.close()
    await second.close()


async def test_the_send_rate_limit_counts_across_the_two_processes(stack):
    [user] = stack.users(1)
    client = logged_in(stack, user)
    one = await socket(stack, client, user["conversation"])
    two = await socket(stack, client, user["conversation"], avoid=one.headers[UPSTREAM_HEADER])
    for turn, question in enumerate(QUESTIONS[:SEND_LIMIT]):  # half of them on each process
        here, there = (one, two) if turn % 2 == 0 else (two, one)
        stack.upstream.route("POST", PATH, stream(f"答{turn}。"))
        await send(here, {"type": "send", "text": question})
        assert text_of(await frames_until(here, "reply_end")) == f"答{turn}。"
        await frames_until(there, "reply_end")  # followed
    await send(one, {"type": "send", "text": QUESTIONS[SEND_LIMIT]})
    assert (await frames_until(one, "error"))[-1]["code"] == "rate_limited"
    await one.close()
    await two.close()


def test_the_login_throttle_counts_across_the_two_processes_and_ignores_forged_addresses(stack):
    [user] = stack.users(1)
    client, served = httpx.Client(base_url=stack.nginx.url, timeout=HANG_GUARD), set()
    for attempt in range(LOGIN_FAILURE_LIMIT):  # nginx takes turns: the posts alternate between the processes
        # A forged X-Forwarded-For changes nothing: nginx replaces it with the address it saw.
        _, response = login(stack, user, "wrong-password", client, **{"X-Forwarded-For": f"10.0.0.{attempt}"})
        assert response.status_code == 200 and "sessionid" not in client.cookies
        served.add(response.headers[UPSTREAM_HEADER])
    assert served == {daphne.address for daphne in stack.daphnes}  # each process saw only some of them
    _, response = login(stack, user, client=client, **{"X-Forwarded-For": "10.0.0.99"})
    assert "sessionid" not in client.cookies and "登录失败次数过多" in response.text


async def test_a_process_killed_mid_reply_leaves_the_reply_durable_for_the_survivor(stack):
    [user] = stack.users(1)
    conversation = user["conversation"]
    client = logged_in(stack, user)
    ws = await socket(stack, client, conversation)
    victim = stack.by_address(ws.headers[UPSTREAM_HEADER])
    [survivor] = [daphne for daphne in stack.daphnes if daphne is not victim]
    stack.upstream.route("POST", PATH, stream(*[f"第{i}句。" for i in range(400)], gap=0.1))  # far longer than the test
    await send(ws, {"type": "send", "text": "讲一个很长的故事"})
    seen = ""
    while True:
        frame = json.loads((await asyncio.wait_for(ws.recv(), HANG_GUARD))[0])
        assert frame["type"] not in ("error", "reply_end"), frame
        seen += frame.get("text", "") if frame["type"] == "delta" else ""
        if frame["type"] == "delta" and len(reply_row(stack, conversation)[2]) >= 20:
            break
    assert victim.kill() == -signal.SIGKILL
    reply_id, status, saved = reply_row(stack, conversation)
    assert status == "streaming" and seen.startswith(saved)  # checkpointed, and only what was shown

    # The page, through nginx, now comes from the survivor; once the lease lapses it shows the partial reply.
    deadline = time.monotonic() + HANG_GUARD
    while "已中断" not in (page := client.get(f"/chat/{conversation}/")).text:
        assert time.monotonic() < deadline, "the reply was never marked interrupted"
        time.sleep(0.3)
    assert page.headers[UPSTREAM_HEADER] == survivor.address
    assert saved[-8:] in page.text and f'data-action="continue" data-message-id="{reply_id}"' in page.text
    assert reply_row(stack, conversation)[1:] == ("interrupted", saved)

    # Reconnected to the survivor, the user continues it once the dead process's reply lock has lapsed.
    again = await socket(stack, client, conversation)
    assert again.headers[UPSTREAM_HEADER] == survivor.address
    lock = redis.Redis.from_url(stack.env["REDIS_URL"])
    deadline = time.monotonic() + HANG_GUARD
    while lock.exists(f":1:reply-lock:{conversation}"):
        assert time.monotonic() < deadline, "the dead process's reply lock never lapsed"
        await asyncio.sleep(0.5)
    stack.upstream.route("POST", PATH, stream("续完。"))
    await send(again, {"type": "continue", "message_id": reply_id})
    end = (await frames_until(again, "reply_end"))[-1]
    assert end["type"] == "reply_end" and end["message"]["status"] == "complete"
    [(content,)] = stack.query("SELECT content FROM chat_message WHERE id = %s", end["message"]["id"])
    assert content == saved + "续完。"
    await again.close()


def _descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its command line (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = open(f"/proc/{child}/cmdline").read().replace("\0", " ")
            except OSError:
                continue
            todo.append(child)
    return found


def test_serve_runs_the_web_processes_on_one_socket_and_stops_them_all(stack):
    port = free_port()
    serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--processes", "2", "--port", str(port)],
                             cwd=ROOT, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                break
            except OSError:
                assert serve.poll() is None and time.monotonic() < deadline, "manage.py serve never answered"
                time.sleep(0.3)
        processes = _descendants(serve.pid)
        web = [command for command in processes.values() if "daphne --fd 0 --proxy-headers" in command]
        assert len(web) == 2 and any(f"manage.py {supervise.WORKER_COMMAND}" in command for command in processes.values())
        for _ in range(4):  # whichever process takes it, the shared socket answers
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=HANG_GUARD).close()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(HANG_GUARD) == 0
        assert not [pid for pid in processes if os.path.exists(f"/proc/{pid}")]  # nothing left running
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(HANG_GUARD)

