"""The 长卷 (long scroll): a branch drawn as one tall PNG in the site's paper-and-ink style, the
figure's name as its title, each message a block, the figure's seal in cinnabar at the end.

Drawn with Pillow from the messages it is given (the caller fetched them through their owner).
Model text goes through the site's sanitiser first and only its text is drawn, so the image
holds what the page shows, never markup. A branch too long for MAX_HEIGHT stops with 「……」 and
a note of what was left out.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.utils import timezone
from PIL import Image, ImageDraw

from chat.models import Conversation, Message
from chat.rendering import render_markdown
from chat.scenes import speaker_of
from chat.sharing.fonts import font

WIDTH = 1080
# Tall enough for a long exchange, small enough for memory (about 40 MB while drawing) and for
# the image limits of the sites it is posted to.
MAX_HEIGHT = 12000

PAPER = (245, 239, 227)
PAPER_2 = (251, 248, 241)
INK = (38, 33, 29)
INK_SOFT = (90, 81, 73)
LINE = (220, 208, 185)
SEAL = (163, 48, 31)
CELADON_WASH = (230, 239, 233)
CELADON_LINE = (205, 220, 211)
OCHRE = (122, 91, 22)

MARGIN = 84
INDENT = 72  # the user's blocks sit to the right and the figures' to the left, as on the page
PAD_X, PAD_Y = 30, 22
BODY_SIZE, BODY_LEAD = 32, 56
LABEL_SIZE, LABEL_ROW = 26, 52
BLOCK_GAP = 30
TITLE_SIZE = 84
META_SIZE, META_LEAD = 27, 46
SEAL_SIZE = 168
FOOTER = 120 + SEAL_SIZE  # the seal, the line beside it and the bottom margin

STATUS_LABELS = {
    Message.Status.STOPPED: ("已停止", OCHRE),
    Message.Status.INTERRUPTED: ("已中断", OCHRE),
    Message.Status.ERROR: ("出错", SEAL),
}
# Closing punctuation stays on the line it ends rather than starting the next one.
NO_LINE_START = set("，。、；：？！）」』》〉】”’…—,.;:?!)]}%")
_TOKENS = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-_.@/]*|\s+|.")


class _PlainText(HTMLParser):
    """The text of sanitised HTML, one paragraph per block element ("" between paragraphs)."""

    BLOCKS = frozenset({"p", "br", "li", "blockquote", "pre", "h3", "h4", "h5", "h6", "tr", "hr", "ul", "ol", "table"})

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.in_pre = False

    def handle_starttag(self, tag, attrs):
        self.in_pre = self.in_pre or tag == "pre"
        if tag in self.BLOCKS:
            self.parts.append("\n" if tag in ("br", "li") else "\n\n")
        if tag == "li":
            self.parts.append("· ")
        elif tag in ("td", "th"):
            self.parts.append("　")

    def handle_endtag(self, tag):
        if tag == "pre":
            self.in_pre = False
        if tag in self.BLOCKS and tag != "br":
            self.parts.append("\n" if tag == "li" else "\n\n")

    def handle_data(self, data):
        self.parts.append(data if self.in_pre else data.replace("\n", " "))


def paragraphs(message: Message) -> list[str]:
    """What a message says as lines of plain text; "" marks a paragraph break."""
    if message.role == Message.Role.ASSISTANT:
        parser = _PlainText()
        parser.feed(render_markdown(message.content))
        parser.close()
        text = "".join(parser.parts)
    else:
        text = message.content
    lines: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def wrap(text: str, face, width: int) -> list[str]:
    """Greedy line breaking by character (Chinese) or by word (Latin), with closing punctuation
    kept off the start of a line."""
    lines, current, used = [], "", 0.0
    for token in _TOKENS.findall(text):
        size = face.getlength(token)
        if used + size <= width or not current or token in NO_LINE_START:
            current, used = current + token, used + size
            continue
        if token.isspace():
            lines.append(current)
            current, used = "", 0.0
            continue
        if size > width:  # a word longer than the line is cut where it reaches the edge
            for char in token:
                char_size = face.getlength(char)
                if used + char_size > width and current:
                    lines.append(current)
                    current, used = "", 0.0
                current, used = current + char, used + char_size
            continue
        lines.append(current)
        current, used = token, size
    if current.strip():
        lines.append(current)
    return [line.rstrip() for line in lines]


@dataclass
class _Block:
    speaker: str
    seal_char: str
    is_assistant: bool
    status: str
    lines: list[str] = field(default_factory=list)  # "" is a paragraph gap
    cut: bool = False  # ends with 「……」 where the height ran out

    @property
    def x(self) -> tuple[int, int]:
        left, right = MARGIN, WIDTH - MARGIN
        return (left, right - INDENT) if self.is_assistant else (left + INDENT, right)

    @property
    def text_width(self) -> int:
        left, right = self.x
        return right - left - 2 * PAD_X

    def height(self, lines: list[str] | None = None) -> int:
        lines = self.lines if lines is None else lines
        return 2 * PAD_Y + LABEL_ROW + sum(BODY_LEAD if line else BODY_LEAD // 2 for line in lines)


def _blocks(conversation: Conversation, messages: list[Message]) -> list[_Block]:
    body = font("body", BODY_SIZE)
    blocks = []
    for message in messages:
        text = paragraphs(message)
        if not text:
            continue  # a failed reply that wrote nothing
        is_assistant = message.role == Message.Role.ASSISTANT
        persona = speaker_of(message, conversation) if is_assistant else None
        block = _Block(speaker=persona.name if persona else "我", seal_char=persona.seal_char if persona else "",
                       is_assistant=is_assistant, status=message.status)
        for line in text:
            block.lines += wrap(line, body, block.text_width) if line else [""]
        blocks.append(block)
    return blocks


def _meta_lines(conversation: Conversation) -> list[str]:
    persona = conversation.persona
    lines = [f"{persona.get_dynasty_display()} · {persona.lifespan}"]
    if conversation.is_salon:
        lines.append("同场：" + "、".join(f"{guest.name}（{guest.get_dynasty_display()}）" for guest in conversation.guests))
    if conversation.life_stage is not None:
        lines.append(f"人生阶段：{conversation.life_stage.name}")
    return lines


def _fit(blocks: list[_Block], budget: int) -> tuple[list[_Block], str]:
    """The blocks that fit in `budget` pixels, the last one cut short when it must, and the note
    saying what was left out ("" when everything fits)."""
    kept, used = [], 0
    for index, block in enumerate(blocks):
        if used + block.height() <= budget:
            kept.append(block)
            used += block.height() + BLOCK_GAP
            continue
        rest = len(blocks) - index - 1
        room = budget - used - 2 * PAD_Y - LABEL_ROW
        count = max(0, room // BODY_LEAD - 1)  # one line for 「……」
        if count >= 2:
            kept.append(_Block(block.speaker, block.seal_char, block.is_assistant, block.status,
                               block.lines[:count] + ["……"], cut=True))
            after = f"，其后尚有 {rest} 条" if rest else ""
            return kept, f"长卷篇幅有限，此条未尽{after}。全文可在对话页导出。"
        return kept, f"长卷篇幅有限，其后尚有 {rest + 1} 条未绘入。全文可在对话页导出。"
    return kept, ""


def _text_centered(draw: ImageDraw.ImageDraw, y: int, text: str, face, fill, spacing: int = 0) -> None:
    widths = [face.getlength(char) for char in text]
    x = (WIDTH - sum(widths) - spacing * (len(text) - 1)) / 2
    for char, width in zip(text, widths, strict=True):
        draw.text((x, y), char, font=face, fill=fill, anchor="lm")
        x += width + spacing


def _seal_text(name: str) -> str:
    """Four characters read as a seal reads (right column first, top to bottom): 李白之印, 王阳明印."""
    if len(name) == 4:
        return name
    if len(name) == 3:
        return name + "印"
    if len(name) == 2:
        return name + "之印"
    return name[:1]


def seal_image(name: str, size: int = SEAL_SIZE) -> Image.Image:
    """The figure's seal in cinnabar, pressed slightly askew, on a transparent ground."""
    seal = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(seal)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 18, fill=SEAL)
    inset = size // 14
    draw.rounded_rectangle((inset, inset, size - 1 - inset, size - 1 - inset), radius=size // 30,
                           outline=PAPER_2, width=max(2, size // 50))
    text = _seal_text(name)
    if len(text) == 4:
        face, half = font("title", int(size * 0.36)), size / 2
        centres = [(half + size / 4.6, half - size / 4.6), (half + size / 4.6, half + size / 4.6),
                   (half - size / 4.6, half - size / 4.6), (half - size / 4.6, half + size / 4.6)]
        for char, centre in zip(text, centres, strict=True):
            draw.text(centre, char, font=face, fill=PAPER_2, anchor="mm")
    else:
        draw.text((size / 2, size / 2), text, font=font("title", int(size * 0.62)), fill=PAPER_2, anchor="mm")
    return seal.rotate(-3, resample=Image.Resampling.BICUBIC, expand=True)


def _draw_block(draw: ImageDraw.ImageDraw, block: _Block, top: int) -> int:
    left, right = block.x
    bottom = top + block.height()
    if block.is_assistant:
        draw.rectangle((left, top, right, bottom), fill=PAPER_2, outline=LINE)
        draw.rectangle((left, top, left + 3, bottom), fill=INK)
    else:
        draw.rectangle((left, top, right, bottom), fill=CELADON_WASH, outline=CELADON_LINE)
    x, y = left + PAD_X, top + PAD_Y
    label = font("title", LABEL_SIZE)
    if block.seal_char:
        draw.rounded_rectangle((x, y + 6, x + 38, y + 44), radius=3, fill=SEAL)
        draw.text((x + 19, y + 25), block.seal_char, font=font("title", 24), fill=PAPER_2, anchor="mm")
        x += 50
    draw.text((x, y + LABEL_ROW // 2), block.speaker, font=label, fill=INK, anchor="lm")
    if block.status in STATUS_LABELS:
        text, colour = STATUS_LABELS[block.status]
        x += label.getlength(block.speaker) + 16
        draw.text((x, y + LABEL_ROW // 2), text, font=font("body", 22), fill=colour, anchor="lm")
    y += LABEL_ROW
    body = font("body", BODY_SIZE)
    for line in block.lines:
        if not line:
            y += BODY_LEAD // 2
            continue
        draw.text((left + PAD_X, y + BODY_LEAD // 2), line, font=body, fill=INK, anchor="lm")
        y += BODY_LEAD
    return bottom


def render_scroll(conversation: Conversation, messages: list[Message]) -> bytes:
    """The branch `messages` (root first) of `conversation` as PNG bytes, WIDTH pixels wide."""
    persona = conversation.persona
    meta = _meta_lines(conversation)
    header = 150 + TITLE_SIZE + len(meta) * META_LEAD + 70
    blocks, note = _fit(_blocks(conversation, messages), MAX_HEIGHT - header - FOOTER - 3 * META_LEAD)
    body_height = sum(block.height() + BLOCK_GAP for block in blocks)
    height = header + body_height + (2 * META_LEAD + 20 if note else 0) + FOOTER

    image = Image.new("RGB", (WIDTH, height), PAPER)
    draw = ImageDraw.Draw(image)
    # A scroll's mounting: a double rule round the sheet.
    draw.rectangle((26, 26, WIDTH - 27, height - 27), outline=LINE, width=3)
    draw.rectangle((38, 38, WIDTH - 39, height - 39), outline=LINE, width=1)

    y = 150
    _text_centered(draw, y, persona.name, font("title", TITLE_SIZE), INK, spacing=TITLE_SIZE // 5)
    y += TITLE_SIZE // 2 + 40
    for line in meta:
        _text_centered(draw, y + META_LEAD // 2, line, font("body", META_SIZE), INK_SOFT)
        y += META_LEAD
    y += 24
    draw.rectangle((WIDTH / 2 - 44, y, WIDTH / 2 + 44, y + 3), fill=SEAL)
    y = header

    for block in blocks:
        y = _draw_block(draw, block, y) + BLOCK_GAP
    if note:
        if not (blocks and blocks[-1].cut):  # a block cut short already ends with 「……」
            _text_centered(draw, y + META_LEAD // 2, "……", font("body", META_SIZE), INK_SOFT)
        _text_centered(draw, y + META_LEAD + META_LEAD // 2, note, font("body", 24), INK_SOFT)
        y += 2 * META_LEAD + 20

    seal = seal_image(persona.name)
    y += 30
    image.paste(seal, (WIDTH - MARGIN - seal.width, y), seal)
    small = font("body", 24)
    draw.text((MARGIN, y + seal.height / 2 - 18), "古月今话", font=font("title", 30), fill=INK, anchor="lm")
    draw.text((MARGIN, y + seal.height / 2 + 24), f"{timezone.localtime():%Y-%m-%d} · 与{persona.name}的对话",
              font=small, fill=INK_SOFT, anchor="lm")

    out = io.BytesIO()
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()
