"""Every HTML page carries the Content-Security-Policy, and no template needs what it forbids."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from chat import services
from chat.sharing.services import share_create
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def curator_client():
    call_command("makecurator", "curator", "--password", "Curate-the-past-1", stdout=io.StringIO())
    client = Client()
    assert client.login(username="curator", password="Curate-the-past-1")
    return client


@pytest.fixture
def pages(alice):
    persona = make_persona("li-bai", "李白")
    conversation = services.conversation_start(owner=alice, persona=persona)
    shared = share_create(conversation=conversation)
    return {
        "anonymous": ["/", reverse("personas:profile", args=["li-bai"]), reverse("accounts:login"),
                      reverse("accounts:signup"), "/no-such-page/", reverse("chat:shared", args=[shared.token])],
        "alice": [reverse("accounts:settings"), reverse("chat:page", args=[conversation.pk]),
                  reverse("chat:memories"), reverse("chat:media_gallery", args=[conversation.pk]),
                  reverse("chat:media_panel", args=[conversation.pk])],
        "curator": [reverse("admin:index"), reverse("admin:personas_persona_change", args=[persona.pk]),
                    reverse("admin:personas_persona_preview", args=[persona.pk]),
                    reverse("admin:personas_persona_probes", args=[persona.pk]),
                    reverse("admin:accounts_quotasettings_changelist")],
    }


def test_every_html_response_carries_the_policy(client, alice_client, curator_client, pages):
    clients = {"anonymous": client, "alice": alice_client, "curator": curator_client}
    seen = 0
    for who, urls in pages.items():
        for url in urls:
            response = clients[who].get(url)
            assert response["Content-Type"].startswith("text/html"), url
            policy = _policy(response)
            for name, values in EXPECTED.items():
                assert policy.get(name) == values, (url, name, response["Content-Security-Policy"])
            assert "'unsafe-inline'" not in response["Content-Security-Policy"]
            assert "'unsafe-eval'" not in response["Content-Security-Policy"]
            seen += 1
    assert seen == sum(len(urls) for urls in pages.values())


def test_htmx_is_told_not_to_eval_or_inject_styles(client):
    html = client.get(reverse("accounts:login")).content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html).group(1)
    config = json.loads(config)
    assert {key: config[key] for key in ("allowEval", "includeIndicatorStyles", "attributesToSettle")} == {
        "allowEval": False, "includeIndicatorStyles": False, "attributesToSettle": ["class", "width", "height"]}
    # The indicator rules htmx would have injected are in our stylesheet instead.
    css = (ROOT / "static" / "css" / "site.css").read_text()
    assert ".htmx-indicator{opacity:0" in css


# What the policy refuses: inline <script> bodies, <style> blocks, style="" and on*="" attributes,
# javascript: URLs, and hx-on (htmx runs it through eval).
FORBIDDEN = [
    (r"<script\b(?![^>]*\bsrc=)[^>]*>", "inline script"),
    (r"<style\b", "style element"),
    (r"\sstyle\s*=", "style attribute"),
    (r"\son[a-z]+\s*=", "event handler attribute"),
    (r"javascript:", "javascript: URL"),
    (r"\shx-on", "hx-on"),
    (r"js:", "htmx js: expression"),
]


@pytest.mark.parametrize("template", sorted((ROOT / "templates").rglob("*.html")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_needs_unsafe_inline_or_eval(template):
    html = re.sub(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", "", template.read_text(), flags=re.DOTALL)
    found = [label for pattern, label in FORBIDDEN if re.search(pattern, html, flags=re.IGNORECASE)]
    assert found == []


def test_htmx_swaps_a_forms_error_answer_and_nothing_else_that_failed(client):
    import re as _re

    html = client.get(reverse("accounts:login")).content.decode()
    handling = json.loads(_re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html).group(1))["responseHandling"]

    def rule(status: int) -> dict:
        return next(r for r in handling if _re.search(r["code"], str(status)))

    for status in (400, 409, 422, 429):  # the form comes back with its errors: swap it in
        assert rule(status) == {"code": rule(status)["code"], "swap": True, "error": False}, status
    for status in (403, 404, 500, 502):  # no form: forms.js says what went wrong beside the element
        assert rule(status)["swap"] is False and rule(status)["error"] is True, status
    assert rule(200)["swap"] is True and rule(204)["swap"] is False
