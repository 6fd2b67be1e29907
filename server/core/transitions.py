"""Explicit state machines: a table of legal moves, and one function that makes a move.

After h11's ``_state.py``: each machine is a dict ``{state: {event: next_state}}``; a move
not in the table raises instead of happening, so an impossible sequence (voting on an
answered question, connecting a mic that was never offered) is refused where it is
attempted, with a reason, and never leaves half-changed state behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from townhall.protocol.errors import ErrorCode, Refused

S = TypeVar("S", bound=str)
E = TypeVar("E", bound=str)


class IllegalTransition(Refused):
    """``event`` is not a legal move from ``state`` in this machine."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(ErrorCode.NOT_ALLOWED, f"{machine} is {state}: cannot {event}")
        self.machine = machine
        self.state = state
        self.event = event


def move(table: Mapping[S, Mapping[E, S]], machine: str, state: S, event: E) -> S:
    """The state after ``event`` from ``state``; raises IllegalTransition if there is none."""
    try:
        return table[state][event]
    except KeyError:
        raise IllegalTransition(machine, state, event) from None
