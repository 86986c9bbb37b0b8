"""The PostgreSQL path: migrations (including the recall index) and recall, in a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def migrated(postgres_url):
    for args in (["manage.py", "migrate", "--noinput"], ["manage.py", "seedpersonas"]):
        done = _run(args, postgres_url)
        assert done.returncode == 0, done.stderr[-3000:]
    return postgres_url


def test_migrations_create_the_recall_index_on_postgresql(migrated):
    done = _run(["manage.py", "dbshell", "--", "-At", "-c",
                 "select indexdef from pg_indexes where tablename = 'recall_memory_idx' order by indexname"], migrated)
    assert done.returncode == 0, done.stderr
    assert "USING gin (doc)" in done.stdout


def test_recall_works_the_same_on_postgresql(migrated):
    done = _run(["tests/postgres/check_recall.py"], migrated)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "postgres recall ok" in done.stdout


@pytest.mark.parametrize(("pool", "most"), [("true", 8), ("false", None)])
def test_database_calls_share_pooled_connections(postgres_url, pool, most):
    env = {**os.environ, "DATABASE_URL": postgres_url, "DB_POOL": pool}
    done = subprocess.run([sys.executable, "tests/postgres/check_pool.py"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    calls, connections = (int(part.split("=")[1]) for part in done.stdout.split()[-2:])
    if most is None:  # without the pool each call opens and closes a connection of its own
        assert connections == calls == 80
    else:
        assert calls == 80 and connections <= most
