from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.live_app import LiveApp

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

# Playwright's sync API keeps an event loop in this thread; the ORM calls our assertions make are
# still plain synchronous calls, so let Django allow them here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# Module scope: sync Playwright keeps an event loop running in this thread until it stops, which
# would break the async tests collected after this package.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-background-networking"]
        )
        yield browser
        browser.close()


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
