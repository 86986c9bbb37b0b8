"""Daily token quotas (docs/usage.md). What a user has spent is read from the replies' own rows, so
every process agrees and nothing is kept in memory. A day is a calendar day in the site's time
zone (TIME_ZONE, Asia/Shanghai by default) whatever the server's own zone: the quota resets at
midnight there."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import QuotaSettings, UserQuota
from chat.models import Conversation, Message
from chat.services import MessageRejected

# A reply's tokens; a row the provider reported nothing for (a greeting, the guard's own line) is 0.
TOKENS = Coalesce(F("prompt_tokens"), 0) + Coalesce(F("completion_tokens"), 0)


ZONE_NAMES = {"Asia/Shanghai": "北京时间"}


def usage_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def zone_name() -> str:
    return ZONE_NAMES.get(settings.TIME_ZONE, settings.TIME_ZONE)


def day_start(moment: dt.datetime) -> dt.datetime:
    """Midnight in the site's zone of the day `moment` (an aware datetime) falls on."""
    return moment.astimezone(usage_zone()).replace(hour=0, minute=0, second=0, microsecond=0)


def next_day_start(moment: dt.datetime) -> dt.datetime:
    # Via the date, not +24 h: a zone with daylight saving has 23- and 25-hour days.
    following = day_start(moment).date() + dt.timedelta(days=1)
    return dt.datetime.combine(following, dt.time(), tzinfo=usage_zone())


def month_start(moment: dt.datetime) -> dt.datetime:
    return day_start(moment).replace(day=1)


def effective_limit(own: int | None, site: int | None) -> int | None:
    """The user's own limit when a curator set one, else the site's; 0 and empty both mean no limit."""
    limit = own if own is not None else site
    return limit or None


@dataclass(frozen=True)
class Quota:
    limit: int | None  # tokens a day; None: no limit
    used: int  # tokens spent today

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def percent(self) -> int:
        return 0 if not self.limit else min(100, round(100 * self.used / self.limit))


class QuotaExceeded(MessageRejected):
    """No model call is made: the user has spent today's tokens. The message is the site's, not a figure's."""

    def __init__(self, quota: Quota):
        super().__init__(refusal_text(quota), "quota")
        self.quota = quota


def refusal_text(quota: Quota) -> str:
    return (f"今日的用量额度已用完（已用 {quota.used:,} / {quota.limit:,} token），没有请人物作答。"
            f"额度在每天零点（{zone_name()}）重置；如需更多额度，请联系本站管理员。")


@functools.cache
def _quota_sql() -> str:
    message, conversation = Message._meta.db_table, Conversation._meta.db_table
    return f"""
SELECT (SELECT q.daily_token_quota FROM {UserQuota._meta.db_table} q WHERE q.user_id = %s),
       (SELECT s.daily_token_quota FROM {QuotaSettings._meta.db_table} s WHERE s.id = 1),
       (SELECT SUM(COALESCE(m.prompt_tokens, 0) + COALESCE(m.completion_tokens, 0))
          FROM {message} m JOIN {conversation} c ON c.id = m.conversation_id
         WHERE c.owner_id = %s AND m.created_at >= %s AND m.created_at < %s)"""


def quota_for(user, *, now: dt.datetime | None = None) -> Quota:
    """The user's quota and what they spent today, in one statement (it runs before every reply): the
    user's own limit, the site's default and the sum of today's tokens, as subqueries of one SELECT.
    Written as SQL: compiling the same query through the ORM cost more than running it."""
    now = now or timezone.now()
    ops = connection.ops
    start, end = (ops.adapt_datetimefield_value(moment) for moment in (day_start(now), next_day_start(now)))
    with connection.cursor() as cursor:
        cursor.execute(_quota_sql(), [user.pk, user.pk, start, end])
        own, site, used = cursor.fetchone()
    return Quota(limit=effective_limit(own, site), used=used or 0)


def quota_check(user) -> None:
    """Raise QuotaExceeded when the user has no tokens left today."""
    quota = quota_for(user)
    if quota.exceeded:
        raise QuotaExceeded(quota)
