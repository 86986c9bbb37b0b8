"""Scripted upstream HTTP/1.1 server on real 127.0.0.1 sockets, for provider tests.

Stdlib only, apart from the optional pytest fixture at the bottom.

    with Upstream() as up:
        up.route("POST", "/v1/chat/completions", sse_reply([{"a": 1}, 0.05, "data: [DONE]\\n\\n"], stride=1))
        up.route("GET", "/tasks/", lambda request: json_reply(200, {...}), path_prefix=True, repeat=True)
        ... call up.url ...
        assert up.requests[0].json()["stream"] is True
"""
import asyncio
import http
import json
import socket
import struct
import threading
import time

ENDS = ("complete", "fin", "reset", "hang")


class Gate:
    """Holds back replies (Reply(hold=gate)) until `count` of them wait at once, or until release()
    is called from any thread; from then on every reply passes. Tests check concurrency and order
    with it instead of timing: callers that ran one at a time would never fill it. `timeout` only
    bounds a hang: the gate then opens anyway and `filled` stays False for the test to assert."""

    def __init__(self, count=None, timeout=60.0):
        self.count, self.timeout = count, timeout
        self.waiting = self.most_waiting = 0
        self.filled = False
        self._open = threading.Event()  # threading, not asyncio: release() comes from the test's thread
        self._lock = threading.Lock()

    @property
    def is_open(self):
        return self._open.is_set()

    def release(self):
        self._open.set()

    async def wait(self):
        with self._lock:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
            if self.count is not None and self.waiting >= self.count:
                self.filled = True
                self._open.set()
        try:
            deadline = time.monotonic() + self.timeout
            while not self._open.is_set():
                if time.monotonic() > deadline:
                    self._open.set()
                    break
                await asyncio.sleep(0.01)
        finally:
            with self._lock:
                self.waiting -= 1


class Reply:
    """One scripted response. status=None sends no status line at all (then `end` applies).
    hold=Gate(...) waits at the gate before the headers (and before header_delay)."""

    def __init__(self, status=200, headers=None, body=b"", parts=None, header_delay=0.0,
                 stride=None, gap=0.0, chunked=None, end="complete", hold=None):
        if end not in ENDS:
            raise ValueError(f"end must be one of {ENDS}")
        self.status, self.header_delay, self.stride, self.gap, self.end = status, header_delay, stride, gap, end
        self.hold = hold
        self.headers = list(headers.items() if isinstance(headers, dict) else headers or [])
        items = [body] if parts is None else list(parts)
        # bool is an int subclass; anything else numeric is a sleep.
        self.items = [x if isinstance(x, (int, float)) and not isinstance(x, bool)
                      else (x.encode() if isinstance(x, str) else bytes(x)) for x in items]
        self.chunked = (parts is not None) if chunked is None else chunked


def sse_event(obj):
    return "data: " + json.dumps(obj, ensure_ascii=False) + "\n\n"


def json_reply(status, obj, headers=None, **kw):
    h = [("Content-Type", "application/json")] + list((headers or {}).items())
    return Reply(status, h, body=json.dumps(obj, ensure_ascii=False), **kw)


def sse_reply(events, headers=None, status=200, **kw):
    parts = [sse_event(e) if isinstance(e, dict) else e for e in events]
    h = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")] + list((headers or {}).items())
    return Reply(status, h, parts=parts, **kw)


class Recorded:
    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.unscripted = False
        self.closed_event = threading.Event()  # client hung up while the reply was in progress

    @property
    def client_closed(self):
        return self.closed_event.is_set()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Recorded {self.method} {self.path}{'?' + self.query if self.query else ''}>"


class _Route:
    def __init__(self, method, path, replies, prefix, repeat, when=None):
        self.method, self.path, self.prefix, self.repeat = method.upper(), path, prefix, repeat
        self.replies, self.when = list(replies), when

    def matches(self, method, path, body=b""):
        return self.replies and method == self.method and (
            path.startswith(self.path) if self.prefix else path == self.path) and (
            self.when is None or self.when(body))


