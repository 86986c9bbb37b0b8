"""A CJK font for the 长卷 image, found at run time.

The site's own faces (static/fonts) are woff2 slices cut by unicode-range: FreeType, which Pillow
draws with, reads neither the format nor a face split in hundreds of files. So the image uses a
CJK font installed on the server (Debian: fonts-noto-cjk), looked for by file name in the
standard font directories; without one it falls back to Pillow's own font, which has no Chinese
glyphs (docs/architecture.md, Sharing).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

FONT_DIRS = (
    "/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts",
    "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts",
)
# File names, best first. Song (serif) faces match the site's reading text; sans faces and the
# common system fonts of other platforms come after.
BODY_FILES = (
    "notoserifcjk-regular.ttc", "notoserifcjksc-regular.otf", "notoserifsc-regular.otf",
    "sourcehanserif-regular.ttc", "sourcehanserifsc-regular.otf",
    "notosanscjk-regular.ttc", "notosanscjksc-regular.otf", "sourcehansans-regular.ttc",
    "wqy-zenhei.ttc", "wqy-microhei.ttc", "songti.ttc", "simsun.ttc", "msyh.ttc", "pingfang.ttc",
)
# The title wants a brush face (the site uses Ma Shan Zheng); a bold Song face does well enough.
TITLE_FILES = (
    "mashanzheng-regular.ttf", "ukai.ttc", "notoserifcjk-bold.ttc", "notoserifcjksc-bold.otf",
    "notoserifsc-bold.otf", "sourcehanserif-bold.ttc", "notosanscjk-bold.ttc", *BODY_FILES,
)
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


@cache
def _installed() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in FONT_DIRS:
        root = Path(directory).expanduser()
        if not root.is_dir():
            continue
        for folder, _, files in os.walk(root):
            for name in files:
                if name.lower().endswith(_FONT_SUFFIXES):
                    found.setdefault(name.lower(), Path(folder) / name)
    return found


def _simplified_index(path: Path) -> int:
    """A collection (.ttc) holds one face per region; the simplified-Chinese one draws 们 and 这
    as readers here expect."""
    for index in range(16):
        try:
            family, _ = ImageFont.truetype(str(path), 12, index=index).getname()
        except OSError:
            break
        if family and family.rstrip().endswith((" SC", " CN", " GB")):
            return index
    return 0


@cache
def _choose(candidates: tuple[str, ...]) -> tuple[str, int] | None:
    installed = _installed()
    for name in candidates:
        path = installed.get(name)
        if path is not None:
            return str(path), _simplified_index(path) if name.endswith(".ttc") else 0
    log.warning("No CJK font found in %s; the 长卷 image falls back to Pillow's font (install fonts-noto-cjk).",
                ", ".join(FONT_DIRS))
    return None


@cache
def font(role: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The face for `role` ("body" or "title") at `size` pixels."""
    chosen = _choose(TITLE_FILES if role == "title" else BODY_FILES)
    if chosen is None:
        return ImageFont.load_default(size)
    path, index = chosen
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


def has_cjk_font() -> bool:
    return _choose(BODY_FILES) is not None
