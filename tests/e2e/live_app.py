"""The whole app served by daphne in a subprocess, on its own SQLite file, for browser journeys.

pytest-django's live_server speaks WSGI only; the chat needs websockets, so the journeys run the
same command `make run` does, against a throwaway database prepared by the management commands.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from base64 import urlsafe_b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveApp:
    def __init__(self, workdir: Path, provider_base_url: str, **extra_env: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "daphne.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "guyue.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DEBUG": "false",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "STATIC_ROOT": str(workdir / "static"),
            "MEDIA_ROOT": str(workdir / "media"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # A site-wide key pointing at the test's model server, as envcredentials would create it.
            "OPENROUTER_API_KEY": "sk-or-e2e-0123456789abcdef",
            "OPENROUTER_BASE_URL": provider_base_url,
            # No worker runs here; this keeps extraction jobs from being queued at all.
            "MEMORY_EXTRACTION": "false",
        }
        self.env.update(extra_env)
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process: subprocess.Popen | None = None

    def _manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=180)

    def manage_output(self, *args: str) -> str:
        """A management command against this app's database, for test data; returns its stdout."""
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True, timeout=300).stdout

    def start(self) -> LiveApp:
        for command in (["migrate", "--noinput"], ["seedpersonas"], ["envcredentials"],
                        ["collectstatic", "--noinput"]):
            self._manage(*command)
        return self.serve()

    def serve(self) -> LiveApp:
        """Start daphne on the prepared database (again, after a kill: a restart)."""
        daphne = Path(sys.executable).with_name("daphne")
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "guyue.asgi:application"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90  # a hang guard: a loaded machine may start daphne slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.log_path.read_text(errors='replace')}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("daphne did not answer within 90 s")

    def kill(self, sig: int) -> int:
        """Send daphne a signal (SIGTERM: a graceful stop; SIGKILL: a crash) and wait for it to end."""
        self.process.send_signal(sig)
        code = self.process.wait(60)
        self.log.close()
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process is not None:
            self.log.close()

    def server_log(self) -> str:
        return self.log_path.read_text(errors="replace")
