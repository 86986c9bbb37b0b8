"""Reading mode (竖排): a poem in a reply is set top to bottom, right to left, with a toggle the
browser remembers; with it on, the next poem is brushed down its columns while it streams."""

from __future__ import annotations

from tests.e2e.journeys import sign_up, start_chat
from tests.e2e.test_chat_journey import COMPLETIONS, _stream

POEM = "且听白吟来：\n\n床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。\n\n此乃旧作。"
SECOND = "再吟一首：\n\n朝辞白帝彩云间，\n千里江陵一日还。\n两岸猿声啼不住，\n轻舟已过万重山。"


def writing_mode(page, selector: str) -> str:
    return page.eval_on_selector(selector, "el => getComputedStyle(el).writingMode")


def test_a_poem_reads_vertically_and_streams_down_its_columns(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, _stream(POEM, 0.01), _stream(SECOND, 0.12))
    sign_up(page, app.url, "reader")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")

    page.fill("#chat-input", "太白兄，吟一首吧")
    page.keyboard.press("Enter")
    page.locator("article.message-assistant[data-status=complete]").nth(1).wait_for()  # after the greeting
    reply = page.locator("article.message-assistant[data-status=complete]").nth(1)
    verse = f"#{reply.get_attribute('id')} p.verse"
    assert writing_mode(page, verse) == "horizontal-tb"
    reply.get_by_role("button", name="竖排").click()
    assert reply.get_by_role("button", name="竖排").get_attribute("aria-pressed") == "true"
    assert writing_mode(page, verse) == "vertical-rl"
    # Only the poem turns: the prose around it keeps its lines.
    assert writing_mode(page, f"#{reply.get_attribute('id')} p:not(.verse)") == "horizontal-tb"
    # Right to left: the first line of the poem is the rightmost column.
    shot("vertical-poem")
    # Right to left, top to bottom: 床 (first line) stands right of 低 (last line), and above 光.
    where = page.eval_on_selector(verse, """el => {
      const texts = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
      const at = (node, i) => { const r = document.createRange(); const start = node.textContent.search(/\\S/) + i;
        r.setStart(node, start); r.setEnd(node, start + 1); const b = r.getBoundingClientRect(); return [b.x, b.y]; };
      return {first: at(texts[0], 0), fifth: at(texts[0], 4), last: at(texts[texts.length - 1], 0)};
    }""")
    assert where["first"][0] > where["last"][0] + 50  # columns run right to left
    assert where["fifth"][1] > where["first"][1] + 50 and abs(where["fifth"][0] - where["first"][0]) < 5

    # With the mode on, the next poem is written down its columns while it streams.
    page.fill("#chat-input", "再来一首")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.streaming .stream-para.verse", timeout=30000)
    assert writing_mode(page, "article.streaming .stream-para.verse") == "vertical-rl"
    assert page.locator("article.streaming .stream-para.verse span.ink").count() > 0
    shot("vertical-poem-streaming")
    page.locator("article.message-assistant[data-status=complete]").nth(2).wait_for(timeout=30000)
    second = page.locator("article.message-assistant[data-status=complete]").nth(2)
    assert writing_mode(page, f"#{second.get_attribute('id')} p.verse") == "vertical-rl"

    # The choice is the reader's and survives a reload; turning it off turns every poem back.
    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    assert page.locator("article.message.is-vertical").count() == 2
    page.locator("article.message.is-vertical button[data-action=vertical]").first.click()
    assert page.locator("article.message.is-vertical").count() == 0
    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    assert page.locator("article.message.is-vertical").count() == 0
