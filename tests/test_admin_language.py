"""The curators' admin speaks Chinese: no stray English on any page a curator opens."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import translation

from accounts.apps import name_permissions_in_chinese
from personas.models import StylePreset

pytestmark = pytest.mark.django_db

# Words that are names, not prose: products, formats, keyboard keys, template markers in card text.
ALLOWED = re.compile(r"(DashScope|OpenRouter|OpenAI|SillyTavern|Character Card|JSON|Markdown|PNG|SVG|URL|API|ID"
                     r"|LDAP|Control|Command|START|user|char|admin|qwen|wan|Django|token|Anthropic Messages|Gemini generateContent"
                     # OpenAI's speech voices: identifiers the provider takes, not prose
                     r"|alloy|ash|coral|echo|fable|nova|onyx|sage|shimmer|verse"
                     # media services and the model names their help texts give as examples
                     r"|Midjourney|Suno|nano|banana|chirp|doubao|seedance|kling|niji|platform|mj\b)", re.I)


def english_on(page: str, slugs: set[str]) -> set[str]:
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<textarea.*?</textarea>", "", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    words = re.findall(r"[A-Za-z][A-Za-z’' ]{2,}[A-Za-z]", text)
    return {w for w in words if not ALLOWED.match(w.strip()) and w.strip() not in slugs}


def admin_pages() -> list[str]:
    pages = ["/admin/"]
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages += [base, base + "add/"]
        first = model.objects.first()
        if first is not None:
            pages.append(f"{base}{first.pk}/change/")
    return pages


def test_every_admin_page_is_in_chinese(admin_client):
    call_command("seedpersonas", verbosity=0)
    # Identifiers a curator types (style preset slugs such as "tang-classical"), not prose.
    slugs = {part for slug in StylePreset.objects.values_list("slug", flat=True) for part in re.split(r"[-_]", slug)}
    found = {}
    for path in admin_pages():
        response = admin_client.get(path)
        if response.status_code == 403 and path.endswith("/add/"):
            continue  # a one-row model (the site's quota settings) cannot be added
        assert response.status_code == 200, path
        words = english_on(response.content.decode(), slugs)
        if words:
            found[path] = sorted(words)
    assert not found, found


def test_permission_names_are_chinese():
    # Migrations ran with the post_migrate hook; a permission created in English later is renamed too.
    assert not Permission.objects.filter(name__startswith="Can ").exists()
    permission = Permission.objects.get(codename="add_persona")
    Permission.objects.filter(pk=permission.pk).update(name="Can add persona")
    name_permissions_in_chinese()
    permission.refresh_from_db()
    with translation.override("zh-hans"):
        assert permission.name == "可添加历史人物"
