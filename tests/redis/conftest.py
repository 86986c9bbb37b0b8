"""A throwaway redis-server (Debian's redis-server package; `make test` installs it when missing) and
the site's Redis settings (guyue/lib/redisconf.py) switched on for every test in this directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from guyue.lib import redisconf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    server = shutil.which("redis-server")
    if not server:
        pytest.fail("redis-server not found: install Debian's redis-server package (make test does)")
    root, port = tempfile.mkdtemp(prefix="guyue-redis-"), _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", root,
         "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                pytest.fail(f"redis-server exited: {process.stderr.read().decode()[:500]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def on_redis(settings, redis_url):
    """The cache (busy lock, rate limits, login throttle) and the channel layer, as REDIS_URL sets them."""
    settings.CACHES = redisconf.caches(redis_url)
    settings.CHANNEL_LAYERS = redisconf.channel_layers(redis_url)
    from django.core.cache import cache

    cache.clear()  # FLUSHDB: this server is the tests' own
    yield
    cache.clear()
