"""Self-tests for the scripted upstream server, driven by real httpx clients over sockets."""
import asyncio
import time

import httpx
import pytest

from tests.fakes.upstream import Gate, Reply, Upstream, json_reply, sse_event, sse_reply, upstream  # noqa: F401

TEXT = "你好，世界😀！"
HANG_GUARD = 30  # seconds; waits for something that must happen only bound a hang (a loaded machine is slow)


def test_json_reply_sync(upstream):
    upstream.route("POST", "/v1/chat", json_reply(200, {"msg": TEXT}, headers={"X-Request-Id": "r1"}))
    r = httpx.post(upstream.url + "/v1/chat?x=1", json={"q": TEXT}, headers={"Authorization": "Bearer k"})
    assert r.status_code == 200 and r.json() == {"msg": TEXT} and r.headers["x-request-id"] == "r1"
    [rec] = upstream.requests
    assert (rec.method, rec.path, rec.query) == ("POST", "/v1/chat", "x=1")
    assert rec.headers["authorization"] == "Bearer k" and rec.json() == {"q": TEXT}
    assert not rec.client_closed and not upstream.errors


@pytest.mark.asyncio
async def test_json_reply_async(upstream):
    upstream.route("GET", "/models", json_reply(404, {"error": {"code": "nope"}}))
    async with httpx.AsyncClient() as c:
        r = await c.get(upstream.url + "/models")
    assert r.status_code == 404 and r.json()["error"]["code"] == "nope"


@pytest.mark.asyncio
@pytest.mark.parametrize("chunked", [True, False])
async def test_sse_stride_one_arrives_as_many_reads(upstream, chunked):
    events = [": OPENROUTER PROCESSING\n\n", {"choices": [{"delta": {"content": TEXT}}]}, 0.01, "data: [DONE]\n\n"]
    expected = b"".join(x.encode() if isinstance(x, str) else sse_event(x).encode()
                        for x in events if not isinstance(x, float))
    upstream.route("POST", "/chat", sse_reply(events, stride=1, gap=0.002, chunked=chunked))
    reads = []
    async with httpx.AsyncClient() as c:
        async with c.stream("POST", upstream.url + "/chat", json={}) as r:
            assert r.headers["content-type"] == "text/event-stream"
            assert ("transfer-encoding" in r.headers) is chunked
            async for chunk in r.aiter_raw():
                reads.append(chunk)
    assert b"".join(reads) == expected
    assert len(reads) > 10
    # Some read must end inside a multi-byte character: that is what the fixture exists for.
    assert any(_splits_utf8(chunk) for chunk in reads)


def _splits_utf8(chunk):
    try:
        chunk.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


@pytest.mark.asyncio
async def test_header_delay_triggers_read_timeout(upstream):
    upstream.route("POST", "/slow", json_reply(200, {}, header_delay=60.0))  # far past the read timeout
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.2)) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(upstream.url + "/slow")
    [rec] = upstream.wait_for_requests(1)
    assert rec.closed_event.wait(HANG_GUARD)
    upstream.wait_idle(HANG_GUARD)


@pytest.mark.asyncio
@pytest.mark.parametrize("chunked", [True, False])
async def test_end_fin_truncates(upstream, chunked):
    upstream.route("GET", "/s", sse_reply([{"n": 1}, {"n": 2}], end="fin", chunked=chunked))
    got = b""
    async with httpx.AsyncClient() as c:
        async with c.stream("GET", upstream.url + "/s") as r:
            with pytest.raises(httpx.RemoteProtocolError):
                async for chunk in r.aiter_raw():
                    got += chunk
    assert got == (sse_event({"n": 1}) + sse_event({"n": 2})).encode()
    upstream.wait_idle(HANG_GUARD)


def test_end_fin_without_status_line(upstream):
    upstream.route("GET", "/x", Reply(status=None, end="fin"))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(upstream.url + "/x")


