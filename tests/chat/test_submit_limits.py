"""The shared submit limit (chat/media/limits.py) on the database: threads with connections of their own
contend for one account; tests/redis and tests/postgres run the same checks across processes.

No test times anything: each grant reports the window of the shared clock it was granted in, and the
checks count grants per window."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections import Counter
from contextlib import closing

import pytest
from django.db import OperationalError, connection

from chat.media.limits import (
    DatabaseSubmitLimit,
    RedisSubmitLimit,
    SharedSubmitLimit,
    Stopping,
    account_key,
    shared_submit_limit,
)  # fmt: skip
from chat.models import SubmitSlot
from tests.submit_contender import contend_in_processes

pytestmark = pytest.mark.django_db(transaction=True)

RATE = 2
TRIES = 20  # attempts at catching a moment that the clock's next second could spoil


def fresh_account() -> str:
    return account_key("dashscope", "https://example.invalid/api/v1", secrets.token_hex(8))


def acquire_past_locks(limit: SharedSubmitLimit, account: str, rate: int) -> int:
    # The test database is SQLite's shared-cache memory database, where a second writer gets "table is
    # locked" at once instead of the busy wait a file database gives (the processes below use a file).
    # A failed attempt may have counted, never granted: trying again can only be stricter.
    while True:
        try:
            return limit.acquire(account, rate, threading.Event())
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise


def contend(limit: SharedSubmitLimit, account: str, *, threads: int = 3, each: int = 2, rate: int = RATE) -> list[int]:
    """The windows of every grant that `threads` threads, taking `each` grants apiece, got."""
    windows: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def take() -> None:
        try:
            start.wait()
            for _ in range(each):
                windows.append(acquire_past_locks(limit, account, rate))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()  # the thread's own connection

    running = [threading.Thread(target=take) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=120)
    assert errors == []
    return windows


def assert_within_rate(windows: list[int], expected: int, rate: int = RATE) -> None:
    assert len(windows) == expected  # every grant happened
    busiest = Counter(windows).most_common(1)[0][1]
    assert busiest <= rate, Counter(windows)


class StopWhenWaited(threading.Event):
    """Set the moment `acquire` starts to wait: a stop that comes mid-wait, with no race on the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.set()
        return True


def check_no_window_passes_the_rate(limit: SharedSubmitLimit) -> None:
    assert_within_rate(contend(limit, fresh_account(), threads=3, each=2), expected=6)


def check_accounts_do_not_share_a_limit(limit: SharedSubmitLimit) -> None:
    # Two grants to one account, then one to another, all in one window: only separate limits allow it.
    # A window's end between the calls spoils a try; a shared limit can never pass.
    stop = threading.Event()
    for _ in range(TRIES):
        first, other = fresh_account(), fresh_account()
        windows = [limit.acquire(first, RATE, stop), limit.acquire(first, RATE, stop), limit.acquire(other, RATE, stop)]
        if len(set(windows)) == 1:
            return
    pytest.fail(f"the other account never got a grant in the first account's full window: {windows}")


def check_a_stop_while_waiting_raises(limit: SharedSubmitLimit) -> None:
    class WorkerStopping(Exception):
        pass

    for _ in range(TRIES):
        account, stop = fresh_account(), StopWhenWaited()
        limit.acquire(account, 1, stop)
        try:
            limit.acquire(account, 1, stop, stopping=WorkerStopping)
        except WorkerStopping:
            [timeout] = stop.waits  # one wait, until the next window of the shared clock
            assert 0 < timeout <= 1.01
            return
        assert stop.waits == []  # the clock reached the next window first: granted without a wait, try again
    pytest.fail("the second grant in a window of rate 1 never had to wait")


def check_a_set_stop_takes_no_slot(limit: SharedSubmitLimit) -> None:
    account, stop = fresh_account(), threading.Event()
    stop.set()
    with pytest.raises(Stopping):
        limit.acquire(account, 1, stop)
    # Had the stopped call counted, this one would have to wait (unless the next second came first).
    then = StopWhenWaited()
    limit.acquire(account, 1, then)
    assert then.waits == []


@pytest.fixture
def limit(settings) -> SharedSubmitLimit:
    settings.REDIS_URL = ""
    return shared_submit_limit()


def test_without_redis_the_database_keeps_the_count(limit, settings):
    assert isinstance(limit, DatabaseSubmitLimit)
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # a client connects lazily: nothing is dialled here
    assert isinstance(shared_submit_limit(), RedisSubmitLimit)


def test_no_window_grants_more_than_the_rate(limit):
    check_no_window_passes_the_rate(limit)


def test_accounts_do_not_share_a_limit(limit):
    check_accounts_do_not_share_a_limit(limit)


def test_a_stop_while_waiting_raises_the_callers_exception(limit):
    check_a_stop_while_waiting_raises(limit)


def test_a_stop_already_set_raises_and_takes_no_slot(limit):
    check_a_set_stop_takes_no_slot(limit)


def test_two_processes_on_one_database_file_keep_to_the_rate(tmp_path):
    """Worker processes of one machine without Redis: SQLite in WAL mode, waiting on each other's locks."""
    path = tmp_path / "limits.sqlite3"
    with connection.schema_editor(collect_sql=True) as editor:
        editor.create_model(SubmitSlot)
    with closing(sqlite3.connect(path)) as raw:
        raw.executescript("\n".join(editor.collected_sql))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": ""}
    backends, windows = contend_in_processes(env, fresh_account(), processes=2, rate=RATE, each=3)
    assert backends == ["sqlite"] * 2
    assert_within_rate([w for process in windows for w in process], expected=6)


def test_a_new_window_deletes_the_accounts_old_rows(limit):
    account, other = fresh_account(), fresh_account()
    SubmitSlot.objects.bulk_create(
        [SubmitSlot(account=account, second=1, count=2), SubmitSlot(account=other, second=1, count=2)]
    )
    second = limit.acquire(account, RATE, threading.Event())
    assert set(SubmitSlot.objects.values_list("account", "second", "count")) == {(account, second, 1), (other, 1, 2)}


def test_the_table_holds_the_account_key_not_the_api_key(limit):
    api_key = "sk-" + secrets.token_hex(16)
    limit.acquire(account_key("dashscope", "https://example.invalid", api_key), RATE, threading.Event())
    assert not SubmitSlot.objects.filter(account__contains=api_key[3:11]).exists()


def test_the_account_key_is_stable_and_hides_the_key():
    key = account_key("dashscope", "https://dashscope.aliyuncs.com/api/v1", "sk-0123456789abcdef")
    assert key == account_key("dashscope", "https://dashscope.aliyuncs.com/api/v1", "sk-0123456789abcdef")
    assert key == "aca8fb8e45f7e9edbba6634b86cfcd7b"  # pinned: workers of two releases must agree
    assert len(key) == 32 and int(key, 16) >= 0
    assert "0123456789abcdef" not in key and "sk-" not in key
    assert key != account_key("dashscope", "https://dashscope.aliyuncs.com/api/v1", "sk-0123456789abcdeg")
    assert key != account_key("openrouter", "https://dashscope.aliyuncs.com/api/v1", "sk-0123456789abcdef")
    assert key != account_key("dashscope", "https://dashscope-intl.aliyuncs.com/api/v1", "sk-0123456789abcdef")
    # The separator keeps the parts apart: moving a character across a boundary is another account.
    assert account_key("a", "bc", "d") != account_key("ab", "c", "d")
