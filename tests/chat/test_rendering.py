import pytest

from chat.rendering import render_markdown


def test_it_renders_markdown():
    html = render_markdown("**将进酒**\n\n- 君不见\n- 黄河之水")
    assert "<strong>将进酒</strong>" in html
    assert "<li>君不见</li>" in html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[点我](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src='https://evil.example'></iframe>",
        '<p style="background:url(x)" onclick="alert(1)">hi</p>',
    ],
)
def test_it_strips_anything_active(text):
    html = render_markdown(text).lower()
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert "<iframe" not in html and "onclick" not in html and "style=" not in html


def test_links_are_marked_nofollow():
    assert 'rel="noopener noreferrer nofollow"' in render_markdown("[史记](https://example.com)")
