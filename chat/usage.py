"""Usage read from the replies' own rows (their tokens, as the provider reported them): a user's own on
设置, the whole site's in the admin (docs/usage.md). Days are calendar days in the site's zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from chat.models import Message
from chat.quota import TOKENS, Quota, day_start, month_start, quota_for, usage_zone
from guyue.lib.barchart import Chart, bar_chart, short_number

# A reply that cost something: the greeting, the guard's own lines and a refused key report nothing.
COSTED = Q(role=Message.Role.ASSISTANT) & (Q(prompt_tokens__isnull=False) | Q(completion_tokens__isnull=False))


@dataclass(frozen=True)
class Day:
    date: dt.date
    tokens: int
    replies: int


@dataclass
class UserUsage:
    today: int
    month: int
    month_replies: int
    quota: Quota
    figures: list[dict] = field(default_factory=list)  # this month: name, tokens, replies
    days: list[Day] = field(default_factory=list)

    @property
    def chart(self) -> Chart:
        return days_chart(self.days, width=520)  # half of 设置's width: a narrower box, larger type


def _costed() -> QuerySet:
    return Message.objects.filter(COSTED).order_by()


def _by_day(rows: QuerySet, start: dt.datetime, days: int) -> list[Day]:
    """Every day from `start` on, those without a reply as zeros (one GROUP BY in the site's zone)."""
    counted = {
        row["day"]: row
        for row in rows.filter(created_at__gte=start).annotate(day=TruncDate("created_at", tzinfo=usage_zone()))
        .values("day").annotate(tokens=Sum(TOKENS), replies=Count("pk"))
    }
    first = start.date()
    dates = [first + dt.timedelta(days=n) for n in range(days)]
    return [Day(d, counted.get(d, {}).get("tokens") or 0, counted.get(d, {}).get("replies") or 0) for d in dates]


def days_chart(days: list[Day], *, width: int = 760) -> Chart:
    points = [(f"{d.date.month}/{d.date.day}", d.tokens,
               f"{d.date.month}月{d.date.day}日：{d.tokens:,} token，{d.replies} 次回答") for d in days]
    return bar_chart(points, width=width, label_every=7 if len(days) <= 31 else 14)


def _window_start(now: dt.datetime, days: int) -> dt.datetime:
    """Midnight `days - 1` days before today's, in the site's zone (by dates, not hours: clocks change)."""
    first = day_start(now).date() - dt.timedelta(days=days - 1)
    return dt.datetime.combine(first, dt.time(), tzinfo=usage_zone())


def user_usage(user, *, now: dt.datetime | None = None, days: int = 30) -> UserUsage:
    """One user's usage: today, this month, by figure this month, and the last `days` days by day."""
    now = now or timezone.now()
    mine = _costed().filter(conversation__owner=user)
    start = min(_window_start(now, days), month_start(now))  # the month's first day may be further back
    by_day = _by_day(mine, start, (day_start(now).date() - start.date()).days + 1)
    this_month, today = month_start(now).date(), day_start(now).date()
    in_month = [d for d in by_day if d.date >= this_month]
    figures = (
        mine.filter(created_at__gte=month_start(now))
        .values(name=Coalesce("speaker__name", "conversation__persona__name"))
        .annotate(tokens=Sum(TOKENS), replies=Count("pk")).order_by("-tokens", "name")
    )
    return UserUsage(
        today=sum(d.tokens for d in by_day if d.date == today), month=sum(d.tokens for d in in_month),
        month_replies=sum(d.replies for d in in_month), quota=quota_for(user, now=now), figures=list(figures),
        days=by_day[-days:],
    )


@dataclass
class SiteUsage:
    days: list[Day]
    users: list[dict]  # user_id, username, tokens, replies, today; quota, quota_id: their own, if a curator set one
    keys: list[dict]  # label, tokens, replies, share
    total: int
    chart: Chart


KEY_GROUPS = {"own": "用户自带的密钥（合计）", "none": "密钥已删除或未记录（含启用统计之前的回答）"}


def _keys(rows: QuerySet) -> list[dict]:
    """Site-wide keys one by one; the users' own keys are theirs, so only their sum is shown."""
    grouped: dict[str, dict] = {}
    for row in rows.values("credential", "credential__label", "credential__key_hint", "credential__owner").annotate(
            tokens=Sum(TOKENS), replies=Count("pk")):
        if row["credential"] is None:
            key, label = "none", KEY_GROUPS["none"]
        elif row["credential__owner"] is not None:
            key, label = "own", KEY_GROUPS["own"]
        else:
            key, label = f"site-{row['credential']}", f"{row['credential__label']}（{row['credential__key_hint']}）"
        entry = grouped.setdefault(key, {"label": label, "tokens": 0, "replies": 0,
                                         "site_key": row["credential"] if key.startswith("site-") else None})
        entry["tokens"] += row["tokens"] or 0
        entry["replies"] += row["replies"]
    return sorted(grouped.values(), key=lambda e: (-e["tokens"], e["label"]))


def _with_shares(rows: list[dict], total: int) -> list[dict]:
    for row in rows:
        row["share"] = round(100 * row["tokens"] / total, 1) if total else 0
        row["short"] = short_number(row["tokens"])
    return rows


def site_usage(*, now: dt.datetime | None = None, days: int = 30, user_id: int | None = None,
               credential_id: int | None = None) -> SiteUsage:
    """The whole site's usage over the last `days` days, per day, per user and per key; narrowed to
    one user or one site-wide key when asked."""
    now = now or timezone.now()
    start = _window_start(now, days)
    rows = _costed().filter(created_at__gte=start)
    if user_id is not None:
        rows = rows.filter(conversation__owner_id=user_id)
    if credential_id is not None:
        rows = rows.filter(credential_id=credential_id, credential__owner__isnull=True)
    by_day = _by_day(rows, start, days)
    total = sum(d.tokens for d in by_day)
    users = list(
        rows.values(user_id=F("conversation__owner"), username=F("conversation__owner__username"),
                    quota=F("conversation__owner__quota__daily_token_quota"),
                    quota_id=F("conversation__owner__quota__pk"))
        .annotate(tokens=Sum(TOKENS), replies=Count("pk"), today=Sum(TOKENS, filter=Q(created_at__gte=day_start(now))))
        .order_by("-tokens", "username")[:100]
    )
    for row in users:
        row["today"] = row["today"] or 0
    return SiteUsage(days=by_day, users=_with_shares(users, total), keys=_with_shares(_keys(rows), total),
                     total=total, chart=days_chart(by_day))
