"""Export every branch, share one branch, download the 长卷, in a real Chromium: the owner regenerates
a reply and edits a question, downloads the whole tree, makes a read-only link, a logged-out
browser reads it (and nothing said later), the owner revokes it and the link is a 404."""

from __future__ import annotations

import io
import json

from PIL import Image

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.journeys import sign_up, start_chat, whole_reply

COMPLETIONS = "/api/v1/chat/completions"


def _download(page, click) -> bytes:
    with page.expect_download() as info:
        click()
    return open(info.value.path(), "rb").read()


def test_export_the_tree_share_a_branch_and_revoke_it(app, upstream, browser, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("不饮。"), whole_reply("且饮三百杯！"),
                   whole_reply("月在青天，照我金樽。"), whole_reply("此后的话。"))
    base = app.url
    sign_up(page, base, "sharer")
    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")

    page.fill("#chat-input", "饮否？")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message-assistant[data-status=complete] >> text=不饮。")
    page.locator("article.message-assistant").last.get_by_role("button", name="重新生成").click()
    page.wait_for_selector("article.message-assistant[data-status=complete] >> text=且饮三百杯！")
    question = page.locator("article.message-user", has_text="饮否？")
    question.get_by_role("button", name="修改").click()
    question.get_by_label("修改这句话").fill("月在何处？")
    question.get_by_role("button", name="保存并重新发送").click()
    page.wait_for_selector("article.message-assistant[data-status=complete] >> text=月在青天，照我金樽。")

    # 导出 → 全部分支: both formats hold every version.
    page.locator("#export-menu > summary").click()
    page.get_by_label("全部分支（含重新生成、修改过的各个版本）").check()
    shot("share-export-menu")
    rows = [json.loads(line) for line in
            _download(page, lambda: page.get_by_role("button", name="下载 JSONL").click()).decode().splitlines()]
    # The roots: the seeded figure's first words and its alternate greetings (versions of the first message).
    roots = [r for r in rows if r["parent_id"] is None]
    assert rows[0] in roots and len(roots) >= 2 and all(len(r["content"]) > 10 for r in roots)
    greeting, alternates = rows[0]["content"], [r["content"] for r in roots[1:]]  # the first is shown
    assert sorted(r["content"] for r in rows if r["parent_id"] is not None) == sorted(
        ["饮否？", "不饮。", "且饮三百杯！", "月在何处？", "月在青天，照我金樽。"])
    by_content = {r["content"]: r for r in rows}
    assert by_content["不饮。"]["parent_id"] == by_content["且饮三百杯！"]["parent_id"] == by_content["饮否？"]["id"]
    assert by_content["月在何处？"]["parent_id"] == by_content["饮否？"]["parent_id"]
    assert [r["content"] for r in rows if r["active_leaf"]] == ["月在青天，照我金樽。"]
    markdown = _download(page, lambda: page.get_by_role("button", name="下载 Markdown").click()).decode()
    assert markdown.count("## 分支 ") == 3 + len(roots) - 1 and "不饮。" in markdown and "且饮三百杯！" in markdown
    page.get_by_label("当前显示的分支").check()
    shown = _download(page, lambda: page.get_by_role("button", name="下载 Markdown").click()).decode()
    assert "月在青天" in shown and "不饮。" not in shown

    # The 长卷 of the shown branch.
    png = _download(page, lambda: page.get_by_role("link", name="下载长卷图（PNG，当前分支）").click())
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 1080 and image.height > 1000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "share-scroll.png").write_bytes(png)
    page.locator("#export-menu > summary").click()

    # 分享 → a link to the branch shown now.
    page.locator("#share-menu > summary").click()
    page.get_by_role("button", name="为当前分支生成只读链接").click()
    page.wait_for_selector("#share-links >> text=已生成，复制上面的链接即可分享。")
    url = page.locator(".share-url").first.input_value()
    assert url.startswith(base + "/chat/shared/")
    shot("share-menu")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the menu stays on the screen
    box = page.locator("#share-menu .menu-panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(ARTIFACTS / "share-menu-phone.png"))
    page.set_viewport_size({"width": 1440, "height": 900})

    # Something said after sharing stays out of the share.
    page.locator("#share-menu > summary").click()
    page.fill("#chat-input", "还有话说")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message-assistant[data-status=complete] >> text=此后的话。")

    stranger = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    visitor = stranger.new_page()
    response = visitor.goto(url)
    assert response.status == 200 and response.headers["x-robots-tag"] == "noindex, nofollow"
    body = visitor.locator(".shared-list").inner_text()
    assert "月在何处？" in body and "月在青天，照我金樽。" in body and greeting in body
    assert "不饮。" not in body and "且饮三百杯！" not in body and "还有话说" not in body and "此后的话" not in body
    assert not any(alternate in body for alternate in alternates)  # another version of the greeting: not shared
    html = visitor.content()
    assert "sharer" not in html and "/ws/" not in html
    assert visitor.locator('meta[name="robots"]').get_attribute("content") == "noindex, nofollow"
    assert visitor.get_by_role("link", name="登录").is_visible()  # not logged in
    visitor.screenshot(path=str(ARTIFACTS / "share-page.png"), full_page=True)
    visitor.set_viewport_size({"width": 390, "height": 844})
    visitor.screenshot(path=str(ARTIFACTS / "share-page-phone.png"), full_page=True)

    # Revoked: the link is a 404 for the visitor.
    page.locator("#share-menu > summary").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#share-links").get_by_role("button", name="撤销").click()
    page.wait_for_selector("#share-links >> text=已撤销，该链接从此打不开。")
    assert page.locator(".share-url").count() == 0
    assert visitor.goto(url).status == 404
    assert "月在青天" not in visitor.content()
    stranger.close()
