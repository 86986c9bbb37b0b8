"""A new visitor signs up, adds a key, and sees it masked: in a real Chromium against a live server."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import ApiCredential
from personas.models import Persona
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-e2e0123456789abcdefa1b2"


def test_a_visitor_signs_up_adds_a_key_and_sees_it_masked(live_server, page, shot, local_provider):
    call_command("seedpersonas", verbosity=0)
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, {"data": [{"id": "qwen-plus"}]}))

    page.goto(live_server.url + "/")
    assert page.locator(".figure-card").count() == Persona.objects.published().count() >= 36
    page.get_by_role("link", name="唐", exact=True).click()
    page.wait_for_url("**/?dynasty=tang")
    tang = set(Persona.objects.published().filter(dynasty="tang").values_list("name", flat=True))
    assert {"李白", "杜甫", "武则天", "唐太宗"} <= tang
    assert page.locator(".figure-card").count() == len(tang)  # swapped in by htmx
    assert page.get_by_role("link", name="唐", exact=True).get_attribute("aria-current") == "true"
    assert page.get_by_role("link", name="全部").get_attribute("aria-current") is None
    shot("gallery-tang")

    page.get_by_role("link", name="注册").click()
    page.fill("#id_username", "wanderer")
    page.fill("#id_password1", "Moon-over-river-7")
    page.fill("#id_password2", "Moon-over-river-7")
    page.get_by_role("button", name="注册").click()
    page.wait_for_url(live_server.url + "/")

    page.get_by_role("link", name="设置").click()
    assert "尚未配置可用的密钥" in page.inner_text("#credentials")
    page.fill("#id_label", "我的百炼")
    page.fill("#id_key", f"  {KEY}\n")
    page.get_by_role("button", name="保存并验证").click()
    page.wait_for_selector("text=已保存「我的百炼」：有效")
    text = page.inner_text("#credentials")
    assert "sk-…a1b2" in text
    assert "正在使用您自己的密钥" in text
    assert KEY not in page.content()
    shot("settings-key-added")
    assert ApiCredential.objects.get(owner__username="wanderer").api_key == KEY

    # Deleting asks first (hx-confirm); accepting the dialog removes the key.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="删除").click()
    page.wait_for_selector("text=已删除「我的百炼」")
    assert not ApiCredential.objects.filter(owner__username="wanderer").exists()
