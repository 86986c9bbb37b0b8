"""Model text is untrusted: Markdown is rendered, then sanitised with nh3, before it reaches a page."""

from __future__ import annotations

import re
from collections.abc import Mapping

import markdown
import nh3

from chat.citations import REF, Citation, apply_marks

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "blockquote", "ul", "ol", "li", "code", "pre", "hr",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub", "a",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


# A paragraph of plain text lines (nl2br's <br>), after nh3: only our own class is ever added to it.
_PLAIN_PARAGRAPH = re.compile(r"<p>((?:[^<]|<br>)+)</p>")
_NOT_HAN = re.compile(r"[\s，。！？、；：…—·「」『』《》（）“”‘’,.!?;:()\-]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
VERSE_LINE_CHARS = (3, 16)


def _is_verse(lines: list[str]) -> bool:
    """Two or more short lines of Chinese characters only: a poem (诗、词、联句) the page may set vertically."""
    if len(lines) < 2:
        return False
    for line in lines:
        core = _NOT_HAN.sub("", REF.sub("", line))  # a source id after a line does not make it prose
        if not VERSE_LINE_CHARS[0] <= len(core) <= VERSE_LINE_CHARS[1] or len(_HAN.findall(core)) != len(core):
            return False
    return True


def mark_verse(html: str) -> str:
    """Give verse paragraphs class="verse", so the reading mode (竖排) can set them right to left."""
    def mark(match: re.Match) -> str:
        lines = [line for line in match.group(1).split("<br>") if line.strip()]
        return f'<p class="verse">{match.group(1)}</p>' if _is_verse(lines) else match.group(0)

    return _PLAIN_PARAGRAPH.sub(mark, html)


def has_vertical_text(html: str) -> bool:
    """Whether a reply holds something the reading mode sets vertically: verse or a quoted passage."""
    return 'class="verse"' in html or "<blockquote>" in html


def render_markdown(text: str, citations: Mapping[int, Citation] | None = None) -> str:
    """`citations`: the entries the speaker may cite (chat/citations.py); any other source id is dropped."""
    # Raw HTML in the source is escaped by Markdown's own rule set before nh3 sees it.
    html = markdown.markdown(text, extensions=["sane_lists", "tables", "fenced_code", "nl2br"], output_format="html")
    return apply_marks(mark_verse(_clean(html)), citations or {})


def _clean(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
    )
