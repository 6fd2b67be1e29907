"""The headset's panels and pointer without a headset: label names (known and new ones), the
board's buttons under a ray, what a trigger pull sends, and where the voice is heard."""

from __future__ import annotations

import math

import numpy as np

from townhall.plugin.xr import panels
from townhall.plugin.xr.audio import pan_gains, stereo
from townhall.plugin.xr.interact import BoardController
from townhall.plugin.xr.render import pose_matrix
from townhall.protocol.messages import QuestionInfo


def question(qid: int, text: str, votes: int = 1, state: str = "submitted") -> QuestionInfo:
    return QuestionInfo(qid, text, "en", state, votes, -1, "Ada", False, 0, 0, 0)  # type: ignore[arg-type]


def test_labels_have_readable_names_and_new_ones_show_as_they_come() -> None:
    assert panels.label_text("approved")[0] == "Approved answer"
    assert panels.label_text("escalated")[0] == "Escalated to the leader"
    assert panels.label_text("generated")[0].startswith("AI-generated")
    assert panels.label_text("leader")[0] == "The leader's own words"
    assert panels.label_text("board-statement")[0] == "board-statement"  # unknown: as it came
    img = panels.draw_stage_panel(panels.StageText("I'm an AI clone.", "something-new", "Hello"))
    assert img.shape == (*panels.STAGE_PX[::-1], 4) and img[..., 3].min() > 0


def look(origin: np.ndarray, target: np.ndarray) -> tuple[float, ...]:
    """A controller pose at ``origin`` whose -Z points at ``target`` (seat frame = world)."""
    f = (target - origin) / np.linalg.norm(target - origin)
    x = np.cross(f, [0, 1, 0])
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    m = np.stack([x, y, -f], axis=1)
    w = math.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    q = (
        (m[2, 1] - m[1, 2]) / (4 * w),
        (m[0, 2] - m[2, 0]) / (4 * w),
        (m[1, 0] - m[0, 1]) / (4 * w),
        w,
    )
    return (*origin, *q)


def test_the_pointer_votes_withdraws_and_raises_the_hand() -> None:
    seat = np.eye(4, dtype=np.float32)
    questions = {
        7: question(7, "Will we open an office in Lisbon?", 3),
        8: question(8, "Gone", 0, "answered"),
    }
    board = BoardController()
    left = (-0.2, 0.9, -0.35, 0.0, 0.0, 0.0, 1.0)
    model = panels.board_pose(left)
    head = look(model[:3, 3] + model[:3, 2] * 0.4, model[:3, 3])
    items = board.items(questions)
    assert [i.question for i in items] == [7]  # answered questions are not on the board
    buttons = panels.board_buttons(panels.Board(items))
    x0, y0, x1, y1 = buttons["vote:7"]
    target = panels.board_point(model, ((x0 + x1) / 2, (y0 + y1) / 2))
    right = look(np.array([0.25, 0.8, -0.25]), target)

    def frame(pressed: bool, aim: tuple[float, ...] = right, hand: bool = False) -> list[object]:
        return board.update(left, aim, seat, questions, hand, pressed, head)  # type: ignore[return-value]

    assert frame(False) == [] and board.pointer.board.hover == "vote:7"
    (vote,) = frame(True)
    assert (vote.kind, vote.question, vote.up) == ("vote", 7, True)  # type: ignore[attr-defined]
    assert frame(True) == []  # held: one click, one vote
    frame(False)
    (again,) = frame(True)
    assert (again.kind, again.up) == ("vote", False)  # type: ignore[attr-defined]
    x0, y0, x1, y1 = buttons["hand"]
    to_hand = look(
        np.array([0.25, 0.8, -0.25]), panels.board_point(model, ((x0 + x1) / 2, (y0 + y1) / 2))
    )
    frame(False, to_hand)
    (hand,) = frame(True, to_hand)
    assert (hand.kind, hand.up) == ("hand", True)  # type: ignore[attr-defined]
    # Pointing past the board does nothing; looking away from it hides board and ray.
    away = look(np.array([0.25, 0.8, -0.25]), np.array([3.0, 0.8, -3.0]))
    frame(False, away)
    assert frame(True, away) == [] and board.pointer.board.hover == ""
    h = math.radians(-90) / 2  # turned to the right, away from the left hand
    board.update(
        left, right, seat, questions, False, False, (0, 1.2, 0, 0, math.sin(h), 0, math.cos(h))
    )
    assert board.pointer.board_model is None and board.pointer.ray_origin is None


