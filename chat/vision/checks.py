"""What a picture must be before the site keeps it (docs/vision.md). Pure Pillow, no Django.

The type is read from the bytes, never from the name or the browser's word; the pixel count is
checked from the header before any pixel is decoded, so a small file that unpacks to gigabytes
(a decompression bomb) costs nothing. What is kept is a fresh JPEG: no metadata (GPS in a
phone's photo), no second frame, no bytes of the upload itself.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024  # the upload as sent
MAX_PIXELS = 40_000_000  # width × height of the upload, read from its header
MAX_SIDE = 1568  # the longest side kept: more only costs the model's tokens
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")  # a GIF gives its first frame
JPEG_QUALITY = 85
PAPER = (250, 246, 238)  # transparent parts are laid on the site's rice paper, not black

NOT_AN_IMAGE = "这不是可以识别的图片：请选择 JPEG、PNG、WebP 或 GIF 格式的图片。"
EMPTY = "没有收到图片，请重新选择。"


class ImageRejected(ValueError):
    """Bad input, with a message fit to show."""


@dataclass(frozen=True)
class CheckedImage:
    jpeg: bytes
    width: int
    height: int


def too_large(size: int) -> str:
    return f"图片太大了（{size / 1024 / 1024:.1f} MB），请选择 {MAX_BYTES // 1024 // 1024} MB 以内的图片。"


def too_many_pixels(width: int = 0, height: int = 0) -> str:
    size = f"（{width}×{height} 像素）" if width else ""
    return f"图片尺寸太大了{size}，请选择总像素不超过 {MAX_PIXELS // 10_000} 万的图片，或先缩小再上传。"


def checked_image(data: bytes) -> CheckedImage:
    """The picture re-encoded as JPEG, or ImageRejected."""
    if not data:
        raise ImageRejected(EMPTY)
    if len(data) > MAX_BYTES:
        raise ImageRejected(too_large(len(data)))
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; here anything past ours is refused anyway.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > MAX_PIXELS:
                    raise ImageRejected(too_many_pixels(width, height))
                image.seek(0)
                image.load()
                return _reencoded(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(too_many_pixels()) from None  # past Pillow's own limit: refused in `open`
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        if isinstance(exc, ImageRejected):
            raise
        raise ImageRejected(NOT_AN_IMAGE) from None


def _reencoded(image: Image.Image) -> CheckedImage:
    image = ImageOps.exif_transpose(image)  # a phone's portrait photo stays upright without its EXIF
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, PAPER)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return CheckedImage(jpeg=out.getvalue(), width=image.width, height=image.height)
