"""A saved connection is edited in place: the listed models are offered, a mistyped one is warned about,
and the key stays."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts.models import ApiCredential
from tests.e2e.journeys import sign_up
from tests.e2e.test_form_errors import KEY, add_key
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db(transaction=True)


def test_edit_a_connection_with_the_listed_models(live_server, page, shot, local_provider):
    call_command("seedpersonas", verbosity=0)
    listed = {"data": [{"id": "qwen-plus"}, {"id": "qwen-turbo"}, {"id": "qwen-vl-plus"}]}
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, listed), repeat=True)
    sign_up(page, live_server.url, "tester")
    page.goto(live_server.url + "/accounts/settings/")
    add_key(page, key=KEY)
    page.wait_for_selector("text=已保存「我的百炼」：有效")

    credential = ApiCredential.objects.get(owner__username="tester")
    item = page.locator(f"#credential-{credential.pk}")
    item.locator("summary", has_text="修改").click()
    prefix = f"#id_c{credential.pk}"
    assert page.locator(f"datalist#models-{credential.pk} option").count() == 3
    page.locator(f"{prefix}-vision_model").fill("qwen-vl-plus")
    page.locator(f"{prefix}-text_model").fill("qwen-plsu")  # a typing mistake
    page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="保存并验证").click()
    page.wait_for_selector(".messages li.warning >> text=文本模型「qwen-plsu」不在该接口列出的模型中")
    item = page.locator(f"#credential-{credential.pk}")
    assert "识图模型 qwen-vl-plus" in item.inner_text()
    shot("connection-edit-warning")
    credential.refresh_from_db()
    assert (credential.text_model, credential.vision_model, credential.api_key) == ("qwen-plsu", "qwen-vl-plus", KEY)
