"""The committed front-end build: what the stylesheet points at exists, nothing comes from another
origin, and the title face covers the names it is meant to draw. (`make css-check` covers staleness.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error

ROOT = Path(__file__).resolve().parents[1]
CSS = (ROOT / "static" / "css" / "site.css").read_text()
FACES = re.findall(r"@font-face\{([^}]*)\}", CSS)


def _codepoints(unicode_range: str) -> set[int]:
    points = set()
    for part in unicode_range.split(","):
        start, _, end = part.strip().removeprefix("U+").partition("-")
        points.update(range(int(start, 16), int(end or start, 16) + 1))
    return points


def test_every_font_the_stylesheet_names_is_committed():
    urls = re.findall(r"url\(\.\./fonts/([^)]+)\)", CSS)
    assert len(urls) == len(FACES) > 100
    missing = [u for u in urls if not (ROOT / "static" / "fonts" / u).is_file()]
    assert missing == []
    assert all("unicode-range" in face for face in FACES)  # split: a page fetches only what it shows
    for family in ("noto-serif-sc", "ma-shan-zheng"):
        assert (ROOT / "static" / "fonts" / family / "LICENSE.txt").read_text().count("SIL Open Font License") > 0


def test_the_title_face_covers_every_seeded_name():
    covered = set()
    for face in FACES:
        if re.search(r'font-family:"?Ma Shan Zheng', face):
            covered |= _codepoints(re.search(r"unicode-range:([^;}]+)", face).group(1))
    for card in (ROOT / "personas" / "seed" / "figures").glob("*.json"):
        name = json.loads(card.read_text())["data"]["name"]
        assert {ord(ch) for ch in name} <= covered, name


@pytest.mark.parametrize("template", sorted((ROOT / "templates").rglob("*.html")), ids=lambda p: p.name)
def test_no_template_loads_from_another_origin(template):
    html = template.read_text()
    assert not re.search(r'<(script|link|img)\b[^>]*(src|href)="(https?:)?//', html)


def test_the_500_page_is_chinese_and_styled(settings):
    response = server_error(RequestFactory().get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "笔墨偶有差池" in html and 'lang="zh-Hans"' in html and "css/site.css" in html
