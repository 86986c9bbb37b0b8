"""Model text is untrusted: Markdown is rendered, then sanitised with nh3, before it reaches a page."""

from __future__ import annotations

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "blockquote", "ul", "ol", "li", "code", "pre", "hr",
    "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub", "a",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


def render_markdown(text: str) -> str:
    # Raw HTML in the source is escaped by Markdown's own rule set before nh3 sees it.
    html = markdown.markdown(text, extensions=["sane_lists", "tables", "fenced_code", "nl2br"], output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
    )
