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
