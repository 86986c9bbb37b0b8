"""A salon (雅集) of four in a real Chromium: started from the start page, everyone answers in seat order,
a figure not addressed keeps silent (its bubble goes), ticking one figure asks it first, and a
飞花令 whose rule the site keeps (docs/salon.md)."""

from __future__ import annotations

from tests.e2e.journeys import sign_up, whole_reply

COMPLETIONS = "/api/v1/chat/completions"


def _sent(page, text: str) -> None:
    page.wait_for_selector("#chat-send:not([disabled])")
    page.fill("#chat-input", text)
    page.keyboard.press("Enter")


def _complete(page, count: int) -> None:
    """Until `count` figures' bubbles are finished and none is being written."""
    page.locator("article.message-assistant[data-status='complete']").nth(count - 1).wait_for()
    page.locator("article.streaming").first.wait_for(state="detached")


def test_a_salon_of_four_with_a_silence_and_a_feihua_ling(app, upstream, page, shot):
    upstream.route(
        "POST", COMPLETIONS,
        whole_reply("月下独酌，何须问人？"), whole_reply("甫以为，月是故乡明。"),
        whole_reply("明月松间照，清泉石上流。"), whole_reply("明月几时有？把酒问青天。"),
        whole_reply("此诗作于长安，白醉后所书。"), whole_reply("（静听）"), whole_reply("（静听）"),
        whole_reply("「轼」亦有一说：此诗豪气胜于辞采。"),
        whole_reply("「花间一壶酒」"), whole_reply("「感时花溅泪」"), whole_reply("「明月松间照」"),
        whole_reply("「人面桃花相映红」"),
    )
    base = app.url
    sign_up(page, base, "salonist")
    page.goto(f"{base}/chat/start/li-bai/")
    page.select_option("#id_guest_1", label="杜甫")
    page.select_option("#id_guest_2", label="李清照")
    page.select_option("#id_guest_3", label="苏轼")
    shot("salon-start")
    page.get_by_role("button", name="开始对话").click()
    page.wait_for_url("**/chat/*/")
    assert page.locator("article.message-assistant").count() == 4  # four greetings
    assert page.locator(".scene-partner").count() == 3

    _sent(page, "诸位以为月色如何？")
    _complete(page, 8)
    authors = page.locator("#message-list article.message-assistant .message-author").all_inner_texts()
    assert authors[-4:] == ["李白", "杜甫", "李清照", "苏轼"]

    page.locator("#chat-to label", has_text="李白").locator("input").check()
    _sent(page, "太白先生，《月下独酌》作于何处？")
    _complete(page, 10)
    page.locator("#chat-to label", has_text="李白").locator("input").uncheck()
    text = page.inner_text("#message-list")
    assert "静听" not in text and "此诗豪气胜于辞采" in text  # 杜甫 and 李清照 kept silent; 苏轼 added
    shot("salon-silence")

    page.get_by_role("button", name="飞花令").click()
    assert page.input_value("#chat-input") == "/飞花令 花"
    page.keyboard.press("Enter")
    _complete(page, 14)
    notes = page.locator(".game-note").all_inner_texts()
    assert len(notes) == 1 and "没有令字「花」" in notes[0]  # 李清照's line, ruled by the site
    _sent(page, "床前明月光")
    page.wait_for_selector("#chat-notice:has-text('没有令字')")
    assert page.input_value("#chat-input") == "床前明月光"  # the refused line stays to be corrected
    shot("salon-feihua")
    assert len(upstream.requests) == 12
