"""Daily token quotas (docs/usage.md). What a user has spent is read from the replies' own rows, so
every process agrees and nothing is kept in memory. A day is a calendar day in the site's time
zone (TIME_ZONE, Asia/Shanghai by default) whatever the server's own zone: the quota resets at
midnight there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import QuotaSettings, UserQuota
from chat.models import Message
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


def quota_for(user, *, now: dt.datetime | None = None) -> Quota:
    """The user's quota and what they spent today, in one statement (it runs before every reply): the
    user's own limit, the site's default and the sum of today's tokens, as subqueries of one SELECT."""
    now = now or timezone.now()
    spent = (
        Message.objects.filter(conversation__owner=OuterRef("pk"), created_at__gte=day_start(now),
                               created_at__lt=next_day_start(now))
        .order_by().values("conversation__owner").annotate(total=Sum(TOKENS)).values("total")
    )
    row = (
        get_user_model().objects.filter(pk=user.pk)
        .annotate(own=Subquery(UserQuota.objects.filter(user=OuterRef("pk")).order_by().values("daily_token_quota")[:1]),
                  site=Subquery(QuotaSettings.objects.filter(pk=1).values("daily_token_quota")[:1]),
                  used=Subquery(spent))
        .values("own", "site", "used").first()
    ) or {}
    return Quota(limit=effective_limit(row.get("own"), row.get("site")), used=row.get("used") or 0)


def quota_check(user) -> None:
    """Raise QuotaExceeded when the user has no tokens left today."""
    quota = quota_for(user)
    if quota.exceeded:
        raise QuotaExceeded(quota)
