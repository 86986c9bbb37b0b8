"""The card's alternate greetings open a new conversation as switchable versions of the first one."""

from __future__ import annotations

import json

from personas.seed import SEED_DIR
from tests.e2e.journeys import sign_up, start_chat


def test_the_greeting_switches_to_the_cards_other_greetings(app, page, shot):
    data = json.loads((SEED_DIR / "figures" / "li-bai.json").read_text(encoding="utf-8"))["data"]
    first, other = data["first_mes"], data["alternate_greetings"][0]
    sign_up(page, app.url, "greeted")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    greeting = page.locator("article.message-assistant").first
    assert greeting.locator(".switch-position").inner_text() == f"1/{1 + len(data['alternate_greetings'])}"
    assert first[:12] in greeting.locator(".message-body").inner_text()
    shot("greeting-first")

    greeting.get_by_role("button", name="下一个版本").click()
    page.locator("article.message-assistant").first.locator(".switch-position >> text=2/").wait_for()
    body = page.locator("article.message-assistant").first.locator(".message-body")
    body.get_by_text(other[:12]).wait_for()
    assert first[:12] not in body.inner_text() and page.locator("article.message").count() == 1
    shot("greeting-switched")

    page.reload()  # the choice was saved: the conversation now opens with that greeting
    assert other[:12] in page.locator("article.message-assistant").first.inner_text()
    assert "Traceback" not in app.server_log()
