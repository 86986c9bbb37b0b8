"""A user adds an OpenRouter key and sees its remaining credit on 设置, in a real Chromium."""

from __future__ import annotations

import pytest

from tests.e2e.journeys import sign_up
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-or-v1-e2e0123456789abcdefc0de"


def test_the_remaining_credit_shows_beside_the_connection(live_server, page, shot, local_provider):
    key_body = {"data": {"limit": 20, "limit_remaining": 12.3, "usage": 7.7, "is_free_tier": False}}
    local_provider.route("GET", "/api/v1/key", json_reply(200, key_body), repeat=True)
    sign_up(page, live_server.url, "creditor")
    page.get_by_role("link", name="设置").click()
    page.select_option("#id_kind", "openrouter")
    page.fill("#id_label", "我的 OpenRouter")
    page.fill("#id_key", KEY)
    page.get_by_role("button", name="保存并验证").click()
    page.wait_for_selector("text=已保存「我的 OpenRouter」：有效")
    credit = page.locator("#credentials .credit")
    assert credit.inner_text() == "余额 $12.30（额度 $20.00，已用 $7.70）"
    shot("settings-credit")
