from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.live_app import LiveApp

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

# Playwright's sync API keeps an event loop in this thread; the ORM calls our assertions make are
# still plain synchronous calls, so let Django allow them here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Every page reports what the Content-Security-Policy blocked: Chromium's console lines, and the
# securitypolicyviolation events, which the page also keeps in window.__cspViolations.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = {directive: event.effectiveDirective, blocked: event.blockedURI, source: event.sourceFile,
                line: event.lineNumber, sample: event.sample, page: document.location.href};
  window.__cspViolations.push(seen);
  console.error("Content Security Policy violation: " + JSON.stringify(seen));
});
"""
CSP_VIOLATIONS: list[str] = []


def record_csp_violations(context) -> None:
    """Collect every CSP violation any page of this browser context reports into CSP_VIOLATIONS."""
    context.add_init_script(CSP_LISTENER)
    context.on("console", lambda message: CSP_VIOLATIONS.append(message.text)
               if "Content Security Policy" in message.text else None)


class RecordingBrowser:
    """The browser, with CSP recording on every context a test opens."""

    def __init__(self, browser):
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        record_csp_violations(context)
        return context

    def new_page(self, **kwargs):
        return self.new_context(**kwargs).new_page()

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def no_csp_violations():
    """Fail any browser test in which a page broke the policy (including module fixtures' pages)."""
    yield
    seen, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    if seen:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(seen), pytrace=False)


BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-background-networking"]


@contextmanager
def chromium(*flags: str):
    """A RecordingBrowser on Debian's Chromium, with extra flags (a fake microphone, for instance)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_FLAGS, *flags])
        yield RecordingBrowser(browser)
        browser.close()


def fake_microphone(wav) -> tuple[str, ...]:
    """Chromium flags for a microphone that plays `wav` (in a loop), permission granted."""
    return ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}")


# Module scope: sync Playwright keeps an event loop running in this thread until it stops, which
# would break the async tests collected after this package.
@pytest.fixture(scope="module")
def browser():
    with chromium() as recording:
        yield recording


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shot(page):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def app(tmp_path, upstream):
    """The whole site under daphne, its model a scripted upstream; modules that need more override it."""
    live = LiveApp(tmp_path, upstream.url + "/api/v1").start()
    yield live
    live.stop()
