"""Every kind of page under the real Content-Security-Policy in Chromium: visitor pages, the chat
page with its socket and htmx partials, and the admin with the curator tools, without a single
violation."""

from __future__ import annotations

import re

from tests.e2e.conftest import CSP_VIOLATIONS
from tests.e2e.journeys import sign_up, start_chat

CURATOR_PASSWORD = "Curate-the-past-1"


def _visit(page, url: str, seen: dict[str, list]) -> None:
    response = page.goto(url)
    assert response.status == 200, url
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # violations are reported as tasks after the load
    found = page.evaluate("() => window.__cspViolations")
    if found:
        seen[url] = found


def test_no_page_breaks_the_content_security_policy(app, page):
    base, seen = app.url, {}
    header = page.goto(base + "/").headers["content-security-policy"]
    assert "script-src 'self'" in header and "frame-ancestors 'none'" in header

    for path in ["/", "/figures/li-bai/", "/accounts/login/", "/accounts/signup/"]:
        _visit(page, base + path, seen)

    sign_up(page, base, "reader")
    start_chat(page, base)
    page.wait_for_selector("#chat-send:not([disabled])")  # the websocket is open: connect-src allows it
    page.wait_for_selector("#image-panel")  # an htmx partial loaded on the page
    chat_url = page.url
    conversation = re.search(r"/chat/(\d+)/", chat_url).group(1)
    for path in [chat_url, f"{base}/accounts/settings/", f"{base}/chat/memories/",
                 f"{base}/chat/{conversation}/media/"]:
        _visit(page, path, seen)
    page.get_by_role("button", name=re.compile("退出")).click()
    page.wait_for_url(base + "/")

    app.manage_output("makecurator", "curator", "--password", CURATOR_PASSWORD)
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", CURATOR_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(base + "/")
    _visit(page, base + "/admin/", seen)
    _visit(page, base + "/admin/personas/persona/", seen)
    page.get_by_role("link", name="李白").first.click()
    page.wait_for_url("**/admin/personas/persona/*/change/")
    change_url = page.url
    _visit(page, change_url, seen)
    page.wait_for_selector(".inline-group")  # inline formsets rendered by the admin's scripts
    for tool in ["预览系统提示词", "运行探测"]:
        page.goto(change_url)
        page.get_by_role("link", name=tool).click()
        page.wait_for_load_state("load")
        _visit(page, page.url, seen)

    assert seen == {}
    assert CSP_VIOLATIONS == []
