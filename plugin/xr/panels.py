"""The headset's two panels, drawn with Pillow and shown as textured quads:

- the **stage panel**, world-space on the front of the stage under the clone: the AI
  disclosure, the answer's label (a readable name for the known labels, the raw value for
  any other) and the captions as they are spoken;
- the **question board**, anchored above the left controller: the open questions with
  their votes and a raise-hand button, used with the right controller's ray and trigger.

Layout and hit-testing are pure (numpy and Pillow), so tests can aim a controller at a
button exactly as a person would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from .text import font, wrap

F64 = npt.NDArray[np.float64]

LABELS = {
    "approved": ("Approved answer", (95, 211, 138)),
    "generated": ("AI-generated from approved sources", (127, 178, 255)),
    "escalated": ("Escalated to the leader", (255, 143, 107)),
    "live": ("Live speaker", (200, 200, 200)),
    "leader": ("The leader's own words", (255, 200, 61)),
    "moderator": ("Written by the moderators", (190, 160, 255)),
}


def label_text(label: str) -> tuple[str, tuple[int, int, int]]:
    """A readable name for a known label; any other value is shown as it came."""
    return LABELS.get(label, (label, (220, 220, 220)))


# ---------------------------------------------------------------- the stage panel

STAGE_PX = (1600, 300)


@dataclass
class StageText:
    disclosure: str = ""
    label: str = ""
    caption: str = ""
    question: str = ""
    badge: str = "AI"  # beside the disclosure: the clone is an AI; none on a notice


def draw_stage_panel(t: StageText) -> npt.NDArray[np.uint8]:
    w, h = STAGE_PX
    img = Image.new("RGBA", (w, h), (12, 14, 20, 235))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w - 1, h - 1], outline=(60, 68, 86, 255), width=3)
    x = 24
    small = font(36, bold=True)
    if t.disclosure:
        indent = 84 if t.badge else 0
        if t.badge:
            d.rounded_rectangle([x, 14, x + 64, 62], 7, fill=(255, 200, 61, 255))
            d.text((x + 11, 17), t.badge, font=small, fill=(0, 0, 0, 255))
        line = wrap(t.disclosure, font(36), w - 150)[:1]
        text = line[0] if line else ""
        d.text((x + indent, 18), text, font=font(36), fill=(240, 240, 240, 255))
    if t.label:
        name, colour = label_text(t.label)
        tw = small.getlength(name)
        d.rounded_rectangle([x, 76, x + tw + 28, 126], 7, fill=(*colour, 255))
        d.text((x + 14, 80), name, font=small, fill=(0, 0, 0, 255))
        if t.question:
            first = wrap("Q: " + t.question, font(32), int(w - tw - 100))[:1]
            d.text(
                (x + tw + 50, 84),
                first[0] if first else "",
                font=font(32),
                fill=(170, 178, 195, 255),
            )
    big = font(60)
    lines = wrap(t.caption, big, w - 48)[-2:]
    for i, caption_line in enumerate(lines):
        d.text((x, 142 + 72 * i), caption_line, font=big, fill=(255, 255, 255, 255))
    return np.asarray(img)


def sign_in_text(user_code: str, verification_uri: str) -> StageText:
    """The stage panel while a headset signs in: the code, and where to enter it."""
    return StageText(
        disclosure="Sign in to join the town hall",
        caption=f"Open {verification_uri} and enter {user_code}",
        badge="",
    )


def reconnecting_text(attempt: int) -> StageText:
    """The stage panel while the headset's connection is down and it tries to come back."""
    tries = f" (attempt {attempt})" if attempt > 1 else ""
    return StageText(
        disclosure="Reconnecting to the town hall…",
        caption=f"The connection dropped; coming back to your seat{tries}",
        badge="",
    )


# ---------------------------------------------------------------- the question board

BOARD_PX = (640, 800)
BOARD_M = (0.36, 0.45)  # metres
ROWS = 5


@dataclass
class BoardItem:
    question: int
    text: str
    votes: int
    voted: bool


@dataclass
class Board:
    items: list[BoardItem] = field(default_factory=list)
    hand_raised: bool = False
    can_raise: bool = True
    hover: str = ""  # "vote:<id>", "hand" or ""
    status: str = ""


def board_buttons(board: Board) -> dict[str, tuple[int, int, int, int]]:
    """Button rectangles in board pixels (x0, y0, x1, y1): a vote per row, the hand."""
    w, h = BOARD_PX
    out = {}
    for i, item in enumerate(board.items[:ROWS]):
        y = 96 + i * 124
        out[f"vote:{item.question}"] = (16, y, 124, y + 108)
    if board.can_raise:
        out["hand"] = (16, h - 96, w - 16, h - 20)
    return out


