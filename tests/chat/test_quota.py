"""Quota arithmetic: days are calendar days in Asia/Shanghai (UTC+8), whatever the server's own zone;
the limit is the user's own, else the site's; counts come from the database, read in one statement."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from accounts.models import QuotaSettings, UserQuota
from chat import services
from chat.quota import (
    Quota,
    QuotaExceeded,
    day_start,
    effective_limit,
    month_start,
    next_day_start,
    quota_check,
    quota_for,
    refusal_text,
)
from tests.chat.spending import spend
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# 2026-03-01 23:59 and 2026-03-02 00:01 in Shanghai.
LATE = dt.datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
EARLY_NEXT = dt.datetime(2026, 3, 1, 16, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


@pytest.fixture
def server_in_new_york():
    """The process's own zone (what naive local time would use) is far from Shanghai's."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def conversation(alice):
    return services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))


def test_a_shanghai_day_starts_at_16_utc(server_in_new_york):
    assert day_start(LATE) == dt.datetime(2026, 3, 1, 16, 0, tzinfo=UTC) - dt.timedelta(days=1)
    assert day_start(EARLY_NEXT) == dt.datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert next_day_start(LATE) == day_start(EARLY_NEXT)
    assert day_start(LATE).date() == dt.date(2026, 3, 1) and day_start(EARLY_NEXT).date() == dt.date(2026, 3, 2)


def test_a_shanghai_month_starts_on_the_last_evening_of_the_utc_month():
    first_of_march = dt.datetime(2026, 2, 28, 16, 30, tzinfo=UTC)  # 00:30 on 1 March in Shanghai
    assert month_start(first_of_march) == dt.datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert month_start(LATE) == dt.datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert month_start(dt.datetime(2026, 2, 28, 15, 59, tzinfo=UTC)) == dt.datetime(2026, 1, 31, 16, 0, tzinfo=UTC)


def test_the_users_own_limit_wins_and_zero_or_empty_means_no_limit():
    assert effective_limit(None, 5000) == 5000
    assert effective_limit(800, 5000) == 800
    assert effective_limit(0, 5000) is None  # a curator lifted this user's limit
    assert effective_limit(None, None) is None and effective_limit(None, 0) is None


def test_the_quota_is_spent_at_the_limit_not_before():
    assert not Quota(limit=1000, used=999).exceeded
    assert Quota(limit=1000, used=1000).exceeded
    assert Quota(limit=1000, used=1500).remaining == 0
    assert not Quota(limit=None, used=10**9).exceeded and Quota(limit=None, used=5).remaining is None


def test_the_refusal_is_the_sites_own_words_in_chinese():
    text = refusal_text(Quota(limit=10_000, used=12_345))
    assert "今日的用量额度已用完" in text and "12,345 / 10,000" in text and "北京时间" in text


def test_tokens_at_2359_shanghai_count_that_day_and_not_the_next(alice, conversation, server_in_new_york):
    QuotaSettings.objects.create(pk=1, daily_token_quota=1000)
    spend(conversation, 1000, at=LATE - dt.timedelta(seconds=30))
    assert quota_for(alice, now=LATE).used == 1000
    assert quota_for(alice, now=LATE).exceeded
    after_midnight = quota_for(alice, now=EARLY_NEXT)
    assert after_midnight.used == 0 and not after_midnight.exceeded


def test_tokens_just_after_midnight_count_for_the_new_day_only(alice, conversation):
    QuotaSettings.objects.create(pk=1, daily_token_quota=1000)
    spend(conversation, 400, at=LATE)
    spend(conversation, 700, at=EARLY_NEXT)
    assert quota_for(alice, now=LATE + dt.timedelta(seconds=30)).used == 400
    assert quota_for(alice, now=EARLY_NEXT + dt.timedelta(hours=20)).used == 700  # 20:01, still 2 March
    assert quota_for(alice, now=EARLY_NEXT + dt.timedelta(hours=24)).used == 0


def test_only_the_users_own_replies_count(alice, bob, conversation):
    QuotaSettings.objects.create(pk=1, daily_token_quota=1000)
    bobs = services.conversation_start(owner=bob, persona=conversation.persona)
    spend(bobs, 5000, at=LATE)
    spend(conversation, 10, at=LATE)
    assert quota_for(alice, now=LATE).used == 10 and quota_for(bob, now=LATE).exceeded


def test_a_curator_set_limit_overrides_the_default(alice, conversation):
    QuotaSettings.objects.create(pk=1, daily_token_quota=100)
    spend(conversation, 500, at=LATE)
    assert quota_for(alice, now=LATE).exceeded
    UserQuota.objects.create(user=alice, daily_token_quota=1000)
    assert quota_for(alice, now=LATE) == Quota(limit=1000, used=500)
    UserQuota.objects.filter(user=alice).update(daily_token_quota=0)
    assert quota_for(alice, now=LATE).limit is None


def test_without_any_row_there_is_no_limit(alice, conversation):
    spend(conversation, 10**6)
    quota = quota_for(alice)
    assert quota.limit is None and quota.used == 10**6
    quota_check(alice)  # does not raise


def test_quota_check_raises_with_the_notice(alice, conversation):
    QuotaSettings.objects.create(pk=1, daily_token_quota=50)
    spend(conversation, 50)
    with pytest.raises(QuotaExceeded) as caught:
        quota_check(alice)
    assert caught.value.code == "quota" and "50 / 50" in str(caught.value)


def test_reading_the_quota_is_one_statement(alice, conversation, django_assert_num_queries):
    QuotaSettings.objects.create(pk=1, daily_token_quota=50)
    UserQuota.objects.create(user=alice, daily_token_quota=70)
    spend(conversation, 60)
    with django_assert_num_queries(1):
        assert quota_for(alice) == Quota(limit=70, used=60)
