"""Media traversal against daphne itself: raw request lines on a socket, so neither a browser nor
a test client tidies the path before the server sees it."""

from __future__ import annotations

import http.client

import pytest

from tests.test_media import PORTRAIT, SECRET, TRAVERSALS


@pytest.fixture
def media(app, tmp_path):
    root = tmp_path / "media"  # the live app's MEDIA_ROOT
    (root / "images" / "7").mkdir(parents=True)
    (root / "images" / "7" / "secret.png").write_bytes(SECRET)
    (root / "portraits").mkdir(parents=True, exist_ok=True)
    (root / "portraits" / "li-bai.png").write_bytes(PORTRAIT)
    (root / "portraits" / "leak.png").symlink_to(root / "images" / "7" / "secret.png")
    (root / "portraits" / "linked").symlink_to(root / "images")
    return root


def _get(app, raw_path: str) -> tuple[int, bytes]:
    # http.client sends the path exactly as given: no dot-segment removal, no re-encoding.
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_live_server_serves_portraits_and_nothing_else(app, media):
    assert _get(app, "/media/portraits/li-bai.png") == (200, PORTRAIT)
    leaks = {}
    for path in [*TRAVERSALS, "/media/portraits/" + str(media / "images" / "7" / "secret.png")]:
        status, body = _get(app, path)
        if status != 404 or SECRET in body:
            leaks[path] = status
    assert leaks == {}
