"""How the leader looks: the ``[appearance]`` table of persona.toml, validated.

Every field is optional (a default business look fills in), and every problem is reported
as (field, reason) so persona checks can list them all at once, like the rest of the persona.
Colours are ``#rrggbb`` or one of the names in ``COLOUR_NAMES`` (skin tones, hair colours).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

RGB = tuple[float, float, float]

BODIES = ("feminine", "masculine")
BUILDS = ("slim", "average", "broad")
HAIR_STYLES = ("bob", "long", "bun", "short", "buzz", "bald")
CLOTHING = ("blazer", "suit", "sweater", "shirt")
LOWER = ("trousers", "skirt")
GLASSES = ("none", "round", "rectangular")

COLOUR_NAMES: Mapping[str, str] = {
    # skin tones, light to deep
    "porcelain": "#f2d3c0",
    "light": "#e8bfa2",
    "medium": "#cf9d7b",
    "olive": "#b98a62",
    "tan": "#a8744f",
    "brown": "#8a5636",
    "dark": "#5e3a24",
    "deep": "#432a1c",
    # hair
    "black": "#16110e",
    "dark-brown": "#2e1d14",
    "brown-hair": "#5a3a24",
    "auburn": "#6e2f1c",
    "blonde": "#c9a467",
    "grey": "#8d8a86",
    "white": "#dcdad6",
    # clothes
    "navy": "#232f4c",
    "charcoal": "#2f3137",
    "ivory": "#f2ece2",
    "white-shirt": "#f4f4f2",
    "burgundy": "#5e1f2a",
    "camel": "#a98356",
}

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Appearance:
    """The inputs of the avatar builder; defaults are a neutral business look."""

    body: str = "feminine"
    height_m: float = 1.70
    build: str = "average"
    skin_tone: str = "medium"
    eye_colour: str = "#4a3424"
    hair_style: str = "bob"
    hair_colour: str = "dark-brown"
    clothing: str = "blazer"
    clothing_colour: str = "navy"
    shirt_colour: str = "ivory"
    lower: str = "trousers"
    lower_colour: str = "charcoal"
    shoe_colour: str = "#1a1614"
    lip_colour: str = ""  # "": a shade of the skin tone
    glasses: str = "none"
    glasses_colour: str = "#202020"

    def rgb(self, field_name: str) -> RGB:
        """A colour field as linear-light RGB floats (glTF colour factors are linear)."""
        return srgb_to_linear(hex_colour(getattr(self, field_name)))

    def key(self) -> str:
        """A stable text form of every field (what the built file depends on)."""
        return ";".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def hex_colour(value: str) -> RGB:
    """``#rrggbb`` or a known colour name as sRGB floats 0..1."""
    text = COLOUR_NAMES.get(value, value)
    if not _HEX.match(text):
        raise ValueError(f"{value!r} is not a colour (#rrggbb or a known name)")
    return tuple(int(text[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def srgb_to_linear(c: RGB) -> RGB:
    def one(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return (one(c[0]), one(c[1]), one(c[2]))


def parse_appearance(table: Any, report: Callable[[str, str], None]) -> Appearance:
    """The ``[appearance]`` table as an Appearance; problems go to ``report(field, reason)``
    and the default stands in for a bad value, so one pass finds every problem."""
    if table is None:
        return Appearance()
    if not isinstance(table, dict):
        report("appearance", "must be a table")
        return Appearance()
    default = Appearance()
    known = {f.name for f in fields(Appearance)}
    values: dict[str, Any] = {}
    choices = {
        "body": BODIES,
        "build": BUILDS,
        "hair_style": HAIR_STYLES,
        "clothing": CLOTHING,
        "lower": LOWER,
        "glasses": GLASSES,
    }
    for key, value in table.items():
        where = f"appearance.{key}"
        if key not in known:
            report(where, f"unknown field (fields: {', '.join(sorted(known))})")
        elif key == "height_m":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not 1.40 <= float(value) <= 2.10:
                report(where, f"must be a number of metres 1.40..2.10, got {value!r}")
            else:
                values[key] = float(value)
        elif not isinstance(value, str):
            report(where, f"must be a string, got {type(value).__name__}")
        elif key in choices:
            if value not in choices[key]:
                report(where, f"{value!r} is not one of {', '.join(choices[key])}")
            else:
                values[key] = value
        elif key == "lip_colour" and value == "":
            values[key] = value
        else:  # a colour
            try:
                hex_colour(value)
            except ValueError as err:
                report(where, str(err))
            else:
                values[key] = value
    return Appearance(**{**{f.name: getattr(default, f.name) for f in fields(default)}, **values})
