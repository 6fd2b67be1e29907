"""Text for the headset's panels: a TrueType font rasterised with Pillow into RGBA images
that become textures (OpenGL draws no text by itself).

The font is DejaVu Sans from Debian's fonts-dejavu-core (Latin and Cyrillic: captions come
in English and Ukrainian); where it is missing, Pillow's own built-in font stands in.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger("townhall.plugin.xr")

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> Font:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        path = folder / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    log.warning("no DejaVu Sans (apt-get install fonts-dejavu-core): Pillow's built-in font")
    return ImageFont.load_default(size)


def wrap(text: str, f: Font, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if f.getlength(trial) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines
