"""The clone's turn: one question in, an async stream of what it says out.

For a question the brain streams sentences (``Brain``); each is voiced (``Voice``),
encoded to Opus once and animated, and comes out as ``Said`` then ``Voiced`` segments
with the media time each is meant for: one stage lead from now, right after the
previous sentence. The room authority places them on the stage timeline and its tick
ships what is due, so the turn itself never sends anything and there is one clock and
one scheduler. In review mode the turn first reports the whole draft (``Drafted``) and
waits for the moderator's decision (``Turn.review``); an edit is spoken under its
author's label (``moderator`` or ``leader``), never the draft's. The first answer of the
session, and the first after a pause, opens with the spoken AI disclosure
(``DisclosureSchedule``). ``Turns`` runs the current turn for the shell and hands its
events to a sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from townhall.protocol.messages import HumanLabel, ReviewDecision
from townhall.server.clone.brain.answer import AnswerPart, Brain
from townhall.server.clone.disclosure import DisclosureSchedule
from townhall.server.clone.speech import Utterance
from townhall.server.clone.voice.opus import OpusFrame
from townhall.server.core.counters import Counters
from townhall.server.core.effects import StartTurn
from townhall.server.core.stage import OPUS_FRAME_US, Segment
from townhall.server.core.turns import Drafted, Finished, Said, TurnEvent, Voiced

log = logging.getLogger("townhall.turn")

DISCLOSURE_SOURCE = "disclosure"  # the source of sentences from the persona's [disclosure]
HEAD_S = 0.3  # of the first sentence encoded and reported before the rest is encoded


class VoiceLike(Protocol):
    async def synthesize(self, text: str, language: str) -> Utterance: ...


class AnimatorLike(Protocol):
    def frames_for(
        self,
        utterance: Utterance | None,
        start_media_s: float,
        duration_s: float | None = None,
        gaze_target: tuple[float, float, float] | None = None,
    ) -> list[tuple[float, bytes]]: ...


class EncoderLike(Protocol):
    def feed(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> list[OpusFrame]: ...
    def flush(self) -> list[OpusFrame]: ...


@dataclass
class Clone:
    """The parts a turn needs: how to answer, speak and move, and what to disclose."""

    brain: Brain
    voice: VoiceLike
    animator: AnimatorLike
    encoder_factory: Callable[[], EncoderLike]
    disclosure: Callable[[str], str]
    counters: Counters
    clock: Callable[[], int]  # the room's media clock, microseconds
    lead_us: int  # new speech goes on the media clock this far ahead (the tick plan's)
    schedule: DisclosureSchedule = field(default_factory=DisclosureSchedule)


class Turn:
    """One answer as a stream of events; ``review`` answers a draft in review mode."""

    def __init__(self, clone: Clone, start: StartTurn) -> None:
        self.clone = clone
        self.start = start
        self._decision: asyncio.Future[tuple[ReviewDecision, str, HumanLabel]] | None = None
        self._cursor_us = 0  # where the next segment may start

    def review(self, decision: ReviewDecision, text: str, author: HumanLabel = "moderator") -> None:
        if self._decision is not None and not self._decision.done():
            self._decision.set_result((decision, text, author))

    async def events(self) -> AsyncIterator[TurnEvent]:
        clone, question = self.clone, self.start.question
        taken = time.perf_counter()
        try:
            parts: AsyncIterator[AnswerPart]
            if self.start.script:  # the leader's own words, read in the clone's voice
                lang = question.language or "en"
                parts = _iterate(
                    [AnswerPart(s, "leader", (), lang) for s in split_sentences(self.start.script)]
                )
            else:
                parts = clone.brain.stream(question.text, language=question.language or None)
            if self.start.review and not self.start.script:
                collected = [part async for part in parts]
                yield self._draft(collected)
                self._decision = asyncio.get_running_loop().create_future()
                decision, edited, author = await self._decision
                if decision == "skip":
                    yield Finished("skipped")
                    return
                if decision == "edit":
                    collected = _edited(edited, collected, question.language, author)
                parts = _iterate(collected)
            parts = self._disclosed(parts)
            encoder = clone.encoder_factory()
            first = True
            async for part in parts:
                if first:
                    clone.counters.observe("brain_first_sentence_s", time.perf_counter() - taken)
                voiced_at = time.perf_counter()
                utterance = await clone.voice.synthesize(part.text, part.language)
                clone.counters.observe("voice_s", time.perf_counter() - voiced_at)
                yield Said(
                    part.text,
                    part.label,
                    part.sources,
                    part.language,
                    clone.disclosure(part.language),
                )
                async for event in self._voice(part, utterance, encoder, head=first):
                    yield event
                first = False
        except Exception:
            log.exception("answer failed", extra={"question": question.id})
            yield Finished("failed")
            return
        yield Finished("done")

    async def _disclosed(self, parts: AsyncIterator[AnswerPart]) -> AsyncIterator[AnswerPart]:
        """The answer, opened with the spoken disclosure when the schedule says it is due.

        The disclosure is said in the answer's language under the label and sources of the
        sentence it opens, so the answer keeps its one label; an answer about the clone
        opens with the disclosure already (its first sentence's source is ``disclosure``).
        """
        clone, first = self.clone, True
        async for part in parts:
            if first:
                first = False
                starts_us = max(self._cursor_us, clone.clock() + clone.lead_us)
                if DISCLOSURE_SOURCE not in part.sources and clone.schedule.due(starts_us):
                    text = clone.disclosure(part.language)
                    yield AnswerPart(text, part.label, part.sources, part.language)
            yield part

    def _draft(self, collected: list[AnswerPart]) -> Drafted:
        language = collected[0].language if collected else (self.start.question.language or "en")
        return Drafted(
            " ".join(p.text for p in collected),
            collected[0].label if collected else "escalated",
            tuple(sorted({s for p in collected for s in p.sources})),
            language,
        )

    async def _voice(
        self, part: AnswerPart, utterance: Utterance, encoder: EncoderLike, head: bool
    ) -> AsyncIterator[Voiced]:
        """The sentence as segments on the media clock, the head first when it opens the answer.

        The head (``HEAD_S``) is its own segment so the first packet can be shipped before
        the rest of the sentence is encoded. Animation and Opus encoding run in a worker
        thread (PyAV releases the GIL): on the event loop they made the room's tick late by
        tens of milliseconds a sentence.
        """
        clone = self.clone
        start_us = self._next_start(clone.clock() + clone.lead_us)
        anim = await asyncio.to_thread(
            clone.animator.frames_for,
            utterance,
            start_us / 1e6,
            utterance.duration_s,
            self.start.question.gaze,
        )
        words = [(w.start_s, w.duration_s, w.text) for w in utterance.words]
        if words:  # the sentence's last word carries its end mark: captions read as sentences
            at, dur, last = words[-1]
            words[-1] = (at, dur, last + sentence_end(part.text))
        cut = int(utterance.sample_rate * HEAD_S) if head else 0
        pieces = [utterance.pcm[:cut], utterance.pcm[cut:]] if cut else [utterance.pcm]
        offset_s = 0.0
        for i, piece in enumerate(pieces):
            frames = await asyncio.to_thread(encoder.feed, piece, utterance.sample_rate)
            if i == len(pieces) - 1:
                frames += await asyncio.to_thread(encoder.flush)
            lo, hi = offset_s, offset_s + len(frames) * OPUS_FRAME_US / 1e6
            at_us = start_us + round(lo * 1e6)
            segment = Segment(
                part.label,
                [f.data for f in frames],
                [(t - at_us / 1e6, f) for t, f in anim if lo <= t - start_us / 1e6 < hi],
                [(a - lo, d, w) for a, d, w in words if lo <= a < hi],
            )
            self._cursor_us = at_us + segment.duration_us
            clone.schedule.spoke_until(self._cursor_us)
            offset_s = hi
            yield Voiced(segment, at_us)

    def _next_start(self, not_before_us: int) -> int:
        """After the previous sentence, on the answer's 20 ms grid (as the timeline places it)."""
        if not self._cursor_us:
            self._cursor_us = not_before_us
            return not_before_us
        start = max(self._cursor_us, not_before_us)
        steps = -(-(start - self._cursor_us) // OPUS_FRAME_US)
        return self._cursor_us + steps * OPUS_FRAME_US


class Turns:
    """Runs the current turn for the shell: its events go to ``sink`` as they come."""

    def __init__(self, clone: Clone, sink: Callable[[int, TurnEvent], None]) -> None:
        self.clone = clone
        self.sink = sink
        self._turns: dict[int, tuple[Turn, asyncio.Task[None]]] = {}

    def start(self, start: StartTurn) -> None:
        turn = Turn(self.clone, start)
        task = asyncio.get_running_loop().create_task(self._run(turn), name="clone-turn")
        self._turns[start.answer_id] = (turn, task)

    async def _run(self, turn: Turn) -> None:
        try:
            async for event in turn.events():
                self.sink(turn.start.answer_id, event)
        finally:
            self._turns.pop(turn.start.answer_id, None)

    def stop(self, answer_id: int) -> None:
        entry = self._turns.pop(answer_id, None)
        if entry is not None:
            entry[1].cancel()
        # Silence starts now, not where the planned speech would have ended (the turn may
        # have voiced its whole answer ahead and be over already).
        self.clone.schedule.cut(self.clone.clock())

    def review(
        self, answer_id: int, decision: ReviewDecision, text: str, author: HumanLabel = "moderator"
    ) -> None:
        entry = self._turns.get(answer_id)
        if entry is not None:
            entry[0].review(decision, text, author)

    async def close(self) -> None:
        tasks = [task for _, task in self._turns.values()]
        self._turns.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _edited(
    text: str, drafted: list[AnswerPart], language: str, author: HumanLabel
) -> list[AnswerPart]:
    """A person's edit, sentence by sentence, under the author's own label and no sources:
    the words are theirs, not the leader's approved statements nor the clone's."""
    lang = drafted[0].language if drafted else (language or "en")
    return [AnswerPart(s, author, (), lang) for s in split_sentences(text)]


async def _iterate(items: list[AnswerPart]) -> AsyncIterator[AnswerPart]:
    for item in items:
        yield item


_END = re.compile(r"[.!?…。]+[\"'”»)\]]*\s*$")


def sentence_end(text: str) -> str:
    """The sentence's closing punctuation ("." if it has none): caption words carry none."""
    found = _END.search(text)
    return found.group().strip() if found else "."


def split_sentences(text: str) -> list[str]:
    """Split an edited answer into sentences to voice one by one."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?…])\s+", text.strip())]
    return [p for p in parts if p]
