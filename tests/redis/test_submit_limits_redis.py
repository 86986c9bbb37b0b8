"""The shared submit limit on the session's real redis-server: the checks of tests/chat, then two worker
processes contending for one account."""

from __future__ import annotations

import os
import threading

import pytest
import redis

from chat.media.limits import RedisSubmitLimit, account_key, shared_submit_limit
from tests.chat.test_submit_limits import (
    RATE,
    assert_within_rate,
    check_a_set_stop_takes_no_slot,
    check_a_stop_while_waiting_raises,
    check_accounts_do_not_share_a_limit,
    check_no_window_passes_the_rate,
    fresh_account,
)  # fmt: skip
from tests.submit_contender import contend_in_processes


@pytest.fixture
def limit(settings, redis_url) -> RedisSubmitLimit:
    settings.REDIS_URL = redis_url
    picked = shared_submit_limit()
    assert isinstance(picked, RedisSubmitLimit)
    return picked


def test_no_window_grants_more_than_the_rate(limit):
    check_no_window_passes_the_rate(limit)


def test_accounts_do_not_share_a_limit(limit):
    check_accounts_do_not_share_a_limit(limit)


def test_a_stop_while_waiting_raises_the_callers_exception(limit):
    check_a_stop_while_waiting_raises(limit)


def test_a_stop_already_set_raises_and_takes_no_slot(limit):
    check_a_set_stop_takes_no_slot(limit)


def test_a_windows_key_names_the_account_not_the_api_key_and_expires(limit, redis_url):
    api_key = "sk-redis-0123456789abcdef"
    account = account_key("dashscope", "https://example.invalid/api/v1", api_key)
    second = limit.acquire(account, RATE, threading.Event())
    raw = redis.Redis.from_url(redis_url)
    key = f"submit:{{{account}}}:{second}".encode()
    assert raw.get(key) == b"1"
    assert 0 < raw.ttl(key) <= 2
    assert not [k for k in raw.keys("*") if b"0123456789abcdef" in k]


def test_two_processes_keep_to_one_rate(redis_url):
    env = {**os.environ, "REDIS_URL": redis_url}
    backends, windows = contend_in_processes(env, fresh_account(), processes=2, rate=RATE, each=4)
    assert backends == ["redis"] * 2
    assert_within_rate([w for process in windows for w in process], expected=8)
