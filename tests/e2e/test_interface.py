"""The interface as a visitor sees it, in a real Chromium against daphne: screenshots of every main
page at desktop and phone sizes (saved in test-artifacts/ for a person to look at), the web fonts
actually rendering the Chinese text, the brush reveal and its seal, the phone drawer, the live
region, reduced motion, and a long conversation that opens with only its latest messages."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.e2e.live_app import LiveApp
from tests.fakes.upstream import Upstream, sse_reply

COMPLETIONS = "/api/v1/chat/completions"
REPLY = "月下独酌，何须问人？举杯邀明月，对影成三人。醉后各分散，相期邈云汉！"
PASSWORD = "Moon-over-river-7"
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def _stream(text: str, gap: float):
    parts = []
    for i in range(0, len(text), 3):  # three characters a frame, so bursts do happen
        parts += [{"id": "c", "choices": [{"index": 0, "delta": {"content": text[i:i + 3]}}]}, gap]
    parts += [{"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, "data: [DONE]\n\n"]
    return sse_reply(parts)


@pytest.fixture(scope="module")
def upstream_server():
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module")
def app(tmp_path_factory, upstream_server):
    live = LiveApp(tmp_path_factory.mktemp("interface"), upstream_server.url + "/api/v1").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def login_state(app, browser, tmp_path_factory):
    """Sign up once; every test reuses the session cookie."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(app.url + "/accounts/signup/")
    page.fill("#id_username", "painter")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_role("button", name="注册").click()
    page.wait_for_url(app.url + "/")
    path = tmp_path_factory.mktemp("state") / "state.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


def _context(browser, login_state, size, **extra):
    return browser.new_context(viewport=SIZES[size], locale="zh-CN", storage_state=login_state, **extra)


def _snap(page, name):
    from tests.e2e.conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=False)


# The web faces that must have drawn the text: every character of the given elements is covered by
# a loaded FontFace of the family (so nothing fell back to a system font or a tofu square).
# The probe asks document.fonts.load() for the faces each element's text needs and awaits them: on a
# busy machine layout may not have started those loads yet, and document.fonts.ready only waits for
# loads already under way. Only elements whose own font is the family ask; any other's text stays
# missing, so a page that stopped using the family still fails.
FONT_PROBE = """async ([selector, family]) => {
  const first = (el) => getComputedStyle(el).fontFamily.split(",")[0].replace(/"/g, "").trim();
  await Promise.all([...document.querySelectorAll(selector)].filter((el) => first(el) === family).map((el) => {
    const style = getComputedStyle(el);
    return document.fonts.load(`${style.fontStyle} ${style.fontWeight} ${style.fontSize} "${family}"`, el.innerText || " ");
  }));
  await document.fonts.ready;
  const loaded = [...document.fonts].filter((f) => f.family.replace(/"/g, "") === family && f.status === "loaded");
  const ranges = loaded.map((f) => f.unicodeRange.split(",").map((r) => {
    const [a, b] = r.trim().replace(/^U\\+/i, "").split("-");
    return [parseInt(a, 16), parseInt(b || a, 16)];
  }));
  const text = [...document.querySelectorAll(selector)].map((el) => el.innerText).join("");
  const missing = [...new Set([...text].filter((ch) => /[\\u4e00-\\u9fff]/.test(ch)))].filter((ch) => {
    const c = ch.codePointAt(0);
    return !ranges.some((rs) => rs.some(([a, b]) => a <= c && c <= b));
  });
  return { loaded: loaded.length, missing, chars: text.length };
}"""


def _fonts(page, selector, family):
    return page.evaluate(FONT_PROBE, [selector, family])