@pytest.mark.asyncio
async def test_end_reset(upstream):
    upstream.route("GET", "/s", sse_reply([{"n": 1}, 0.2], end="reset"))
    got = b""
    async with httpx.AsyncClient() as c:
        async with c.stream("GET", upstream.url + "/s") as r:
            with pytest.raises(httpx.ReadError) as ei:  # a FIN would give RemoteProtocolError instead
                async for chunk in r.aiter_raw():
                    got += chunk
    assert got == sse_event({"n": 1}).encode()
    assert any(isinstance(e, ConnectionResetError) for e in _chain(ei.value))
    upstream.wait_idle(HANG_GUARD)


def _chain(exc):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_reset_before_status_line(upstream):
    upstream.route("GET", "/x", Reply(status=None, end="reset"))
    with pytest.raises(httpx.ReadError) as ei:
        httpx.get(upstream.url + "/x")
    assert any(isinstance(e, ConnectionResetError) for e in _chain(ei.value))


def test_gap_and_sleep_parts_pace_the_body(upstream):
    upstream.route("GET", "/g", Reply(body="abcdef", stride=2, gap=0.15))
    upstream.route("GET", "/p", Reply(parts=["a", 0.3, b"b"]))
    with httpx.Client() as c:
        t0 = time.monotonic()
        assert c.get(upstream.url + "/g").text == "abcdef"
        t1 = time.monotonic()
        assert c.get(upstream.url + "/p").text == "ab"
        t2 = time.monotonic()
    assert t1 - t0 >= 0.3 and t2 - t1 >= 0.3  # at least the scripted pauses (a busy machine adds more)


@pytest.mark.asyncio
async def test_hang_then_client_close(upstream):
    upstream.route("POST", "/s", sse_reply([{"n": 1}], end="hang"))
    async with httpx.AsyncClient() as c:
        async with c.stream("POST", upstream.url + "/s") as r:
            async for chunk in r.aiter_raw():
                assert chunk == sse_event({"n": 1}).encode()
                break  # consumer stops early; leaving the block must close the connection
        [rec] = upstream.wait_for_requests(1)
        assert rec.closed_event.wait(HANG_GUARD) and rec.client_closed
        upstream.wait_idle(HANG_GUARD)
        assert upstream.open_connections == 0


def test_hang_keeps_connection_open_until_client_closes(upstream):
    upstream.route("GET", "/h", Reply(status=None, end="hang"))
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(upstream.url + "/h")
    assert upstream.requests[0].closed_event.wait(HANG_GUARD)
    upstream.wait_idle(HANG_GUARD)


def test_keep_alive_reuses_connection(upstream):
    upstream.route("GET", "/a", json_reply(200, {"i": 1}), json_reply(200, {"i": 2}))
    upstream.route("GET", "/b", sse_reply([{"x": 1}, "data: [DONE]\n\n"]))
    with httpx.Client() as c:
        assert c.get(upstream.url + "/a").json() == {"i": 1}
        assert c.get(upstream.url + "/b").text == sse_event({"x": 1}) + "data: [DONE]\n\n"
        assert c.get(upstream.url + "/a").json() == {"i": 2}
        assert upstream.connections_accepted == 1 and upstream.open_connections == 1
    upstream.wait_idle(HANG_GUARD)
    assert not any(r.client_closed for r in upstream.requests)


def test_unscripted_gets_599(upstream):
    upstream.route("GET", "/once", json_reply(200, {}))
    with httpx.Client() as c:
        assert c.get(upstream.url + "/once").status_code == 200
        r = c.get(upstream.url + "/once")
        assert r.status_code == 599 and r.json() == {"error": "unscripted"}
        assert c.delete(upstream.url + "/other").status_code == 599
    assert [r.path for r in upstream.unscripted] == ["/once", "/other"]
    assert len(upstream.requests) == 3


