"""The shared submit limit on the database back-end in a real PostgreSQL: two worker processes, with
the site's settings and DATABASE_URL set, contend for one account."""

from __future__ import annotations

import os

from tests.chat.test_submit_limits import RATE, assert_within_rate, fresh_account
from tests.postgres.test_postgres import migrated  # noqa: F401  (fixture)
from tests.submit_contender import contend_in_processes


def test_two_processes_keep_to_one_rate(migrated):
    env = {**os.environ, "DATABASE_URL": migrated, "REDIS_URL": ""}
    backends, windows = contend_in_processes(env, fresh_account(), processes=2, rate=RATE, each=4)
    assert backends == ["postgresql"] * 2
    assert_within_rate([w for process in windows for w in process], expected=8)
