"""The websocket Origin check compares scheme, host and port with the socket's own origin."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from guyue.lib.origins import Origin, SameOriginValidator, parse_origin


async def accepting(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await receive()  # until the test disconnects


async def _connects(origin: str | None, host: str = "127.0.0.1:8000", scheme: str = "ws", **extra: str) -> bool:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    headers += [(name.encode(), value.encode()) for name, value in extra.items()]
    communicator = WebsocketCommunicator(SameOriginValidator(accepting), "/ws/chat/1/", headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "guyue.example", "[::1]"]
    settings.CSRF_TRUSTED_ORIGINS = []


async def test_the_same_origin_is_accepted():
    assert await _connects("http://127.0.0.1:8000")
    assert await _connects("http://localhost:8000", host="localhost:8000")
    assert await _connects("http://[::1]:8000", host="[::1]:8000")


async def test_default_ports_may_be_written_or_left_out():
    assert await _connects("https://guyue.example", host="guyue.example", scheme="wss")
    assert await _connects("https://guyue.example:443", host="guyue.example", scheme="wss")
    assert await _connects("http://guyue.example", host="guyue.example:80")


@pytest.mark.parametrize("origin", [
    "http://127.0.0.1:9000",  # another port on the same host: AllowedHostsOriginValidator let it in
    "http://127.0.0.1",  # the default port is another port too
    "https://127.0.0.1:8000",  # another scheme
    "http://localhost:8000",  # another host, though an allowed one
    "http://evil.example:8000",
    "null",  # sandboxed frames and file: pages
    "http://127.0.0.1:8000/chat/",  # not an origin
    "http://user@127.0.0.1:8000",
    "ftp://127.0.0.1:8000",
    "",
])
async def test_any_other_origin_is_refused(origin):
    assert not await _connects(origin)


async def test_a_missing_origin_is_refused():
    assert not await _connects(None)


async def test_a_host_we_do_not_answer_to_is_refused():
    # DNS rebinding: the attacker's name now points at us, so Origin and Host agree.
    assert not await _connects("http://rebound.example:8000", host="rebound.example:8000")


async def test_the_trusted_proxy_header_gives_the_scheme(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = {"x-forwarded-proto": "https"}
    assert await _connects("https://guyue.example", host="guyue.example", **proxied)
    assert not await _connects("http://guyue.example", host="guyue.example", **proxied)


async def test_the_proxy_header_is_ignored_unless_trusted(settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    assert not await _connects("https://guyue.example", host="guyue.example", **{"x-forwarded-proto": "https"})


async def test_csrf_trusted_origins_are_accepted_exactly(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://guyue.example", "https://*.ink.example"]
    # A proxy that passes its upstream's Host and no scheme header: only the listed origin helps.
    assert await _connects("https://guyue.example", host="127.0.0.1:8001")
    assert not await _connects("https://guyue.example:8443", host="127.0.0.1:8001")
    assert not await _connects("http://guyue.example", host="127.0.0.1:8001")
    assert await _connects("https://cn.ink.example", host="127.0.0.1:8001")
    assert not await _connects("https://ink.example.evil", host="127.0.0.1:8001")


def test_parse_origin_normalises_case_and_default_ports():
    assert parse_origin("HTTPS://Guyue.Example") == Origin("https", "guyue.example", 443)
    assert parse_origin("http://127.0.0.1:8000") == Origin("http", "127.0.0.1", 8000)
    assert parse_origin("http://127.0.0.1:99999") is None