def test_the_voice_comes_from_the_stage() -> None:
    stage = (0.0, 1.6, -6.0)
    ahead = pose_matrix((0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0))
    left, right = pan_gains(ahead, stage)
    assert abs(left - right) < 1e-6
    h = math.radians(-90) / 2  # turned right: the stage is on the left
    turned = pose_matrix((0.0, 1.2, 0.0, 0.0, math.sin(h), 0.0, math.cos(h)))
    left, right = pan_gains(turned, stage)
    assert left > 0.9 and right < 0.1
    far = pan_gains(pose_matrix((0.0, 1.2, 30.0, 0.0, 0.0, 0.0, 1.0)), stage)
    assert 0.2 < far[0] < left
    pcm = stereo(np.full(4, 1000, np.int16), (left, right)).reshape(-1, 2)
    assert (pcm[:, 0] > pcm[:, 1]).all()


def test_the_headset_shows_the_disclosure_and_words_a_moderator_wrote_as_theirs() -> None:
    """A moderator's words on stage: the headset's panel names them ("Written by the
    moderators", on its own colour) beside the AI disclosure, read back with Tesseract."""
    import os
    import shutil
    import subprocess

    from PIL import Image, ImageOps

    from townhall.plugin.playback import StagePlayer
    from townhall.protocol import ClockSync
    from townhall.protocol.messages import StageStart

    from .browser import artifact

    disclosure = "I'm an AI clone of Dana Reyes, not Dana herself."
    player = StagePlayer(ClockSync())  # no sample yet
    player.stage_event(
        StageStart(1, 4, 2, "Layoffs?", "moderator", [], "en", disclosure, -1, 1_000_000)
    )
    frame = player.frame(0.0)  # before the clock's first sample: the stage as announced
    assert (frame.label, frame.disclosure) == ("moderator", disclosure)
    img = panels.draw_stage_panel(
        panels.StageText(frame.disclosure, frame.label, "We will share the plan", "Layoffs?")
    )
    name, colour = panels.label_text("moderator")
    assert name == "Written by the moderators"
    assert colour not in {panels.label_text(k)[1] for k in ("approved", "escalated", "generated")}
    chip = np.all(img[..., :3] == colour, axis=-1)
    assert chip.sum() > 2000, "no label chip in the label's colour"
    Image.fromarray(img).save(artifact("xr-stage-moderator.png"))
    exe = shutil.which("tesseract")
    assert exe, "tesseract is missing: apt-get install tesseract-ocr"
    grey = Image.fromarray(np.ascontiguousarray(img[..., :3])).convert("L")
    read = ""
    for k, variant in enumerate((grey, ImageOps.invert(grey))):
        path = artifact(f"xr-stage-moderator-ocr-{k}.png")
        variant.resize((grey.width * 2, grey.height * 2)).save(path)
        run = subprocess.run(  # one thread: Tesseract's idle OpenMP threads spin (test_xr_render)
            [exe, str(path), "-", "--psm", "6"], capture_output=True, text=True,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )  # fmt: skip
        read += run.stdout
    flat = " ".join(read.split())
    assert "Written by the moderators" in flat, flat
    assert "clone of Dana Reyes, not Dana herself" in flat, flat  # OCR reads "AI" as "Al"
