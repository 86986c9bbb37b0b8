"""The cluster: nginx → two daphne processes → the session's PostgreSQL server (a database of its own)
and redis-server (a database number of its own), with a scripted model server on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.cluster.stack import ROOT, Daphne, Nginx, app_env, manage, remove
from tests.fakes.upstream import Upstream

DATABASE = "guyue_cluster"
SEND_LIMIT = 4
LOGIN_FAILURE_LIMIT = 4


class Cluster:
    def __init__(self, root: Path, env: dict[str, str], database_url: str, upstream: Upstream):
        self.root, self.env, self.database_url, self.upstream = root, env, database_url, upstream
        self.daphnes = [Daphne(root, env), Daphne(root, env)]
        self.nginx = Nginx(root, [daphne.port for daphne in self.daphnes])
        self._names = itertools.count()

    def by_address(self, address: str) -> Daphne:
        return next(daphne for daphne in self.daphnes if daphne.address == address)

    def users(self, count: int) -> list[dict]:
        names = [f"cluster{next(self._names)}" for _ in range(count)]
        done = subprocess.run([sys.executable, "tests/cluster/make_users.py", *names], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300, check=True)
        return json.loads(done.stdout.splitlines()[-1])

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    def logs(self) -> str:
        return "\n".join(f"--- {d.log_path.name}\n{d.log_path.read_text(errors='replace')[-3000:]}"
                         for d in self.daphnes if d.log_path.exists())


@pytest.fixture(scope="module")
def cluster(postgres_url, redis_url):
    root = Path(tempfile.mkdtemp(prefix="guyue-cluster-"))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    database_url = postgres_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    upstream = Upstream()
    upstream.start()
    env = app_env(root, database_url, redis_url.rsplit("/", 1)[0] + "/1", upstream.url + "/api/v1",
                  REPLY_CHECKPOINT_SECONDS="0.5", REPLY_LEASE_SECONDS="2",
                  SEND_LIMIT_PER_MINUTE=str(SEND_LIMIT), LOGIN_FAILURE_LIMIT=str(LOGIN_FAILURE_LIMIT))
    for command in (["migrate", "--noinput"], ["seedpersonas"], ["envcredentials"], ["collectstatic", "--noinput"]):
        manage(env, *command)
    app = Cluster(root, env, database_url, upstream)
    try:
        for daphne in app.daphnes:
            daphne.start()
        app.nginx.start()
        yield app
    finally:
        app.nginx.stop()
        for daphne in app.daphnes:
            daphne.stop()
        upstream.stop()
        remove(root)
    assert not upstream.errors, f"fake upstream handler errors: {upstream.errors!r}"


@pytest.fixture
def stack(cluster):
    """The cluster with both daphne processes up (a test before may have killed one)."""
    for daphne in cluster.daphnes:
        if not daphne.alive():
            daphne.start()
    return cluster
