"""Usage and quotas in a real Chromium: a reply's tokens appear on 设置 (numbers, chart, by figure);
once a curator's quota is spent the next message is kept and a notice says why no one answers; the
curator's report in the admin draws the same usage."""

from __future__ import annotations

import re

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.journeys import sign_up, start_chat
from tests.fakes.upstream import sse_reply

COMPLETIONS = "/api/v1/chat/completions"
CURATOR_PASSWORD = "Curate-the-past-1"
ANSWER = "君问何事？且听白道来。"


def _reply():
    return sse_reply([
        {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": ANSWER}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 1180, "completion_tokens": 54, "total_tokens": 1234}},
        "data: [DONE]\n\n",
    ])


def _set_site_quota(app, tokens: int) -> None:
    app.manage_output("shell", "-c", "from accounts.models import QuotaSettings; "
                      f"QuotaSettings.objects.update_or_create(pk=1, defaults={{'daily_token_quota': {tokens}}})")


def test_usage_on_settings_then_the_quota_notice_then_the_admin_report(app, upstream, page, shot, browser):
    upstream.route("POST", COMPLETIONS, _reply())
    base = app.url
    sign_up(page, base, "reader")
    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", "太白兄，近来可好？")
    page.click("#chat-send")
    page.wait_for_selector(f"article.message-assistant:has-text('{ANSWER}')")
    chat_url = page.url

    _set_site_quota(app, 1000)  # a curator's default, read from the database by the running server
    page.goto(base + "/accounts/settings/")
    usage = page.locator("#usage")
    usage.scroll_into_view_if_needed()
    stats = usage.locator(".usage-stats").inner_text()
    assert "1,234" in stats and "1 次回答" in stats and "1,000" in stats and "今日还剩 0" in stats
    assert "今日额度已用完" in usage.inner_text()
    row = usage.locator(".usage-table tbody tr").first.inner_text()
    assert "李白" in row and "1,234" in row
    assert usage.locator(".usage-chart rect.chart-bar").count() == 30
    tallest = max(float(h) for h in usage.locator(".usage-chart rect.chart-bar").evaluate_all(
        "bars => bars.map(b => b.getAttribute('height'))"))
    assert tallest > 50  # today's bar stands; the other days are empty
    shot("usage-settings")

    page.goto(chat_url)
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", "再请教一句")
    page.click("#chat-send")
    notice = page.locator("#chat-notice")
    notice.filter(has_text="今日的用量额度已用完").wait_for()
    assert "1,234 / 1,000" in notice.inner_text()
    page.locator("article.message-user", has_text="再请教一句").wait_for()  # kept, shown, not answered
    assert page.locator("article.message-assistant").count() == 2  # the greeting and the first answer
    assert len(upstream.requests) == 1
    shot("usage-quota-notice")

    app.manage_output("makecurator", "curator", "--password", CURATOR_PASSWORD)
    curator = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    curator.goto(base + "/accounts/login/")
    curator.fill("#id_username", "curator")
    curator.fill("#id_password", CURATOR_PASSWORD)
    curator.get_by_role("button", name="登录").click()
    curator.wait_for_url(base + "/")
    curator.goto(base + "/admin/")
    curator.get_by_role("link", name="用量与额度").click()
    curator.wait_for_url("**/admin/accounts/quotasettings/")
    report = curator.locator("#content-main").inner_text()
    assert "共 1,234 token" in report and "reader" in report and re.search(r"OpenRouter|sk-or-", report)
    assert curator.locator("svg rect.chart-bar").count() == 30
    curator.screenshot(path=str(ARTIFACTS / "usage-admin.png"), full_page=True)
    curator.context.close()
