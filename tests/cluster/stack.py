"""Debian's nginx in front of two daphne processes on one PostgreSQL database and one Redis: every part
a real process on a loopback port, run by the test itself (no root paths, nothing left behind).

The nginx configuration is the one docs/deploy.md shows, with the two daphne ports as its upstream
(two ports stand for two app hosts; `manage.py serve` puts N processes on one socket instead).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from base64 import urlsafe_b64encode
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
HANG_GUARD = 90  # seconds: only bounds a hang; a busy 2-core machine starts daphne slowly
UPSTREAM_HEADER = "x-guyue-upstream"  # which daphne answered (nginx's $upstream_addr), for the tests


def nginx_conf(root: Path, port: int, backends: list[int]) -> str:
    servers = "".join(f"        server 127.0.0.1:{backend};\n" for backend in backends)
    return f"""\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream guyue {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 2m;
        location / {{
            proxy_pass http://guyue;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
            add_header X-Guyue-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def _wait_http(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {HANG_GUARD} s")


class Daphne:
    def __init__(self, root: Path, env: dict[str, str]):
        self.port, self.env = free_port(), env
        self.log_path = root / f"daphne-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        daphne = Path(sys.executable).with_name("daphne")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "--proxy-headers", "guyue.asgi:application"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        _wait_http(f"http://{self.address}/", self.process, self.log_path)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int:
        """A crash: SIGKILL, no chance to save anything."""
        self.process.send_signal(signal.SIGKILL)
        return self.process.wait(HANG_GUARD)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(HANG_GUARD)


class Nginx:
    def __init__(self, root: Path, backends: list[int]):
        self.root, self.port = root / "nginx", free_port()
        self.root.mkdir()
        self.root.chmod(0o755)  # started as root, nginx's workers run as nobody
        (self.root / "nginx.conf").write_text(nginx_conf(self.root, self.port, backends))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not os.access(NGINX, os.X_OK):
            raise RuntimeError("nginx not found: install Debian's nginx package (make test does)")
        log = self.root / "error.log"
        # -e: the error log before the configuration is read (the default one is under /var/log).
        self.process = subprocess.Popen([NGINX, "-p", str(self.root), "-c", str(self.root / "nginx.conf"), "-e", str(log)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + HANG_GUARD
        while True:  # any answer (even a 502) means nginx listens
            try:
                urllib.request.urlopen(self.url + "/", timeout=5).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the master waits for its workers
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(HANG_GUARD)


def app_env(root: Path, database_url: str, redis_url: str, provider_base_url: str, **extra: str) -> dict[str, str]:
    """One environment for every process: the same secrets (sessions and encrypted keys cross processes),
    the same database, Redis and media, as on several hosts."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "guyue.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DEBUG": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STATIC_ROOT": str(root / "static"),
        "MEDIA_ROOT": str(root / "media"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TRUST_PROXY_HEADERS": "true",
        "TRUST_X_FORWARDED_FOR": "true",
        "SERVE_MEDIA": "true",
        # A site-wide key pointing at the test's scripted model server, as envcredentials creates it.
        "OPENROUTER_API_KEY": "sk-or-cluster-0123456789abcdef",
        "OPENROUTER_BASE_URL": provider_base_url,
        "MEMORY_EXTRACTION": "false",  # background calls would take the scripted replies
        "GUARD_MODEL_JUDGE": "false",
        **extra,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {done.stderr[-3000:]}")
    return done.stdout


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
