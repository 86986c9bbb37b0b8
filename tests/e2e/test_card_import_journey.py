"""A curator imports a SillyTavern PNG card whose figure already exists, in a real Chromium: the
admin reads it, says what it could not map, asks update-or-copy, and the copy is a new figure."""

from __future__ import annotations

from tests.personas.cardfiles import encoded, png_with, v2_card

CURATOR_PASSWORD = "Curate-the-past-1"


def _log_in_as_curator(app, page) -> None:
    app.manage_output("makecurator", "curator", "--password", CURATOR_PASSWORD)
    page.goto(app.url + "/accounts/login/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", CURATOR_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(app.url + "/")


def test_a_curator_imports_a_png_card_as_a_copy_of_an_existing_figure(app, page, shot, tmp_path):
    card = v2_card(name="李白", description="（SillyTavern 角色卡）{{char}}，字太白，唐代诗人。<script>alert(1)</script>",
                   first_mes="{{user}}，来饮一杯！")
    path = tmp_path / "li-bai-sillytavern.png"
    path.write_bytes(png_with({"chara": encoded(card)}))
    _log_in_as_curator(app, page)

    page.goto(app.url + "/admin/personas/persona/")
    page.get_by_role("link", name="导入角色卡").click()
    page.set_input_files("#id_card", str(path))
    shot("card-import-upload")
    page.get_by_role("button", name="读取角色卡").click()

    page.wait_for_selector("text=已有同名人物")
    assert page.locator("text=更新已有的「李白」（li-bai）").is_visible()
    notes = page.locator(".card-import-notes").inner_text()
    assert "作者（creator）" in notes and "卡片上的图片没有设为画像" in notes and "朝代与生卒年" in notes
    assert "<script>alert(1)</script>" in page.locator(".curator-pre").first.inner_text()  # shown as text
    assert page.input_value("#id_slug") == "li-bai-2"
    shot("card-import-conflict")

    page.get_by_label("另建副本", exact=False).check()
    page.get_by_role("button", name="确认导入").click()
    page.wait_for_selector(".errorlist >> text=请填写朝代")  # a foreign card has no dynasty: asked, not guessed
    assert page.input_value("#id_slug") == "li-bai-2" and page.is_checked("#id_action_1")
    page.select_option("#id_dynasty", "tang")
    page.fill("#id_birth_year", "701")
    page.fill("#id_death_year", "762")
    page.get_by_role("button", name="确认导入").click()

    page.wait_for_url("**/admin/personas/persona/*/change/")
    assert page.locator(".messagelist .success").inner_text().startswith("已另建副本「李白」（网址标识 li-bai-2）")
    assert page.input_value("#id_slug") == "li-bai-2" and not page.is_checked("#id_published")
    shot("card-import-done")

    page.goto(app.url + "/admin/personas/persona/?q=李白")
    assert page.locator("#result_list").get_by_role("link", name="李白", exact=True).count() == 2  # the old and the copy
    shot("card-import-list")
    assert "Traceback" not in app.server_log()
