"""Throwaway servers for the tests of the paths past one machine, one of each per test session:
PostgreSQL (Debian's postgresql package) and redis-server (Debian's redis-server package); `make test`
installs both when missing. Registered for every test in tests/conftest.py; started only when used."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package creates the postgres user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class ServerMissing(RuntimeError):
    pass


@contextmanager
def postgres_server():
    """A throwaway PostgreSQL server; yields its URL (bench/stream.py --serve uses it too)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise ServerMissing("PostgreSQL server binaries not found: install Debian's postgresql package (make test does)")
    root = tempfile.mkdtemp(prefix="guyue-pg-")
    os.chmod(root, 0o777)
    data, port = os.path.join(root, "data"), free_port()
    subprocess.run(_as_postgres([initdb, "-D", data, "-A", "trust", "-U", "guyue", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([pg_ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"postgres://guyue@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def redis_server():
    """A throwaway redis-server; yields its URL."""
    server = shutil.which("redis-server")
    if not server:
        raise ServerMissing("redis-server not found: install Debian's redis-server package (make test does)")
    root, port = tempfile.mkdtemp(prefix="guyue-redis-"), free_port()
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
                raise ServerMissing(f"redis-server exited: {process.stderr.read().decode()[:500]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _served(server):
    try:
        with server() as url:
            yield url
    except ServerMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def postgres_url():
    yield from _served(postgres_server)


@pytest.fixture(scope="session")
def redis_url():
    yield from _served(redis_server)