class _Conn:
    """Buffered reader fed by one pump task, so EOF is noticed even while we are writing."""

    def __init__(self, reader):
        self.reader, self.buf, self.more, self.eof = reader, bytearray(), asyncio.Event(), asyncio.Event()
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self):
        try:
            while data := await self.reader.read(65536):
                self.buf += data
                self.more.set()
        except OSError:
            pass
        finally:
            self.eof.set()
            self.more.set()

    async def _need(self):
        if self.eof.is_set():
            raise EOFError
        self.more.clear()  # no await between the caller's buffer check and here, so nothing is missed
        await self.more.wait()

    async def until(self, sep, limit=1 << 20):
        while (i := self.buf.find(sep)) < 0:
            if len(self.buf) > limit:
                raise EOFError("request head too large")
            await self._need()
        out = bytes(self.buf[:i])
        del self.buf[:i + len(sep)]
        return out

    async def exactly(self, n):
        while len(self.buf) < n:
            await self._need()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class Upstream:
    def __init__(self):
        self.requests, self.errors = [], []
        self.open_connections = self.connections_accepted = 0
        self.port, self._routes, self._cond = None, [], threading.Condition()
        self._thread = self._loop = None
        self._tasks = set()

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        ready, box = threading.Event(), []

        def run():
            try:
                asyncio.run(self._main(ready))
            except BaseException as e:  # surface startup failures to start()
                box.append(e)
                ready.set()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10) or box:
            raise RuntimeError("fake upstream failed to start") from (box[0] if box else None)
        return self

    def stop(self):
        if self._loop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread:
            self._thread.join(10)

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()

    async def _main(self, ready):
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stopping.wait()
        server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    # -- scripting & inspection (any thread) -------------------------------
    def route(self, method, path, *replies, path_prefix=False, repeat=False, when=None):
        """`when(body: bytes) -> bool` picks requests by their body (e.g. concurrent calls of two kinds)."""
        with self._cond:
            self._routes.append(_Route(method, path, replies, path_prefix, repeat, when))
        return self

    def _take(self, method, path, body=b""):
        with self._cond:
            cands = [r for r in self._routes if r.matches(method, path, body)]
            # Body-matched routes first; exact routes win over prefix routes; longest prefix wins;
            # earlier route() calls first.
            cands.sort(key=lambda r: (r.when is None, r.prefix, -len(r.path)))
            if not cands:
                return None
            r = cands[0]
            return r.replies[0] if len(r.replies) == 1 and r.repeat else r.replies.pop(0)

    # The default timeouts only bound a hang, so they are generous: a loaded machine is slow.
    def wait_for_requests(self, n, timeout=30.0):
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests, got {self.requests!r}")
            return list(self.requests)

    def wait_idle(self, timeout=30.0):
        """Wait until no client connection is open (e.g. the httpx pool really closed it)."""
        deadline = time.monotonic() + timeout
        while self.open_connections:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.open_connections} connection(s) still open")
            time.sleep(0.01)

    @property
    def unscripted(self):
        return [r for r in self.requests if r.unscripted]

    # -- per-connection protocol (event-loop thread) -----------------------
    async def _handle(self, reader, writer):
        self._tasks.add(asyncio.current_task())
        self.open_connections += 1
        self.connections_accepted += 1
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # drain() then waits until everything reached the kernel, so each write is its own segment.
        writer.transport.set_write_buffer_limits(high=0)
        conn, abort = _Conn(reader), False
        try:
            while True:
                try:
                    rec, keep = await self._read_request(conn)
                except EOFError:
                    return
                reply = self._take(rec.method, rec.path, rec.body)
                if callable(reply):  # a handler builds its reply from the request (stateful fakes)
                    reply = reply(rec)
                if reply is None:
                    rec.unscripted = True
                    reply = json_reply(599, {"error": "unscripted"})
                with self._cond:
                    self.requests.append(rec)
                    self._cond.notify_all()
                send = asyncio.create_task(self._send(writer, reply, rec.method == "HEAD"))
                eof = asyncio.create_task(conn.eof.wait())
                await asyncio.wait({send, eof}, return_when=asyncio.FIRST_COMPLETED)
                eof.cancel()
                if not send.done():  # client went away mid-reply (or during "hang")
                    send.cancel()
                    await asyncio.gather(send, return_exceptions=True)
                    rec.closed_event.set()
                    return
                if isinstance(send.exception(), ConnectionError):
                    rec.closed_event.set()
                    return
                send.result()  # re-raise unexpected errors
                if reply.end == "reset":
                    abort = True
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if reply.end != "complete" or not keep:
                    return
        except asyncio.CancelledError:
            abort = True  # server stopping
        except Exception as e:  # never let one connection kill the server
            self.errors.append(e)
        finally:
            conn.pump.cancel()
            writer.transport.abort() if abort else writer.close()
            self.open_connections -= 1
            self._tasks.discard(asyncio.current_task())

    async def _read_request(self, conn):
        head = await conn.until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLF between requests
            lines.pop(0)
        method, target, version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k, v = k.strip().lower(), v.strip()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while size := int((await conn.until(b"\r\n")).split(b";")[0], 16):
                body += await conn.exactly(size)
                await conn.exactly(2)
            while await conn.until(b"\r\n"):  # trailers
                pass
            body = bytes(body)
        else:
            body = await conn.exactly(int(headers.get("content-length", 0)))
        path, _, query = target.partition("?")
        conn_hdr = headers.get("connection", "").lower()
        keep = "close" not in conn_hdr and (version != "HTTP/1.0" or "keep-alive" in conn_hdr)
        return Recorded(method.upper(), path, query, headers, body), keep

    async def _send(self, writer, reply, head_only):
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.header_delay:
            await asyncio.sleep(reply.header_delay)
        if reply.status is not None:
            await self._send_reply(writer, reply, head_only)
        if reply.end == "hang":
            await asyncio.Future()  # until the client closes (EOF wins the race) or the server stops
        if reply.end == "fin":
            writer.write_eof()  # clean FIN, no terminator

    async def _send_reply(self, writer, reply, head_only):
        status = reply.status
        reason = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Unknown"
        headers = list(reply.headers)
        names = {k.lower() for k, _ in headers}
        no_body = head_only or status < 200 or status in (204, 304)
        total = sum(len(x) for x in reply.items if isinstance(x, bytes))
        if not no_body and "content-length" not in names and "transfer-encoding" not in names:
            if reply.chunked:
                headers.append(("Transfer-Encoding", "chunked"))
            else:
                # A non-complete end must look truncated, so promise one byte more than is sent.
                headers.append(("Content-Length", str(total + (reply.end != "complete"))))
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        await self._write(writer, head.encode("latin-1"))
        if no_body:
            return
        first = True
        for item in reply.items:
            if not isinstance(item, bytes):
                await asyncio.sleep(item)
                continue
            step = reply.stride or len(item) or 1
            for i in range(0, len(item), step):
                if reply.gap and not first:
                    await asyncio.sleep(reply.gap)
                first = False
                piece = item[i:i + step]
                # One chunk per slice; an empty chunk would terminate the body, hence the loop skips b"".
                await self._write(writer, b"%x\r\n%s\r\n" % (len(piece), piece) if reply.chunked else piece)
        if reply.chunked and reply.end == "complete":
            await self._write(writer, b"0\r\n\r\n")

    @staticmethod
    async def _write(writer, data):
        writer.write(data)
        await writer.drain()


try:  # the fixture is the only non-stdlib use; the server itself works without pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:
    @pytest.fixture
    def upstream():
        with Upstream() as up:
            yield up
        # Handler bugs are swallowed to keep the server alive, so surface them here.
        assert not up.errors, f"fake upstream handler errors: {up.errors!r}"
