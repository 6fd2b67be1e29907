"""The question board in the headset: what it lists, where it floats, what the pointer hits.

No OpenXR calls and no drawing: ``BoardController.update()`` takes the tracked controllers (seat
frame), the seat's transform and the room's questions, places the board above the left
controller, casts the right controller's ray (its -Z) and, on a trigger press, returns
what to send: a vote (or its withdrawal) or a raised/lowered hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from townhall.protocol.messages import QuestionInfo

from . import panels
from .render import Pointer, pose_matrix

F32 = npt.NDArray[np.float32]
OPEN_STATES = ("submitted", "approved")
LOOK_DEG = 38.0


@dataclass
class Action:
    kind: str  # "vote" or "hand"
    question: int = 0
    up: bool = True


@dataclass
class BoardController:
    pointer: Pointer = field(default_factory=Pointer)
    voted: set[int] = field(default_factory=set)
    can_raise: bool = True
    _was_pressed: bool = False

    def items(self, questions: Mapping[int, QuestionInfo]) -> list[panels.BoardItem]:
        open_qs = [q for q in questions.values() if q.state in OPEN_STATES and not q.merged_into]
        open_qs.sort(key=lambda q: (not q.pinned, q.rank or 1 << 30, -q.votes, q.id))
        return [panels.BoardItem(q.id, q.text, q.votes, q.id in self.voted) for q in open_qs]

    def update(
        self,
        left: tuple[float, ...] | None,
        right: tuple[float, ...] | None,
        seat: F32,
        questions: Mapping[int, QuestionInfo],
        hand_raised: bool,
        pressed: bool,
        head: tuple[float, ...] | None = None,
    ) -> list[Action]:
        """One frame; ``pressed``: the select trigger is held now. The board shows while the
        wearer looks toward it (within ``LOOK_DEG`` of the head's forward), as a watch
        would, and the pointer's ray only while the board shows."""
        p = self.pointer
        p.board.items = self.items(questions)[: panels.ROWS]
        p.board.hand_raised = hand_raised
        p.board.can_raise = self.can_raise
        p.board_model = (
            None if left is None else (seat @ panels.board_pose(left)).astype(np.float32)
        )
        if p.board_model is not None and head is not None:
            h = seat @ pose_matrix(head)
            to_board = p.board_model[:3, 3] - h[:3, 3]
            cos = float(-h[:3, 2] @ to_board) / max(1e-6, float(np.linalg.norm(to_board)))
            if cos < np.cos(np.radians(LOOK_DEG)):
                p.board_model = None
        p.ray_origin = p.ray_dir = None
        p.board.hover = ""
        if right is not None and p.board_model is not None:
            grip = seat @ pose_matrix(right)
            p.ray_origin = grip[:3, 3].astype(np.float32)
            p.ray_dir = (-grip[:3, 2]).astype(np.float32)
            p.ray_length = 3.0
            if p.board_model is not None:
                hit = panels.ray_hit(
                    p.board_model.astype(np.float64),
                    p.ray_origin.astype(np.float64),
                    p.ray_dir.astype(np.float64),
                )
                if hit is not None:
                    p.ray_length = hit[2]
                    p.board.hover = panels.button_at(p.board, hit[0], hit[1])
        actions: list[Action] = []
        if pressed and not self._was_pressed and p.board.hover:
            key = p.board.hover
            if key == "hand":
                actions.append(Action("hand", up=not hand_raised))
            elif key.startswith("vote:"):
                qid = int(key.split(":", 1)[1])
                up = qid not in self.voted
                (self.voted.add if up else self.voted.discard)(qid)
                actions.append(Action("vote", qid, up))
        self._was_pressed = pressed
        return actions
