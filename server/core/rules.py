"""The room's rules as the authority needs them: limits, rates, timeouts, what is on.

A plain value built by the shell from the settings (``app.room_rules``), so the core
reads no configuration file and imports nothing of the shell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from townhall.protocol.messages import Mode, Phase
from townhall.server.core.tickplan import TickPlan


@dataclass(frozen=True)
class RoomRules:
    room_id: str = "main"
    plan: TickPlan = field(default_factory=TickPlan)
    # connections
    max_connections: int = 20000
    allow_anonymous_spectators: bool = True
    join_timeout_s: float = 10.0
    max_frame_bytes: int = 8192
    messages_per_s: float = 60.0
    message_burst: int = 120
    max_rejects: int = 50
    pose_hz: int = 20
    # membership and crowd
    resume_window_s: float = 60.0
    resume_token_ttl_s: float = 21600.0
    event_log: int = 4096
    far_refresh_s: float = 8.0
    # questions
    mode: Mode = "auto"
    review: bool = False
    questions_per_minute: float = 3.0
    votes_per_s: float = 5.0
    guest_questions_per_minute: float = 6.0  # all guests of one address together
    guest_votes_per_question: int = 1  # guests of one address, for one question
    max_questions: int = 10_000  # a room's questions at most (BOARD_FULL beyond)
    # the clone and the live mic
    clone: bool = False
    pause_s: float = 1.5
    interrupted: Literal["requeue", "escalate"] = "requeue"  # an answer a crash cut short
    mics: bool = False
    max_live_mics: int = 1
    accept_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    mic_time_limit_s: float = 120.0
    # the event's lifecycle: where a new room starts, and the scheduled start (unix seconds)
    phase: Phase = "live"
    starts_at: int = 0
