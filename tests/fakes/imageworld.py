"""A throwaway site for media-worker processes: its own SQLite file (or a PostgreSQL database given as
DATABASE_URL) and media directory, a site-wide DashScope key pointing at a scripted upstream, one user,
one conversation and N queued jobs.

    world = ImageWorld(tmp_path, upstream.url, IMAGE_POLL_INTERVAL="0.2")
    job_ids = world.setup(jobs=3)            # python -m tests.fakes.imageworld setup 3 (migrates first)
    job_ids = world.setup(jobs=2, kind="video")                  # or a list: ["image", "music", …]
    worker = world.start_worker()            # manage.py mediaworker, output in tmp_path/worker-N.log
    world.jobs()                             # rows read straight from the database (no Django here)

Kinds (WORLD_KINDS): "image" draws through the DashScope key; the others go through site-wide
OpenAI-compatible keys at `{upstream}/v1`, created only when a job needs them (the relay root is then
the upstream itself, see chat/media/engines.py): "video" (Seedance), "platform_video" (the task
platform's kling), "music" (the Suno proxy) and "midjourney" (the /mj proxy); tests/fakes/mediatasks.py
serves all four.

Used by tests/images/test_worker_process.py, tests/media/test_worker_process.py, bench/images.py and
bench/media.py.
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELAY_KEY = "sk-relay-world-0123456789"  # the OpenAI-compatible site keys' (fake) key
WORLD_KINDS = ("image", "video", "platform_video", "music", "midjourney")


class ImageWorld:
    def __init__(self, workdir: Path, upstream_url: str, **extra_env: str):
        self.workdir = Path(workdir)
        self.upstream_url = upstream_url
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

    def setup(self, jobs: int | list[str], kind: str = "image") -> list[int]:
        """`jobs` queued jobs of `kind`, or one job of each kind listed, in that order."""
        kinds = [kind] * jobs if isinstance(jobs, int) else list(jobs)
        unknown = set(kinds) - set(WORLD_KINDS)
        if unknown:
            raise ValueError(f"unknown world kinds {sorted(unknown)}; known: {WORLD_KINDS}")
        args = [str(len(kinds))]
        if set(kinds) != {"image"} and kinds:
            args += ["--kinds", ",".join(kinds)]
        done = subprocess.run([sys.executable, "-m", "tests.fakes.imageworld", "setup", *args], cwd=ROOT,
                              env={**self.env, "WORLD_RELAY_URL": self.upstream_url}, capture_output=True, text=True,
                              timeout=180)  # fmt: skip
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

    @property
    def on_postgres(self) -> bool:
        return self.env["DATABASE_URL"].startswith(("postgres://", "postgresql://"))

    def jobs(self) -> list[dict]:
        if self.on_postgres:
            import psycopg  # only PostgreSQL worlds need it (bench/images.py runs on SQLite)
            from psycopg.rows import dict_row

            with psycopg.connect(self.env["DATABASE_URL"], row_factory=dict_row, connect_timeout=20) as db:
                return list(db.execute("SELECT * FROM chat_mediajob ORDER BY id"))
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


def timestamp(value) -> float:
    """A datetime column as seconds since the epoch: SQLite gives Django's naive UTC text, psycopg an
    aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _setup(kinds: list[str]) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("envcredentials", verbosity=0)
    from accounts.models import ApiCredential, CredentialKind, User
    from chat.media.services import request_image, request_music, request_video, video_params
    from chat.models import Message
    from chat.services import conversation_start
    from personas.models import Persona

    persona = Persona.objects.create(slug="libai", name="李白", dynasty="tang", birth_year=701, death_year=762,
                                     published=True, description="诗人", first_mes="幸会。")
    user = User.objects.create_user(username="alice", password="ink-and-paper-2026")
    conversation = conversation_start(owner=user, persona=persona)
    credentials = {"image": ApiCredential.objects.get(owner=None, kind=CredentialKind.DASHSCOPE)}
    # One relay key serves Seedance, Suno and Midjourney; the task platform's video needs a key of its
    # own, since a key names one video model.
    keys = {"video": ({"video", "music", "midjourney"}, {"video_model": "doubao-seedance-1-0-pro",
                                                         "music_model": "chirp-v4", "midjourney_model": "midjourney"}),
            "platform_video": ({"platform_video"}, {"video_model": "platform:kling"})}  # fmt: skip
    for name, (served, models) in keys.items():
        if served & set(kinds):
            credential = ApiCredential(owner=None, kind=CredentialKind.OPENAI_COMPATIBLE, label=f"中转 {name}",
                                       base_url=f"{os.environ['WORLD_RELAY_URL']}/v1", **models)  # fmt: skip
            credential.set_key(RELAY_KEY)
            credential.save()
            credentials.update(dict.fromkeys(served, credential))
    poem = Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT,
                                  content="床前明月光，疑是地上霜。\n举头望明月，低头思故乡。")  # fmt: skip
    ids = []
    for i, kind in enumerate(kinds):
        # The service picks the key as for a real user (the site's default), so each job names its own.
        ApiCredential.objects.filter(owner=None).update(is_default=False)
        ApiCredential.objects.filter(pk=credentials[kind].pk).update(is_default=True)
        prompt = f"李白月下独酌，第{i + 1}幅"
        if kind == "image":
            job = request_image(user, conversation, prompt)
        elif kind == "midjourney":
            job = request_image(user, conversation, prompt, engine="midjourney")
        elif kind == "music":
            job = request_music(user, conversation, poem, tags="古风、古琴", title=f"静夜思 {i + 1}")
        else:
            job = request_video(user, conversation, f"李白泛舟江上，第{i + 1}段", params=video_params(5, "720p", "16:9"),
                                confirmed=True)  # fmt: skip
        if job.status != "queued" or job.credential_id != credentials[kind].pk:
            raise RuntimeError(f"job {i} ({kind}) not queued on its key: {job.status} {job.error_message}")
        ids.append(job.pk)
    print(json.dumps(ids))


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"]:
        count, rest = int(sys.argv[2]), sys.argv[3:]
        _setup(rest[1].split(",") if rest[:1] == ["--kinds"] else ["image"] * count)
