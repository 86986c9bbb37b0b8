"""Choosing and finding conversations in a real Chromium: a returning user starts a two-figure scene
with a life stage from the start page, and a user searches their conversations and opens a hit in
the branch that holds it (issue 14, items 2 and 3)."""

from __future__ import annotations

from tests.e2e.journeys import sign_up, start_chat, whole_reply

COMPLETIONS = "/api/v1/chat/completions"


def _say(page, text: str, answer: str) -> None:
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", text)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"article.message-assistant[data-status='complete'] >> text={answer}")


def test_a_returning_user_starts_a_scene_with_a_life_stage(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("白在翰林，日日醉眠。"), whole_reply("甫与太白兄同游梁宋，至今难忘。"))
    base = app.url
    sign_up(page, base, "scener")
    start_chat(page, base)  # the first conversation: from now on 开始对话 must still offer stages and scenes

    page.goto(f"{base}/figures/li-bai/")
    page.get_by_role("link", name="开始对话").click()
    page.wait_for_url("**/chat/start/li-bai/")
    assert page.get_by_role("link", name="继续上次的对话").is_visible()
    stage = page.locator("#id_life_stage option", has_text="供奉翰林").get_attribute("value")
    page.select_option("#id_life_stage", stage)
    page.select_option("#id_guest_1", label="杜甫")
    shot("start-choice")
    page.get_by_role("button", name="开始新对话").click()
    page.wait_for_url("**/chat/*/")

    assert "同场：杜甫" in page.inner_text(".scene-partner")
    assert page.input_value("#id_life_stage") == stage
    assert page.locator("article.message-assistant").count() == 2  # both figures' greetings
    _say(page, "二位可曾同游梁宋？", "至今难忘")
    first, second = (request.json()["messages"][0]["content"] for request in upstream.requests)
    assert "供奉翰林" in first  # 李白 answers as he was in that stage
    assert "杜甫" in second and "甫与太白兄" in page.inner_text("#message-list")
    shot("scene-with-stage")

    page.goto(f"{base}/chat/start/li-bai/")  # the new scene is now the one to continue
    assert "同场：杜甫" in page.inner_text(".start-last")


def test_search_a_word_and_open_the_message_in_its_branch(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("崔颢题诗在上头，白只好搁笔。"), whole_reply("长安一片月。"),
                   whole_reply("难于上青天！"), whole_reply("黄鹤楼？甫未曾登临。"))
    base = app.url
    sign_up(page, base, "seeker")
    start_chat(page, base)
    _say(page, "太白兄，黄鹤楼上可曾题诗？", "白只好搁笔")
    _say(page, "长安的月色如何？", "长安一片月")
    # Edit the first question: the 黄鹤楼 exchange is now on a branch that is not shown.
    page.locator("article.message-user", has_text="黄鹤楼").get_by_role("button", name="修改").click()
    page.fill(".message-editor textarea", "蜀道究竟有多难？")
    page.get_by_role("button", name="保存并重新发送").click()
    page.wait_for_selector("article.message-assistant[data-status='complete'] >> text=难于上青天")
    # Gone from the conversation (the title, from the first question, may still say it).
    assert page.locator("#message-list >> text=黄鹤楼").count() == 0
    start_chat(page, base, "du-fu")
    _say(page, "杜工部，黄鹤楼你去过吗", "甫未曾登临")

    page.get_by_role("link", name="对话", exact=True).click()  # every conversation, with every figure
    listed = page.locator(".search-page .card-list").inner_text()
    assert "太白兄，黄鹤楼上可曾题诗？" in listed and "杜工部，黄鹤楼你去过吗" in listed
    page.go_back()  # the chat page again, as it is now (never a cached copy without the exchange)
    page.wait_for_selector("article.message-user >> text=杜工部，黄鹤楼你去过吗")
    page.locator("#conversation-list > summary").click()  # the search box above the conversation list
    page.fill(".conversation-search input", "鹤楼")  # part of a word, no spaces
    shot("conversation-list-search")
    page.keyboard.press("Enter")
    page.wait_for_url("**/chat/search/?q=*")
    hits = page.locator(".search-hit")
    hits.first.wait_for()
    assert hits.count() == 2  # both figures
    assert page.locator(".search-hit mark").all_inner_texts() == ["鹤楼", "鹤楼"]
    li_bai_hit = hits.filter(has_text="太白兄")
    assert "太白兄，黄鹤楼上可曾题诗" in li_bai_hit.inner_text()  # the first question named the conversation
    shot("search-results")

    li_bai_hit.click()
    page.wait_for_url("**/chat/*/?message=*")
    page.wait_for_selector("#chat-send:not([disabled])")
    found = page.locator("article.message-user", has_text="太白兄，黄鹤楼上可曾题诗？")
    assert found.is_visible() and page.evaluate("() => document.querySelector(':target')?.id") == found.get_attribute("id")
    assert page.locator("text=白只好搁笔").is_visible() and page.locator("text=长安一片月").is_visible()
    assert page.locator("text=难于上青天").count() == 0  # the other branch is not shown
    assert found.locator(".switch-position").inner_text() == "1/2"
    shot("search-opened-branch")
