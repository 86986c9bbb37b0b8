"""Text contrast of at least 4.5:1 on every page a user sees, checked by axe-core in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import ApiCredential, User
from chat import services
from chat.models import Memory
from chat.sharing.services import share_create
from personas.models import Persona
from tests.e2e.journeys import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def contrast_failures(page) -> list[str]:
    # evaluate() runs outside the page's Content-Security-Policy, so axe needs no script tag.
    page.evaluate(AXE.read_text())
    result = page.evaluate("""async () => {
      const r = await axe.run(document, {runOnly: ["color-contrast"]});
      return r.violations.flatMap(v => v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary));
    }""")
    return result


@pytest.fixture
def member(local_provider):
    call_command("seedpersonas", verbosity=0)
    user = User.objects.create_user(username="reader", password=PASSWORD)
    credential = ApiCredential(owner=user, label="我的百炼", kind="dashscope", status="invalid",
                               last_error="密钥无效（401）")
    credential.set_key("sk-contrast0123456789")
    credential.save()
    persona = Persona.objects.get(slug="li-bai")
    conversation = services.conversation_start(owner=user, persona=persona)
    asked = services.message_add_user(conversation=conversation, text="太白兄，近来可好？")
    services.reply_save(conversation=conversation, parent=asked, content="好！江上清风，山间明月。", status="complete")
    Memory.objects.create(owner=user, persona=persona, content="我住在杭州。", pinned=True)
    services.reply_save(conversation=conversation, parent=asked, content="床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。",
                        status="complete")
    return user, conversation


def test_every_page_keeps_text_readable(live_server, page, member):
    user, conversation = member
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live_server.url + "/")
    conversation.refresh_from_db()
    link = share_create(conversation=conversation)
    pages = ["/", "/figures/li-bai/", f"/chat/{conversation.pk}/", "/accounts/settings/",
             "/chat/memories/", "/chat/start/du-fu/", f"/chat/shared/{link.token}/"]
    failures = {}
    for path in pages:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        found = contrast_failures(page)
        if path.startswith("/chat/") and path[6:].rstrip("/").isdigit():
            # The chat page again in reading mode (竖排), its poem set vertically.
            page.click("button[data-action=vertical]")
            found += contrast_failures(page)
        if found:
            failures[path] = found
    assert not failures, failures
