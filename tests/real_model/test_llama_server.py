"""Our client and the whole app against llama-cpp-python's server (not part of `make test`)."""

from __future__ import annotations

import asyncio

import pytest

from chat.providers.chat import ProviderConfig, stream_chat
from chat.providers.events import Finish, TextDelta
from tests.e2e.live_app import LiveApp

pytestmark = pytest.mark.real_model


def test_the_client_streams_text_from_a_real_server(llama_server):
    config = ProviderConfig(kind="openai_compatible", base_url=f"{llama_server}/v1", api_key="none",
                            model="gemma-3-270m", first_content_timeout=120, idle_timeout=60,
                            guard=None)  # a local server, trusted like a site-wide credential

    async def collect():
        events = []
        async for event in stream_chat(config, [{"role": "system", "content": "你是李白，用中文回答。"},
                                                {"role": "user", "content": "请用一句话介绍你自己。"}],
                                       max_tokens=48):
            events.append(event)
        return events

    events = asyncio.run(collect())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3 and "".join(deltas).strip()
    assert isinstance(events[-1], Finish)  # [DONE] arrived; llama.cpp sends no usage chunk


def test_one_conversation_streams_through_the_whole_app(llama_server, tmp_path, page):
    app = LiveApp(tmp_path, f"{llama_server}/v1", REPLY_MAX_TOKENS="64", PROMPT_TOKEN_BUDGET="6000").start()
    try:
        page.goto(app.url + "/accounts/signup/")
        page.fill("#id_username", "reader")
        page.fill("#id_password1", "Moon-over-river-7")
        page.fill("#id_password2", "Moon-over-river-7")
        page.get_by_role("button", name="注册").click()
        page.goto(app.url + "/figures/li-bai/")
        page.get_by_role("link", name="开始对话").click()  # the start page: stage and second figure
        page.get_by_role("button", name="开始对话").click()
        page.wait_for_selector("#chat-send:not([disabled])")
        page.fill("#chat-input", "太白兄，请作一句诗。")
        page.keyboard.press("Enter")
        page.wait_for_selector(".streaming-text")
        grew = []
        for _ in range(600):
            text = page.evaluate("() => document.querySelector('.streaming-text')?.textContent ?? null")
            if text is None:
                break
            if text and (not grew or grew[-1] != text):
                grew.append(text)
            page.wait_for_timeout(50)
        reply = page.locator("article.message-assistant").last
        reply.wait_for()
        assert reply.get_attribute("data-status") == "complete", reply.inner_text()
        assert reply.locator(".message-body").inner_text().strip()
        assert len(grew) >= 2, f"the reply did not arrive progressively: {grew}"
        page.reload()
        assert page.locator("article.message-assistant").last.get_attribute("data-status") == "complete"
        assert "Traceback" not in app.server_log()
    finally:
        app.stop()
