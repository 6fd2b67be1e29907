"""The director: takes the next question, has the clone answer it on stage, in sync.

For each approved question: the brain streams sentences; each sentence is voiced,
encoded to Opus once and animated; the stage timeline places it on the media clock
right after the previous one, and the pump sends each 40 ms packet to everyone as
its time comes. The first sentence goes out while later ones are still being
written. A moderator's stop, or review mode, steps in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from townhall.protocol.messages import Draft, StageEnd, StageStart
from townhall.server.clone.speech import Utterance
from townhall.server.core.qa import Question
from townhall.server.core.stage import PACKET_US, Segment, StageTimeline

if TYPE_CHECKING:
    from townhall.server.app import TownhallServer

log = logging.getLogger("townhall.director")

HEAD_HEIGHT_M = 1.2  # where a seated asker's eyes are, above the seat's floor point
HEAD_S = 0.3  # of the first sentence encoded before the first packet goes out


class AnswerPartLike(Protocol):
    text: str
    label: str
    sources: tuple[str, ...]
    language: str


class BrainLike(Protocol):
    def stream(self, question: str, *, language: str | None = None) -> AsyncIterator[Any]: ...


class VoiceLike(Protocol):
    async def synthesize(self, text: str, language: str) -> Utterance: ...


@dataclass
class Rendered:
    """A sentence ready for the timeline."""

    part: Any
    utterance: Utterance
    opus: list[bytes]


class Director:
    """Runs the clone's turns for one room."""

    def __init__(
        self,
        server: TownhallServer,
        brain: BrainLike,
        voice: VoiceLike,
        animator: Any,
        encoder_factory: Callable[[], Any],
        disclosure: Callable[[str], str],
        pause_s: float = 1.5,
    ) -> None:
        self.server = server
        self.brain = brain
        self.voice = voice
        self.animator = animator
        self.encoder_factory = encoder_factory
        self.disclosure = disclosure
        self.pause_s = pause_s
        self.current: StageStart | None = None
        self.question: Question | None = None
        self._answer_task: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._reviews: dict[int, asyncio.Future[tuple[str, str]]] = {}
        self._drafts: dict[int, Draft] = {}
        self.next_answer_id = 1

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="director")

    async def close(self) -> None:
        for task in (self._answer_task, self._loop_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _run(self) -> None:
        qa = self.server.qa
        while True:
            await qa.changed.wait()
            qa.changed.clear()
            while (question := qa.queue.next_question()) is not None:
                rtc = self.server.rtc
                if rtc is not None and rtc.busy:
                    break  # never over a live mic; its end sets qa.changed again
                self._answer_task = asyncio.get_running_loop().create_task(self.answer(question))
                with contextlib.suppress(asyncio.CancelledError):
                    await self._answer_task
                self._answer_task = None
                await asyncio.sleep(self.pause_s)

    def stop(self) -> None:
        """A moderator's stop: cut the current answer cleanly."""
        if self._answer_task is not None:
            self._answer_task.cancel()

    # ------------------------------------------------------------ review

    def awaiting_review(self, answer_id: int) -> bool:
        future = self._reviews.get(answer_id)
        return future is not None and not future.done()

    def review(self, answer_id: int, decision: str, text: str) -> None:
        future = self._reviews.get(answer_id)
        if future is not None and not future.done():
            future.set_result((decision, text))

    def pending_drafts(self) -> list[Draft]:
        """Drafts still waiting for a moderator (sent to moderators who join late)."""
        return list(self._drafts.values())

    # ------------------------------------------------------------ one answer

    async def answer(self, question: Question) -> None:
        srv = self.server
        qa = srv.qa
        answer_id = self.next_answer_id
        self.next_answer_id += 1
        taken = time.perf_counter()
        self.question = question
        await qa.set_state(question, "answering", answer_id)
        metrics = srv.metrics
        spoken: list[str] = []
        labels: list[str] = []
        sources: list[str] = []
        language = question.language or "en"
        outcome = "done"
        timeline: StageTimeline | None = None
        pump: asyncio.Task[None] | None = None
        started_wall = time.time()
        try:
            parts: AsyncIterator[Any] = self.brain.stream(
                question.text, language=question.language or None
            )
            if qa.queue.review:
                parts, decision = await self._review(question, answer_id, parts)
                if decision == "skip":
                    outcome = "skipped"
                    return
            encoder = self.encoder_factory()
            gaze = self._gaze_target(question)
            first_part = True
            async for part in parts:
                if first_part:
                    metrics.observe("brain_first_sentence_s", time.perf_counter() - taken)
                voiced_at = time.perf_counter()
                utterance = await self.voice.synthesize(part.text, part.language)
                metrics.observe("voice_s", time.perf_counter() - voiced_at)
                # New speech goes on the media clock one stage lead from now, so that
                # every client can have each packet before it is due (see _pump).
                now_us = srv.now_us() + self._lead_us()
                if timeline is None:
                    language = part.language
                    timeline = StageTimeline(answer_id, start_us=now_us)
                    self.current = StageStart(
                        srv.room.log.next_seq(),
                        answer_id,
                        question.id,
                        question.text[:500],
                        part.label,
                        list(part.sources)[:32],
                        language,
                        self.disclosure(language)[:512],
                        question.asker_slot,
                        now_us,
                    )
                    srv.room.emit(self.current)
                start_us = timeline.next_start(now_us)
                duration_s = utterance.duration_s
                # Animation and Opus run in a worker thread: on the loop they made the
                # room's tick late by tens of milliseconds a sentence (voice/opus.py).
                anim = await asyncio.to_thread(
                    self.animator.frames_for, utterance, start_us / 1e6, duration_s, gaze
                )
                spoken_words = [(w.start_s, w.duration_s, w.text) for w in utterance.words]
                # Encode the head of the sentence first and put it on the timeline, so the
                # first packet leaves before the rest of the sentence is encoded.
                cut = int(utterance.sample_rate * HEAD_S) if pump is None else 0
                pieces = [utterance.pcm[:cut], utterance.pcm[cut:]] if cut else [utterance.pcm]
                offset_s = 0.0
                for i, piece in enumerate(pieces):
                    frames = await encoder.feed_async(piece, utterance.sample_rate)
                    if i == len(pieces) - 1:
                        frames += await encoder.flush_async()
                    seg_s = len(frames) * 0.02
                    lo, hi = offset_s, offset_s + seg_s
                    segment = Segment(
                        part.label,
                        [f.data for f in frames],
                        [
                            (t - start_us / 1e6 - lo, frame)
                            for t, frame in anim
                            if lo <= t - start_us / 1e6 < hi
                        ],
                        [(a - lo, d, w) for a, d, w in spoken_words if lo <= a < hi],
                    )
                    timeline.append(segment, start_us + round(lo * 1e6))
                    offset_s = hi
                    if pump is None:
                        pump = asyncio.get_running_loop().create_task(self._pump(timeline, taken))
                        await asyncio.sleep(0)  # let the pump send the first packet now
                spoken.append(part.text)
                labels.append(part.label)
                sources.extend(s for s in part.sources if s not in sources)
                first_part = False
            if timeline is not None:
                timeline.closed = True
                if pump is not None:
                    await pump
        except asyncio.CancelledError:
            outcome = "stopped"
            raise
        except Exception:
            outcome = "failed"
            log.exception("answer failed", extra={"question": question.id})
        finally:
            if pump is not None and not pump.done():
                pump.cancel()
            await asyncio.shield(
                self._finish(
                    question, answer_id, outcome, spoken, labels, sources, language, started_wall
                )
            )

    async def _finish(
        self,
        question: Question,
        answer_id: int,
        outcome: str,
        spoken: list[str],
        labels: list[str],
        sources: list[str],
        language: str,
        started_wall: float,
    ) -> None:
        srv = self.server
        label = "escalated" if "escalated" in labels else (labels[0] if labels else "escalated")
        text = " ".join(spoken)[:4000]
        # A failed answer is not retried in a loop: it goes to the human leader instead.
        state = {"skipped": "rejected", "failed": "escalated"}.get(outcome, "answered")
        if outcome == "done" and label == "escalated":
            state = "escalated"
        ops = []
        if outcome == "failed":
            ops.append(
                srv.qa.store.escalation_op(
                    time.time(), question.id, question.text, "answer_failed", language,
                    "the clone could not finish this answer (see the server log)", text,
                )
            )  # fmt: skip
        op = srv.qa.store.answer_op(
            answer_id,
            question.id,
            text,
            label,
            sources,
            language,
            started_wall,
            time.time(),
            outcome,
        )
        await srv.qa.store.write([*ops, op])
        await srv.qa.set_state(question, state, answer_id)
        # Announced once stored: whoever sees StageEnd can rely on the record being there.
        if self.current is not None and self.current.answer == answer_id:
            srv.room.emit(
                StageEnd(srv.room.log.next_seq(), answer_id, outcome, text, label, sources[:32])  # type: ignore[arg-type]
            )
            self.current = None
        self.question = None

    async def _review(
        self, question: Question, answer_id: int, parts: AsyncIterator[Any]
    ) -> tuple[AsyncIterator[Any], str]:
        """Collect the draft, show it to moderators, wait for speak / edit / skip."""
        collected = [part async for part in parts]
        text = " ".join(p.text for p in collected)
        label = collected[0].label if collected else "escalated"
        sources = sorted({s for p in collected for s in p.sources})
        language = collected[0].language if collected else (question.language or "en")
        draft = Draft(
            answer_id, question.id, question.text[:500], text[:4000], label, sources[:32], language
        )
        self._drafts[answer_id] = draft
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self._reviews[answer_id] = future
        self.server.send_to_moderators(draft)
        try:
            decision, edited = await future
        finally:
            self._reviews.pop(answer_id, None)
            self._drafts.pop(answer_id, None)
        if decision == "edit":
            collected = [_Part(s, label, tuple(sources), language) for s in split_sentences(edited)]
        return _iterate(collected), decision

    async def _pump(self, timeline: StageTimeline, taken: float) -> None:
        """Send each packet one stage lead before its media time.

        The clone's speech is rendered ahead and placed on the media clock one lead
        from now, so the first packet leaves at once and every packet leaves a lead
        early: the fan-out's once-a-tick (for spectators, once every few ticks) write
        then delivers it before it is due, and everyone plays it at the same moment.
        """
        srv = self.server
        lead_us = self._lead_us()
        first = True
        while not timeline.done():
            for packet in timeline.due(srv.now_us(), lead_us):
                srv.broadcast_stage(packet)
                if first:
                    srv.metrics.observe("time_to_first_audio_s", time.perf_counter() - taken)
                    first = False
            next_at = timeline.packet_time(timeline.next_index) - lead_us
            await asyncio.sleep(max(0.001, (next_at - srv.now_us()) / 1e6))
        # let the last packet's audio play out before the next answer may start
        await asyncio.sleep((PACKET_US + lead_us) / 1e6)

    def _lead_us(self) -> int:
        """How far ahead of its media time each stage packet is sent.

        Fan-out workers write once a tick (spectators once a spectator period); in one
        process a stage packet is written the moment it is sent, so it needs no lead.
        """
        srv = self.server
        return srv.settings.room.stage_lead_us if srv.workers is not None else 0

    def _gaze_target(self, question: Question) -> tuple[float, float, float] | None:
        srv = self.server
        member = srv.room.members.get(question.asker_slot) if question.asker_slot >= 0 else None
        if member is None or member.seat < 0 or member.identity.user_id != question.asker_id:
            return None
        x, y, z = srv.scene.seats[member.seat].position
        return (x, y + HEAD_HEIGHT_M, z)


@dataclass(frozen=True)
class _Part:
    text: str
    label: str
    sources: tuple[str, ...]
    language: str


async def _iterate(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def split_sentences(text: str) -> list[str]:
    """Split an edited answer into sentences to voice one by one."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?…])\s+", text.strip())]
    return [p for p in parts if p]