@pytest.mark.parametrize("size", SIZES)
def test_gallery_and_profile(app, browser, login_state, size):
    context = _context(browser, login_state, size)
    page = context.new_page()
    page.goto(app.url + "/")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    _snap(page, f"gallery-{size}")
    body = _fonts(page, ".intro p:not(.poem)", "Noto Serif SC")
    assert body["loaded"] > 0 and body["chars"] > 20 and body["missing"] == [], body
    titles = _fonts(page, ".intro h1, .figure-card h2", "Ma Shan Zheng")
    assert titles["loaded"] > 0 and titles["missing"] == [], titles
    # Only the slices this page shows were fetched, not the whole face.
    fetched, faces = page.evaluate("""[performance.getEntriesByType('resource').filter(e => e.name.endsWith('.woff2')).length,
                                      document.fonts.size]""")
    assert 0 < fetched < faces * 0.6, (fetched, faces)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 239, 227)"

    page.goto(app.url + "/figures/li-bai/")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    _snap(page, f"profile-{size}")
    assert _fonts(page, ".profile section", "Noto Serif SC")["missing"] == []
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily").startswith('"Ma Shan Zheng"')
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_settings_and_key_pages(app, browser, login_state, size):
    context = _context(browser, login_state, size)
    page = context.new_page()
    page.goto(app.url + "/accounts/settings/")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    _snap(page, f"settings-{size}")
    titles = _fonts(page, "main h1, #credentials h2", "Ma Shan Zheng")
    assert titles["loaded"] > 0 and titles["missing"] == [], titles
    page.goto(app.url + "/no-such-page/")
    _snap(page, f"404-{size}")
    assert "此页不存" in page.inner_text("h1")
    context.close()


def _animations_done(page, selector):
    """Wait for the element's CSS animations and transitions to end (their own promises, not a timer)."""
    page.evaluate("(s) => Promise.all(document.querySelector(s).getAnimations().map((a) => a.finished))", selector)


def _open_chat(app, page):
    page.goto(app.url + "/chat/start/li-bai/")
    resume = page.get_by_role("link", name="继续上次的对话")  # the first visit starts; later ones resume
    (resume if resume.count() else page.get_by_role("button", name="开始对话")).click()
    page.wait_for_url("**/chat/*/")
    page.wait_for_selector("#chat-send:not([disabled])")


QUESTIONS = iter(["太白兄，月下独酌否？", "长安的月色如何？", "黄鹤楼上可曾题诗？", "蜀道究竟有多难？",
                  "桃花潭水深几许？", "何时再游敬亭山？"])


@pytest.mark.parametrize("size", SIZES)
def test_login_and_signup_pages(app, browser, size):
    context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
    page = context.new_page()
    for path, name in [("/accounts/login/", "login"), ("/accounts/signup/", "signup")]:
        page.goto(app.url + path)
        page.wait_for_function("() => document.fonts.status === 'loaded'")
        _snap(page, f"{name}-{size}")
        titles = _fonts(page, "main h1", "Ma Shan Zheng")
        assert titles["loaded"] > 0 and titles["missing"] == [], titles
    context.close()


def _chat(app, page, upstream, gap, text=REPLY):
    upstream.route("POST", COMPLETIONS, _stream(text, gap))
    _open_chat(app, page)
    # A different question each time: the guard steers a conversation that goes round in circles.
    page.fill("#chat-input", next(QUESTIONS))
    page.keyboard.press("Enter")


@pytest.mark.parametrize("size", SIZES)
def test_chat_streams_like_ink_and_seals_the_reply(app, browser, login_state, upstream_server, size):
    context = _context(browser, login_state, size)
    page = context.new_page()
    _chat(app, page, upstream_server, 0.12)
    page.wait_for_function("() => document.querySelectorAll('.streaming-text .ink').length > 9")
    page.wait_for_timeout(250)
    _snap(page, f"chat-mid-stream-{size}")
    # Each character is a span that fades in on its own delay: a burst is spread out, not dumped.
    delays = page.evaluate("[...document.querySelectorAll('.streaming-text .ink')].map(s => parseFloat(s.style.animationDelay) || 0)")
    assert len(set(delays)) > 3
    assert page.evaluate("getComputedStyle(document.querySelector('.streaming-text .ink')).animationName") == "ink"
    # The streamed text is not read out character by character; the list itself is not live.
    assert page.get_attribute("#message-list", "aria-live") == "off"

    done = page.locator("article.message-assistant[data-status=complete]").last
    page.wait_for_selector("article.message-assistant.is-fresh .finish-seal")
    assert REPLY in done.inner_text()
    _animations_done(page, "article.message-assistant.is-fresh .finish-seal")  # the seal lands
    _snap(page, f"chat-finished-{size}")
    sentences = page.eval_on_selector_all("#chat-announcer p", "ps => ps.map(p => p.textContent)")
    assert sentences and all(len(s) > 1 for s in sentences), sentences  # sentences, never single characters
    assert sentences[-1].endswith("！")
    assert _fonts(page, "article.message .message-body", "Noto Serif SC")["missing"] == []
    if size == "desktop":
        assert page.is_visible("#chat-drawer") and page.is_visible(".figure-switch")
    context.close()


