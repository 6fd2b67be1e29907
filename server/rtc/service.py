"""The live mic's moving parts: one WebRTC peer, relay and transcription per open mic.

The room authority decides (who has the mic, when it ends) and asks for a mic with
``StartMic`` and ``EndMic``; this shell carries them out and reports back what only it
can see: the peer's answer or why the offer was unusable, the peer's connection state,
and at the end what was said (``MicEvents``). The speaker's voice goes out as stage
packets through ``broadcast`` as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from townhall.protocol.limits import MAX_SDP_CHARS, clip
from townhall.protocol.messages import StagePacket
from townhall.server.core.effects import EndMic, StartMic
from townhall.server.ops.config import Settings
from townhall.server.rtc.peer import BadOffer, MicPeer
from townhall.server.rtc.policy import NetworkPolicy
from townhall.server.rtc.relay import LiveRelay, Phrase, caption_words
from townhall.server.rtc.transcribe import Transcriber

log = logging.getLogger("townhall.rtc")


class MicEvents(Protocol):
    """Where a mic's outcomes go (the room host, which passes them to the authority)."""

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None: ...

    def mic_refused(self, slot: int, generation: int, conn: int, ref: int, reason: str) -> None: ...

    def mic_state(self, slot: int, generation: int, state: str) -> None: ...

    def mic_transcript(self, slot: int, text: str) -> None: ...


@dataclass
class _Open:
    """An open mic's moving parts."""

    slot: int
    generation: int
    peer: MicPeer | None = None
    relay: LiveRelay | None = None
    phrases: list[asyncio.Task[str]] = field(default_factory=list)


class MicStation:
    """Runs the peers of a room's open mics."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], int],
        broadcast: Callable[[StagePacket], None],
        events: MicEvents,
    ) -> None:
        s = settings.rtc
        self.settings = s
        self.clock = clock
        self.broadcast = broadcast
        self.events = events
        self.policy = NetworkPolicy.from_settings(s)
        self.transcriber: Transcriber | None = None
        if s.transcription == "openai":
            clone = settings.clone
            key = s.transcription_api_key or clone.openai_api_key
            self.transcriber = Transcriber(
                s.transcription_base_url or clone.openai_base_url,
                key or os.environ.get("OPENAI_API_KEY", ""),
                s.transcription_model,
            )
        self.open: dict[int, _Open] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ effects

    def start(self, effect: StartMic) -> None:
        """Answer the attendee's offer (a peer needs the event loop: one task per mic)."""
        entry = _Open(effect.slot, effect.generation)
        self.open[effect.slot] = entry
        entry.relay = LiveRelay(
            effect.slot,
            self.clock,
            self.broadcast,
            lambda phrase: self._phrase(entry, phrase),
            self.settings.vad_threshold_db,
        )
        entry.peer = MicPeer(
            self.policy,
            entry.relay.push,
            lambda state: self.events.mic_state(effect.slot, effect.generation, state),
        )
        self._spawn(self._accept(entry, effect))

    async def _accept(self, entry: _Open, effect: StartMic) -> None:
        assert entry.peer is not None
        try:
            answer = await entry.peer.accept(effect.sdp)
        except BadOffer as exc:
            self.events.mic_refused(effect.slot, effect.generation, effect.conn, effect.ref,
                                    str(exc))  # fmt: skip
            return
        self.events.mic_answered(
            effect.slot, effect.generation, effect.conn, effect.ref, clip(answer, MAX_SDP_CHARS)
        )
        log.info("mic answered", extra={"slot": effect.slot})

    def end(self, effect: EndMic) -> None:
        """Close the peer; then report what was said."""
        log.info("mic ended", extra={"slot": effect.slot, "reason": effect.reason})
        entry = self.open.get(effect.slot)
        if entry is None or entry.generation != effect.generation:
            return
        del self.open[effect.slot]
        self._spawn(self._close(entry, effect.submit))

    async def _close(self, entry: _Open, submit: bool) -> None:
        if entry.relay is not None:
            entry.relay.close()
        if entry.peer is not None:
            await entry.peer.close()
        texts = [t for t in await asyncio.gather(*entry.phrases) if t] if entry.phrases else []
        text = " ".join(texts).strip()
        if submit and text:
            self.events.mic_transcript(entry.slot, text)

    # ------------------------------------------------------------ speech to text

    def _phrase(self, entry: _Open, phrase: Phrase) -> None:
        if self.transcriber is None:
            return
        task = asyncio.get_running_loop().create_task(self._transcribe(entry, phrase))
        entry.phrases.append(task)

    async def _transcribe(self, entry: _Open, phrase: Phrase) -> str:
        assert self.transcriber is not None
        try:
            text = await self.transcriber.transcribe(phrase.pcm16k, 16_000)
        except Exception as exc:
            log.warning("transcription failed", extra={"slot": entry.slot, "error": str(exc)})
            return ""
        if entry.relay is not None and text:
            entry.relay.captions(caption_words(text, phrase.start_us, phrase.end_us))
        return text

    async def close(self) -> None:
        for entry in list(self.open.values()):
            self.open.pop(entry.slot, None)
            self._spawn(self._close(entry, submit=False))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.transcriber is not None:
            with contextlib.suppress(Exception):
                await self.transcriber.close()
