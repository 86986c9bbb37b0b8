"""A throwaway site for image-worker processes: its own SQLite file and media directory, a site-wide
DashScope key pointing at a scripted upstream, one user, one conversation and N queued jobs.

    world = ImageWorld(tmp_path, upstream.url, IMAGE_POLL_INTERVAL="0.2")
    job_ids = world.setup(jobs=3)            # python -m tests.fakes.imageworld setup 3 (migrates first)
    worker = world.start_worker()            # manage.py mediaworker, output in tmp_path/worker-N.log
    world.jobs()                             # rows read straight from SQLite (no Django here)

Used by tests/images/test_worker_process.py and bench/images.py.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ImageWorld:
    def __init__(self, workdir: Path, upstream_url: str, **extra_env: str):
        self.workdir = Path(workdir)
        self.db_path = self.workdir / "db.sqlite3"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "guyue.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DEBUG": "false",
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "MEDIA_ROOT": str(self.workdir / "media"),
            "DASHSCOPE_API_KEY": "sk-image-world-0123456789",
            "DASHSCOPE_BASE_URL": f"{upstream_url}/bj/compatible-mode/v1",
            "IMAGE_DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
            "IMAGE_LIMIT_PER_HOUR": "100000",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.workers: list[subprocess.Popen] = []

    def setup(self, jobs: int) -> list[int]:
        done = subprocess.run([sys.executable, "-m", "tests.fakes.imageworld", "setup", str(jobs)], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=180)
        if done.returncode:
            raise RuntimeError(f"world setup failed: {done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen:
        log = (self.workdir / f"worker-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen([sys.executable, "manage.py", "mediaworker", *args], cwd=ROOT,
                                   env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(process)
        return process

    def log(self, index: int = 0) -> str:
        return (self.workdir / f"worker-{index}.log").read_text(errors="replace")

    def jobs(self) -> list[dict]:
        with sqlite3.connect(self.db_path, timeout=20) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM chat_mediajob ORDER BY id")]

    def wait_until(self, predicate, timeout: float = 30.0, step: float = 0.05) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs()
            if predicate(jobs):
                return jobs
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; jobs: {jobs!r}")
            time.sleep(step)

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)


def _setup(jobs: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("envcredentials", verbosity=0)
    from accounts.models import User
    from chat.media.services import request_image
    from chat.services import conversation_start
    from personas.models import Persona

    persona = Persona.objects.create(slug="libai", name="李白", dynasty="tang", birth_year=701, death_year=762,
                                     published=True, description="诗人", first_mes="幸会。")
    user = User.objects.create_user(username="alice", password="ink-and-paper-2026")
    conversation = conversation_start(owner=user, persona=persona)
    ids = [request_image(user, conversation, f"李白月下独酌，第{i + 1}幅").pk for i in range(jobs)]
    print(json.dumps(ids))


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"]:
        _setup(int(sys.argv[2]))
