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


# -- verse for the reading mode (竖排) ---------------------------------------------------------

POEM = "且听我吟：\n\n床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。\n\n此诗作于扬州。"


@pytest.mark.parametrize(("text", "verse"), [
    (POEM, True),
    ("大江东去，浪淘尽，千古风流人物。\n故垒西边，人道是，三国周郎赤壁。", True),  # 词: lines up to 16 characters
    ("君不见黄河之水天上来，\n奔流到海不复回。", True),
    ("床前明月光，疑是地上霜。", False),  # one line
    ("这是一段很长很长的白话文，讲的是诗人在长安城里的种种经历与见闻，\n后来他离开了长安。", False),
    ("床前 moon 光，\n疑是地上霜。", False),  # not Chinese only
    ("- 床前明月光\n- 疑是地上霜", False),  # a list, not a paragraph of lines
])
def test_verse_paragraphs_are_marked(text, verse):
    from chat.rendering import render_markdown

    assert ('class="verse"' in render_markdown(text)) is verse


def test_marking_verse_adds_no_markup_of_the_models():
    from chat.rendering import render_markdown

    html = render_markdown('<p class="verse" onclick="x()">床前明月光，\n疑是地上霜。</p>')
    assert "onclick" not in html and html.count('class="verse"') <= 1


def test_the_bubble_offers_vertical_reading_only_for_verse_or_quotes(alice):
    from chat import services
    from chat.bubbles import render_bubble
    from tests.personas.factories import make_persona

    persona = make_persona("li-bai", "李白")
    conversation = services.conversation_start(owner=alice, persona=persona)
    asked = services.message_add_user(conversation=conversation, text="吟一首")
    poem = services.reply_save(conversation=conversation, parent=asked, content=POEM, status="complete")
    prose = services.reply_save(conversation=conversation, parent=asked, content="今日不吟诗，且饮酒。", status="complete")
    assert 'data-action="vertical"' in render_bubble(poem, siblings=[], persona=persona)
    assert 'data-action="vertical"' not in render_bubble(prose, siblings=[], persona=persona)