def test_phone_drawer_opens_and_closes_from_the_keyboard(app, browser, login_state):
    context = _context(browser, login_state, "phone")
    page = context.new_page()
    _open_chat(app, page)
    assert not page.is_visible(".figure-switch")  # the left column is folded away on a phone
    page.focus(".chat-side > summary")
    page.keyboard.press("Enter")
    page.wait_for_selector(".figure-switch", state="visible")
    _animations_done(page, "#chat-drawer")  # the slide-in has ended, so its box is where it stays
    _snap(page, "chat-drawer-phone")
    assert page.evaluate("document.activeElement.matches('[data-drawer-close]')")
    box = page.locator("#chat-drawer").bounding_box()
    assert box["x"] == 0 and box["width"] <= 390
    page.keyboard.press("Escape")
    page.wait_for_selector(".figure-switch", state="hidden")
    assert page.evaluate("document.activeElement.matches('.chat-side > summary')")
    context.close()


def test_reduced_motion_turns_the_brush_off(app, browser, login_state, upstream_server):
    context = _context(browser, login_state, "desktop", reduced_motion="reduce")
    page = context.new_page()
    _chat(app, page, upstream_server, 0.15, REPLY * 3)
    # Read the spans in the same task that finds them: without motion the bubble is swapped at once.
    seen = page.wait_for_function("""() => {
      const spans = [...document.querySelectorAll('.streaming-text .ink')];
      if (spans.length <= 3) return false;
      return { animation: getComputedStyle(spans[0]).animationName, delayed: spans.some((s) => s.style.animationDelay) };
    }""").json_value()
    assert seen == {"animation": "none", "delayed": False}
    page.wait_for_selector("article.message-assistant.is-fresh .finish-seal")
    assert page.evaluate("getComputedStyle(document.querySelector('.is-fresh .finish-seal')).animationName") == "none"
    context.close()


def test_a_2000_message_conversation_opens_with_its_latest_messages(app, browser, login_state):
    script = """
from django.db import transaction
from accounts.models import User
from chat import services
from chat.models import Message
from personas.models import Persona
user = User.objects.get(username="painter")
conversation = services.conversation_start(owner=user, persona=Persona.objects.get(slug="du-fu"))
parent = conversation.active_leaf
with transaction.atomic():
    for i in range(2000):
        parent = Message.objects.create(conversation=conversation, parent=parent, role="user" if i % 2 == 0 else "assistant",
                                        content=f"第{i}句：国破山河在，城春草木深。" + ("感时花溅泪，恨别鸟惊心。" * (i % 5)))
    conversation.active_leaf = parent
    conversation.save()
print(conversation.pk)
"""
    pk = app.manage_output("shell", "-c", script).strip().splitlines()[-1]
    context = _context(browser, login_state, "desktop")
    page = context.new_page()
    page.goto(f"{app.url}/chat/{pk}/")
    page.wait_for_selector("#chat-send:not([disabled])")
    # Only the latest 40 of 2,000 are in the page (what keeps it quick to open: a count, not a stopwatch).
    assert page.locator("article.message").count() == 40
    page.get_by_role("button", name="加载更早的对话（还有 1961 条）").click()
    page.wait_for_function("() => document.querySelectorAll('article.message').length === 80")
    assert page.locator(".load-earlier button").inner_text() == "加载更早的对话（还有 1921 条）"
    _snap(page, "chat-long-desktop")
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_memories_page_screenshots(app, browser, login_state, size):
    context = _context(browser, login_state, size)
    page = context.new_page()
    response = page.goto(app.url + reverse("chat:memories"))
    assert response.status == 200
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    _snap(page, f"memories-{size}")
    # Like settings: the title in the brush face; labels and forms use the reader's own Song face.
    titles = _fonts(page, "main h1", "Ma Shan Zheng")
    assert titles["loaded"] > 0 and titles["missing"] == [], titles
    context.close()


def test_no_page_loads_anything_from_another_origin(app, browser, login_state):
    context = _context(browser, login_state, "desktop")
    page = context.new_page()
    foreign = []
    page.on("request", lambda r: None if r.url.startswith(app.url) or r.url.startswith("ws://127.0.0.1")
            else foreign.append(r.url))
    for path in ["/", "/figures/su-shi/", "/accounts/settings/", "/chat/start/li-bai/"]:
        page.goto(app.url + path)
        page.wait_for_load_state("networkidle")
    assert foreign == [], json.dumps(foreign)
    context.close()
