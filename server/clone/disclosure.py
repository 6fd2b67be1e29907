"""When the clone says aloud that it is an AI: before its first answer, and again after a pause.

The disclosure on screen is not enough: people listen to a voice that sounds like their
leader, some of them without looking, and some arrive late. So the clone says it, in the
answer's language, before the first answer of the session and before the first answer
after it has been silent for ``pause_us`` of the media clock (a live mic, a break, a quiet
spell). An answer that is itself about the clone already opens with the disclosure.
"""

from __future__ import annotations

DEFAULT_PAUSE_S = 180.0  # three minutes of silence: the hall may have changed since


class DisclosureSchedule:
    """Remembers when the clone last spoke, on the media clock, to say when it must disclose."""

    def __init__(self, pause_us: int = round(DEFAULT_PAUSE_S * 1e6)) -> None:
        if pause_us < 0:
            raise ValueError(f"pause must be >= 0 microseconds, got {pause_us}")
        self.pause_us = pause_us
        self._spoke_until_us: int | None = None  # None: nothing said yet this session

    def due(self, starts_us: int) -> bool:
        """Must an answer starting at ``starts_us`` open with the disclosure?"""
        if self._spoke_until_us is None:
            return True
        return starts_us - self._spoke_until_us >= self.pause_us

    def spoke_until(self, end_us: int) -> None:
        """The clone's speech runs until ``end_us``."""
        if self._spoke_until_us is None or end_us > self._spoke_until_us:
            self._spoke_until_us = end_us

    def cut(self, at_us: int) -> None:
        """The speech was stopped at ``at_us``: what was planned after it was never heard."""
        if self._spoke_until_us is not None and at_us < self._spoke_until_us:
            self._spoke_until_us = at_us
