"""Retry-After parsing and backoff timing (openai-python's rules, docs/provider-reference.md §6)."""

from __future__ import annotations

import email.utils

import pytest

from chat.providers import retry
from chat.providers.retry import backoff_delay, parse_retry_after

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": " 0.5 "}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "7"}, 1.5),  # ms wins
        ({"retry-after-ms": "soon", "retry-after": "7"}, 7.0),
        ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, -30.0),
        ({"retry-after": "next tuesday"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_it_parses_retry_after_headers(headers, expected):
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize("hint", [0.001, 2.0, 60.0])
def test_it_honours_hints_up_to_a_minute(hint):
    assert backoff_delay(0, hint) == hint
    assert backoff_delay(5, hint) == hint


@pytest.mark.parametrize("hint", [None, 0.0, -3.0, 60.5, 120.0, float("inf")])
def test_it_falls_back_to_backoff_for_other_hints(hint, monkeypatch):
    monkeypatch.setattr(retry, "_random", lambda: 0.0)
    assert backoff_delay(0, hint) == 0.5


@pytest.mark.parametrize("retries, base", [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)])
def test_it_backs_off_exponentially_with_a_cap(retries, base, monkeypatch):
    monkeypatch.setattr(retry, "_random", lambda: 0.0)
    assert backoff_delay(retries, None) == base
    monkeypatch.setattr(retry, "_random", lambda: 1.0)
    assert backoff_delay(retries, None) == base * 0.75  # jitter trims up to a quarter


def test_it_jitters_for_real():
    delays = {backoff_delay(1, None) for _ in range(50)}
    assert len(delays) > 1 and all(0.75 <= d <= 1.0 for d in delays)