def test_prefix_routes(upstream):
    upstream.route("GET", "/api/v1/tasks/", json_reply(200, {"s": "PENDING"}),
                   json_reply(200, {"s": "SUCCEEDED"}), path_prefix=True)
    upstream.route("GET", "/api/v1/tasks/special", json_reply(200, {"s": "exact"}))
    with httpx.Client() as c:
        assert c.get(upstream.url + "/api/v1/tasks/special").json() == {"s": "exact"}
        assert c.get(upstream.url + "/api/v1/tasks/t-1?a=b").json() == {"s": "PENDING"}
        assert c.get(upstream.url + "/api/v1/tasks/special").json() == {"s": "SUCCEEDED"}
        assert c.get(upstream.url + "/api/v1/tasks/t-1").status_code == 599
        assert c.post(upstream.url + "/api/v1/tasks/t-1").status_code == 599  # method matters
    assert upstream.requests[1].path == "/api/v1/tasks/t-1" and upstream.requests[1].query == "a=b"


def test_repeat(upstream):
    upstream.route("GET", "/poll", json_reply(200, {"s": "PENDING"}), json_reply(200, {"s": "RUNNING"}), repeat=True)
    with httpx.Client() as c:
        got = [c.get(upstream.url + "/poll").json()["s"] for _ in range(4)]
    assert got == ["PENDING", "RUNNING", "RUNNING", "RUNNING"]


def test_chunked_request_body_and_wait_for_requests(upstream):
    upstream.route("PUT", "/up", Reply(204))

    def gen():
        yield TEXT.encode()
        yield b"-tail"
    with httpx.Client() as c:
        r = c.put(upstream.url + "/up", content=gen())
    assert r.status_code == 204
    [rec] = upstream.wait_for_requests(1, timeout=HANG_GUARD)
    assert rec.headers["transfer-encoding"] == "chunked" and rec.body == TEXT.encode() + b"-tail"
    with pytest.raises(TimeoutError):
        upstream.wait_for_requests(2, timeout=0.1)


def test_stop_with_open_hanging_connection():
    up = Upstream().start()
    up.route("GET", "/h", Reply(end="hang", parts=["x"]))
    c = httpx.Client()
    with c.stream("GET", up.url + "/h") as r:
        it = r.iter_raw()
        assert next(it) == b"x"
        # Must not wait for the client: stop() gives the thread 10 s to end, and the client here
        # never lets go, so a server waiting for it would still be alive.
        up.stop()
        assert not up._thread.is_alive()
        with pytest.raises(httpx.HTTPError):
            list(it)
    c.close()


@pytest.mark.asyncio
async def test_a_gate_holds_replies_until_enough_wait_at_once(upstream):
    gate = Gate(3)
    upstream.route("GET", "/g", json_reply(200, {}, hold=gate), repeat=True)
    async with httpx.AsyncClient() as c:
        answers = await asyncio.gather(*(c.get(upstream.url + "/g") for _ in range(3)))
    assert [a.status_code for a in answers] == [200] * 3 and gate.filled and gate.most_waiting == 3


def test_a_gate_that_never_fills_gives_up_and_says_so(upstream):
    gate = Gate(2, timeout=0.2)
    upstream.route("GET", "/g", json_reply(200, {}, hold=gate))
    assert httpx.get(upstream.url + "/g", timeout=HANG_GUARD).status_code == 200
    assert not gate.filled and gate.most_waiting == 1


def test_a_released_gate_lets_replies_through(upstream):
    gate = Gate()
    upstream.route("GET", "/g", json_reply(200, {}, hold=gate))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(upstream.url + "/g", timeout=httpx.Timeout(5.0, read=0.2))  # held, nobody released it
    upstream.route("GET", "/g", json_reply(200, {"i": 2}, hold=gate))
    gate.release()
    assert httpx.get(upstream.url + "/g", timeout=HANG_GUARD).json() == {"i": 2}