def draw_board(board: Board) -> npt.NDArray[np.uint8]:
    w, h = BOARD_PX
    img = Image.new("RGBA", (w, h), (22, 26, 34, 240))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w - 1, h - 1], outline=(70, 80, 100, 255), width=4)
    d.text((20, 22), "Questions", font=font(40, bold=True), fill=(238, 241, 246, 255))
    d.text((260, 36), "point and pull the trigger", font=font(22), fill=(169, 178, 195, 255))
    buttons = board_buttons(board)
    if not board.items:
        d.text((20, 120), "No open questions yet.", font=font(30), fill=(169, 178, 195, 255))
    for _i, item in enumerate(board.items[:ROWS]):
        key = f"vote:{item.question}"
        x0, y0, x1, y1 = buttons[key]
        hover = board.hover == key
        fill = (58, 50, 18, 255) if item.voted else (30, 36, 48, 255)
        if hover:
            fill = (80, 90, 120, 255)
        d.rounded_rectangle(
            [x0, y0, x1, y1],
            10,
            fill=fill,
            outline=(255, 200, 61, 255) if item.voted or hover else (58, 67, 86, 255),
            width=3,
        )
        d.polygon(
            [(x0 + 54, y0 + 16), (x0 + 30, y0 + 48), (x0 + 78, y0 + 48)],
            fill=(255, 200, 61, 255) if item.voted else (200, 205, 215, 255),
        )
        count = str(item.votes)
        f = font(34, bold=True)
        d.text(
            (x0 + 54 - f.getlength(count) / 2, y0 + 56), count, font=f, fill=(238, 241, 246, 255)
        )
        lines = wrap(item.text, font(28), w - 160)[:3]
        for k, line in enumerate(lines):
            d.text((140, y0 + 6 + 34 * k), line, font=font(28), fill=(238, 241, 246, 255))
    if "hand" in buttons:
        x0, y0, x1, y1 = buttons["hand"]
        hover = board.hover == "hand"
        fill = (
            (95, 211, 138, 255)
            if board.hand_raised
            else ((80, 90, 120, 255) if hover else (40, 46, 60, 255))
        )
        d.rounded_rectangle([x0, y0, x1, y1], 12, fill=fill, outline=(120, 130, 150, 255), width=3)
        text = "Lower your hand" if board.hand_raised else "Raise your hand to speak"
        f = font(32, bold=True)
        colour = (0, 0, 0, 255) if board.hand_raised else (238, 241, 246, 255)
        d.text(((x0 + x1) / 2 - f.getlength(text) / 2, y0 + 18), text, font=f, fill=colour)
    if board.status:
        d.text((20, h - 132), board.status[:48], font=font(22), fill=(255, 143, 107, 255))
    return np.asarray(img)


def quat_matrix(q: tuple[float, ...] | F64) -> F64:
    x, y, z, w = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def board_pose(grip: tuple[float, ...]) -> F64:
    """The board's model matrix (seat frame) from the left grip pose: above the hand, tipped
    back 35 degrees to face the wearer's eyes."""
    r = quat_matrix(grip[3:])
    tilt = math.radians(-35)
    rx = np.array(
        [[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]]
    )
    m = np.eye(4)
    m[:3, :3] = r @ rx
    m[:3, 3] = np.array(grip[:3]) + r @ np.array([0.02, 0.2, -0.05])
    return m


def board_point(model: F64, px: tuple[float, float]) -> F64:
    """A board pixel's position (seat frame): pixel (0, 0) is the top left."""
    w, h = BOARD_PX
    x = (px[0] / w - 0.5) * BOARD_M[0]
    y = (0.5 - px[1] / h) * BOARD_M[1]
    out: F64 = model[:3, :3] @ np.array([x, y, 0.0]) + model[:3, 3]
    return out


def ray_hit(model: F64, origin: F64, direction: F64) -> tuple[float, float, float] | None:
    """Where a ray meets the board: (pixel x, pixel y, distance), or None."""
    normal = model[:3, 2]
    denom = float(normal @ direction)
    if abs(denom) < 1e-6:
        return None
    t = float(normal @ (model[:3, 3] - origin)) / denom
    if t <= 0:
        return None
    local = model[:3, :3].T @ (origin + t * direction - model[:3, 3])
    u = local[0] / BOARD_M[0] + 0.5
    v = 0.5 - local[1] / BOARD_M[1]
    if not (0 <= u <= 1 and 0 <= v <= 1):
        return None
    return u * BOARD_PX[0], v * BOARD_PX[1], t


def button_at(board: Board, px: float, py: float) -> str:
    for key, (x0, y0, x1, y1) in board_buttons(board).items():
        if x0 <= px <= x1 and y0 <= py <= y1:
            return key
    return ""
