"""PNG character cards, as SillyTavern writes them: the card JSON, UTF-8 then base64, in a tEXt chunk
named `ccv3` (Character Card V3) and/or `chara` (V2). A reader prefers `ccv3` (the V3 spec)."""

from __future__ import annotations

import base64
import binascii
import io
import json
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from personas.cards import CardError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNKS = ("ccv3", "chara")  # in the order a reader looks for them
MAX_CARD_JSON_BYTES = 1024 * 1024  # far above any real card (the seeded ones are ~20 KB)
MAX_CHUNK_CHARS = (MAX_CARD_JSON_BYTES + 2) // 3 * 4  # the base64 of the largest card we read
MAX_PIXELS = 4096 * 4096  # decoding the image is how Pillow reaches chunks after it; bound the cost
EXPORT_MAX_SIDE = 1024

PAPER = (251, 248, 241)
SEAL_RED = (163, 48, 31)
INK = (43, 38, 33)
# Tried in order; Debian's fonts-noto-cjk (installed with Chromium for the browser tests) has them.
CJK_FONTS = ("NotoSerifCJK-Bold.ttc", "NotoSansCJK-Bold.ttc", "NotoSerifCJK-Regular.ttc", "NotoSansCJK-Regular.ttc")


def png_card(data: bytes) -> tuple[dict, str]:
    """The card a PNG carries and the chunk it came from; CardError (in Chinese) for anything else."""
    texts = _text_chunks(data)
    keyword = next((name for name in CHUNKS if name in texts), None)
    if keyword is None:
        raise CardError("这张 PNG 图片里没有角色卡数据（既无 ccv3 也无 chara 数据块）。")
    value = texts[keyword]
    if len(value) > MAX_CHUNK_CHARS:
        raise CardError(f"PNG 中的 {keyword} 数据过大（上限 {MAX_CARD_JSON_BYTES // 1024} KB）。")
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CardError(f"PNG 中的 {keyword} 数据不是有效的 base64 编码。") from None
    try:
        card = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CardError(f"PNG 中的 {keyword} 数据解码后不是 UTF-8 文字。") from None
    except json.JSONDecodeError as exc:
        raise CardError(f"PNG 中的 {keyword} 数据不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）。") from None
    except RecursionError:
        raise CardError(f"PNG 中的 {keyword} 数据嵌套过深，不是角色卡。") from None
    if not isinstance(card, dict):
        raise CardError(f"PNG 中的 {keyword} 数据不是一张角色卡（应为 JSON 对象）。")
    return card, keyword


def _text_chunks(data: bytes) -> dict[str, str]:
    """Every text chunk, keywords lower-cased (readers match `chara` in any case)."""
    too_big = False
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                too_big = True
            else:
                image.load()  # chunks after the image data (where SillyTavern writes) are read only now
                texts = {str(k).lower(): str(v) for k, v in image.text.items()}
    except ValueError as exc:  # Pillow's own limits on text chunks
        if "too large" in str(exc).lower() or "too much memory" in str(exc).lower():
            raise CardError(f"PNG 中的文字数据过大（上限 {MAX_CARD_JSON_BYTES // 1024} KB）。") from None
        raise CardError("无法读取这张 PNG 图片（文件已损坏）。") from None
    except (OSError, SyntaxError, Image.DecompressionBombError):
        raise CardError("无法读取这张 PNG 图片（文件已损坏）。") from None
    if too_big:
        raise CardError(f"图片尺寸过大（{width}×{height}），请用不超过 4096×4096 的图片。")
    return texts


def png_card_write(image: Image.Image, chunks: dict[str, dict]) -> bytes:
    """The image as a PNG carrying each card in a tEXt chunk of that name."""
    info = PngInfo()
    for keyword, card in chunks.items():
        payload = json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        info.add_text(keyword, base64.b64encode(payload).decode("ascii"))
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, optimize=True)
    return out.getvalue()


def portrait_image(file) -> Image.Image | None:
    """The figure's portrait, fitted within EXPORT_MAX_SIDE; None when it cannot be read."""
    try:
        with Image.open(file) as source:
            source.thumbnail((EXPORT_MAX_SIDE, EXPORT_MAX_SIDE))
            return source.convert("RGBA" if "A" in source.getbands() else "RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


@lru_cache(maxsize=4)
def _cjk_font(size: int) -> ImageFont.FreeTypeFont | None:
    for name in CJK_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return None


def seal_image(seal_char: str, name: str) -> Image.Image:
    """A 400×600 card in the site's paper and seal colours: the figure's seal character when a CJK
    font is installed, otherwise the site seal's own strokes (static/img/seal.svg, redrawn)."""
    canvas = Image.new("RGB", (400, 600), PAPER)
    scale = 8  # the SVG is drawn on a 32-unit grid
    layer = Image.new("RGBA", (32 * scale, 32 * scale), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rounded_rectangle((2 * scale, 2 * scale, 30 * scale, 30 * scale), radius=3 * scale, fill=SEAL_RED)
    draw.rounded_rectangle((5 * scale, 5 * scale, 27 * scale, 27 * scale), radius=2 * scale, outline=PAPER,
                           width=round(1.5 * scale))
    font = _cjk_font(15 * scale) if seal_char else None
    if font is not None:
        draw.text((16 * scale, 16 * scale), seal_char, font=font, fill=PAPER, anchor="mm")
    else:
        width = 2 * scale
        for line in (((10, 12), (22, 12)), ((16, 8), (16, 24)), ((11, 17), (21, 17), (21, 23), (11, 23), (11, 17))):
            draw.line([(x * scale, y * scale) for x, y in line], fill=PAPER, width=width, joint="curve")
    layer = layer.rotate(3, resample=Image.Resampling.BICUBIC)  # the SVG's rotate(-3): a hand-set seal
    canvas.paste(layer, ((400 - layer.width) // 2, 130), layer)
    name_font = _cjk_font(44)
    if name_font is not None and name:
        ImageDraw.Draw(canvas).text((200, 470), name, font=name_font, fill=INK, anchor="mm")
    return canvas
