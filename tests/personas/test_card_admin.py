"""The card import and export in the admin: the two steps, the conflict question, and bad files."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from personas.cards import persona_to_card
from personas.models import Persona
from tests.personas.cardfiles import encoded, png_with, v2_card
from tests.personas.factories import make_persona
from tests.personas.test_admin import curator_client  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
IMPORT = reverse("admin:personas_persona_import")


def _upload(client, data: bytes, name: str = "card.png"):
    return client.post(IMPORT, {"card": SimpleUploadedFile(name, data)})


def _confirm_fields(response) -> dict:
    form = response.context["form"]
    return {"card_json": form["card_json"].value(), "source": form["source"].value()}


def test_the_list_links_the_import_and_the_figure_links_its_exports(curator_client):
    persona = make_persona("li-bai", "李白")
    assert IMPORT in curator_client.get(reverse("admin:personas_persona_changelist")).content.decode()
    change = curator_client.get(reverse("admin:personas_persona_change", args=[persona.pk])).content.decode()
    assert reverse("admin:personas_persona_card_png", args=[persona.pk]) in change
    assert reverse("admin:personas_persona_card_json", args=[persona.pk]) in change


def test_a_name_conflict_asks_and_a_copy_is_a_new_figure(curator_client):
    li_bai = make_persona("li-bai", "李白")
    card = persona_to_card(li_bai)
    card["data"]["extensions"]["guyue/persona"]["slug"] = "li-bai-tang"
    card["data"]["description"] = "另一版本的简介。" * 40
    response = _upload(curator_client, png_with({"ccv3": encoded(card)}))
    body = response.content.decode()
    assert response.status_code == 200 and "已有同名人物" in body and "更新已有的「李白」（li-bai）" in body
    assert Persona.objects.count() == 1  # nothing stored yet

    asked = {**_confirm_fields(response), "slug": "li-bai-2"}
    missing = curator_client.post(IMPORT, asked)
    assert "请选择：更新已有的人物，或另建副本。" in missing.content.decode() and Persona.objects.count() == 1

    taken = curator_client.post(IMPORT, {**asked, "action": "copy", "slug": "li-bai"})
    assert "网址标识「li-bai」已被占用" in taken.content.decode() and Persona.objects.count() == 1

    done = curator_client.post(IMPORT, {**asked, "action": "copy"})
    copy = Persona.objects.get(slug="li-bai-2")
    assert done.status_code == 302 and done.url == reverse("admin:personas_persona_change", args=[copy.pk])
    assert copy.name == "李白" and not copy.published and copy.description.startswith("另一版本")
    li_bai.refresh_from_db()
    assert li_bai.published and li_bai.description == "描述" * 160


def test_update_keeps_the_figures_address(curator_client):
    li_bai = make_persona("li-bai", "李白")
    card = persona_to_card(li_bai)
    card["data"]["extensions"]["guyue/persona"]["slug"] = "li-bai-tang"
    card["data"]["first_mes"] = "新的开场白。"
    response = _upload(curator_client, json.dumps(card, ensure_ascii=False).encode(), "card.json")
    done = curator_client.post(IMPORT, {**_confirm_fields(response), "action": "update", "slug": "ignored"})
    assert done.status_code == 302 and Persona.objects.count() == 1
    li_bai.refresh_from_db()
    assert li_bai.slug == "li-bai" and li_bai.first_mes == "新的开场白。"


def test_a_foreign_card_asks_for_what_it_lacks(curator_client):
    response = _upload(curator_client, png_with({"chara": encoded(v2_card())}))
    body = response.content.decode()
    assert "Character Card V2" in body and "PNG（chara 数据块）" in body
    assert "作者（creator）" in body and "卡片上的图片没有设为画像" in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body and "<script>alert('x')" not in body
    fields = {**_confirm_fields(response), "slug": "seraphina"}
    again = curator_client.post(IMPORT, {**fields, "dynasty": "", "birth_year": "", "death_year": ""})
    text = again.content.decode()
    assert "请填写朝代" in text and "请填写生年" in text and not Persona.objects.exists()
    assert again.context["form"]["slug"].value() == "seraphina"  # what the curator typed stays
    done = curator_client.post(IMPORT, {**fields, "dynasty": "tang", "birth_year": "700", "death_year": "760"},
                               follow=True)
    persona = Persona.objects.get(slug="seraphina")
    assert persona.dynasty == "tang" and not persona.published
    page = done.content.decode()
    assert "已导入「Seraphina」" in page and "暂不发布" in page


@pytest.mark.parametrize(("data", "name", "message"), [
    (png_with({"chara": b"%%%"}), "card.png", "不是有效的 base64"),
    (png_with({}), "card.png", "没有角色卡数据"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 99, "card.jpg", "只支持 PNG"),
    (json.dumps({"spec": "chara_card_v9", "data": {}}).encode(), "card.json", "不支持的角色卡格式"),
])
def test_bad_files_are_refused_in_chinese_and_nothing_is_stored(curator_client, data, name, message):
    response = _upload(curator_client, data, name)
    body = response.content.decode()
    assert response.status_code == 200 and "导入失败：" in body and message in body
    assert not Persona.objects.exists()


def test_a_file_over_the_limit_is_refused_before_it_is_read(curator_client, monkeypatch):
    monkeypatch.setattr("personas.admin.MAX_CARD_FILE_BYTES", 1000)
    response = _upload(curator_client, png_with({"chara": encoded(v2_card())}))
    assert "文件过大" in response.content.decode() and not Persona.objects.exists()


def test_exports_as_json_png_and_zip(curator_client):
    li_bai, du_fu = make_persona("li-bai", "李白"), make_persona("du-fu", "杜甫")
    png = curator_client.get(reverse("admin:personas_persona_card_png", args=[li_bai.pk]))
    assert png["Content-Type"] == "image/png" and 'filename="li-bai.png"' in png["Content-Disposition"]
    with Image.open(io.BytesIO(png.content)) as image:
        image.load()
        assert set(image.text) == {"chara", "ccv3"}
        assert json.loads(base64.b64decode(image.text["ccv3"])) == persona_to_card(li_bai)
    card = curator_client.get(reverse("admin:personas_persona_card_json", args=[li_bai.pk])).json()
    assert card == persona_to_card(li_bai)
    changelist = reverse("admin:personas_persona_changelist")
    zipped = curator_client.post(changelist, {"action": "export_card_pngs", "_selected_action": [li_bai.pk, du_fu.pk]})
    assert zipped["Content-Type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()) == ["du-fu.png", "li-bai.png"]


def test_a_plain_user_reaches_neither_import_nor_export(alice_client):
    persona = make_persona("li-bai", "李白")
    assert alice_client.get(IMPORT).status_code == 302
    assert alice_client.get(reverse("admin:personas_persona_card_png", args=[persona.pk])).status_code == 302


def test_a_card_near_the_size_limit_survives_the_second_step(curator_client):
    card = v2_card(description="史" * 160_000)  # about 1 MB of UTF-8 (twice: V1 backfill)
    data = json.dumps(card, ensure_ascii=False).encode()
    assert 0.9 * 1024 * 1024 < len(data) < 1024 * 1024
    response = _upload(curator_client, data, "big.json")
    assert 'enctype="multipart/form-data"' in response.content.decode()  # sent as raw UTF-8, not %-encoded
    done = curator_client.post(IMPORT, {**_confirm_fields(response), "slug": "big", "dynasty": "tang",
                                        "birth_year": "700", "death_year": "760"})
    assert done.status_code == 302 and len(Persona.objects.get(slug="big").description) == 160_000


def test_the_import_pages_are_in_chinese(curator_client):
    from tests.test_admin_language import english_on

    li_bai = make_persona("li-bai", "李白")
    names = {"curator", "li", "bai"}  # the signed-in user, a slug's syllables
    upload = curator_client.get(IMPORT).content.decode()
    assert english_on(upload, names) == set()
    card = persona_to_card(li_bai)
    card["data"]["extensions"]["guyue/persona"]["slug"] = "li-bai-tang"
    confirm = _upload(curator_client, json.dumps(card, ensure_ascii=False).encode(), "card.json").content.decode()
    assert "已有同名人物" in confirm and english_on(confirm, names) == set()
