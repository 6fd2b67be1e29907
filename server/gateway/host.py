"""The room host: runs one RoomAuthority on the event loop and carries out its effects.

The asyncio shell around the sans-I/O core, as python-websockets' ``asyncio/connection.py``
is around its ``Protocol``: each call feeds the authority one event (a client frame, a
tick, a finished commit, a turn's event, a mic's outcome) with the time, then does what
``effects()`` returns, in order. Nothing here decides anything; nothing the authority
does waits: a Persist is handed to the store and its continuation runs when the commit
lands (a future's callback, not a task per request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from townhall.protocol.messages import HumanLabel, ReviewDecision, Role, StagePacket
from townhall.server.core.authority import RoomAuthority
from townhall.server.core.effects import (
    Admit,
    Broadcast,
    Close,
    Effect,
    EndMic,
    Escalated,
    Log,
    Persist,
    ReviewTurn,
    Send,
    Ship,
    StartMic,
    StartTurn,
    StatementsChanged,
    StopTurn,
)
from townhall.server.core.turns import TurnEvent
from townhall.server.store.base import StoreStopped
from townhall.server.store.records import EscalationRecorded, Record, StatementVersion

log = logging.getLogger("townhall.room")


class Edges(Protocol):
    """The fan-out: writes to connections, here or on the edges that hold them."""

    def send(self, conn: int, payloads: Sequence[bytes]) -> None: ...
    def close(self, conn: int, code: int, reason: str) -> None: ...
    def admit(self, effect: Admit) -> None: ...
    def ship(self, ship: Ship, now: float) -> None: ...
    def broadcast(self, payload: bytes, roles: frozenset[Role] | None) -> None: ...


class Records(Protocol):
    def write(self, records: Sequence[Record]) -> asyncio.Future[None]: ...


class ShipRecorder(Protocol):
    """The event's recording (gateway/recorder.py): what was shipped, as shipped."""

    def ship(self, ship: Ship) -> None: ...
    def live(self, now_us: int, payload: bytes) -> None: ...


class TurnRunner(Protocol):
    def start(self, start: StartTurn) -> None: ...
    def stop(self, answer_id: int) -> None: ...
    def review(
        self, answer_id: int, decision: ReviewDecision, text: str, author: HumanLabel
    ) -> None: ...


class MicRunner(Protocol):
    def start(self, effect: StartMic) -> None: ...
    def end(self, effect: EndMic) -> None: ...


class RoomHost:
    """Feeds the authority and does what it says."""

    def __init__(
        self,
        authority: RoomAuthority,
        edges: Edges,
        store: Records,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.authority = authority
        self.edges = edges
        self.store = store
        self.clock = clock
        self.turns: TurnRunner | None = None
        self.mics: MicRunner | None = None
        self.recorder: ShipRecorder | None = None
        # /studio: new statement versions for the clone; new escalations for the contact.
        self.on_statements: Callable[[Sequence[StatementVersion]], None] | None = None
        self.on_escalated: Callable[[Escalated], None] | None = None
        self._writes: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------ events in

    def connect(self, conn: int, address: str = "", guest: str = "") -> None:
        self.authority.connect(conn, self.clock(), address, guest)

    def receive(self, conn: int, data: bytes | str) -> None:
        self.authority.receive_data(conn, data, self.clock())
        self.run()

    def disconnect(self, conn: int) -> None:
        self.authority.disconnect(conn, self.clock())
        self.run()

    def tick(self) -> None:
        self.authority.tick(self.clock())
        self.run()

    def poses(self, slots: bytes, flags: bytes, records: bytes, bytes_in: int) -> None:
        self.authority.poses(slots, flags, records, bytes_in)

    def turn_event(self, answer_id: int, event: TurnEvent) -> None:
        self.authority.turn_event(answer_id, event, self.clock())
        self.run()

    def escalated(self, record: EscalationRecorded) -> None:
        """The clone's escalation is stored: to the leader's inbox."""
        self.authority.escalated(record, self.clock())
        self.run()

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None:
        self.authority.mic_answered(slot, generation, conn, ref, sdp)
        self.run()

    def mic_refused(self, slot: int, generation: int, conn: int, ref: int, reason: str) -> None:
        self.authority.mic_refused(slot, generation, conn, ref, reason, self.clock())
        self.run()

    def mic_state(self, slot: int, generation: int, state: str) -> None:
        self.authority.mic_state(slot, generation, state, self.clock())
        self.run()

    def mic_lost(self, slot: int, generation: int, reason: str, ref: int = 0) -> None:
        self.authority.mic_lost(slot, generation, reason, self.clock(), ref)
        self.run()

    def mic_transcript(self, slot: int, text: str) -> None:
        self.authority.mic_transcript(slot, text, self.clock())
        self.run()

    def broadcast_live(self, packet: StagePacket) -> None:
        """A live attendee's voice: out at once (the next write), no lead."""
        from townhall.protocol import codec

        payload = codec.encode(packet)
        self.edges.broadcast(payload, None)
        if self.recorder is not None:
            self.recorder.live(packet.media_time_us, payload)

    def shutdown(self) -> None:
        self.authority.shutdown()
        self.run()

    async def drain(self) -> None:
        """Wait for every write handed to the store (at shutdown)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    # ------------------------------------------------------------ effects out

    def run(self) -> None:
        """Carry out everything the authority has queued, in order."""
        while effects := self.authority.effects():
            for effect in effects:
                self._do(effect)

    def _do(self, effect: Effect) -> None:
        edges = self.edges
        if isinstance(effect, Send):
            edges.send(effect.conn, effect.payloads)
        elif isinstance(effect, Ship):
            edges.ship(effect, self.clock())
            if self.recorder is not None:
                self.recorder.ship(effect)
        elif isinstance(effect, Persist):
            self._persist(effect)
        elif isinstance(effect, Close):
            edges.close(effect.conn, effect.code, effect.reason)
        elif isinstance(effect, Admit):
            edges.admit(effect)
        elif isinstance(effect, Broadcast):
            edges.broadcast(effect.payload, effect.roles)
        elif isinstance(effect, Log):
            log.log(effect.level, effect.event, extra=effect.fields)
        elif isinstance(effect, StartTurn | StopTurn | ReviewTurn):
            self._turn(effect)
        elif isinstance(effect, StartMic):
            if self.mics is not None:
                self.mics.start(effect)
        elif isinstance(effect, EndMic):
            if self.mics is not None:
                self.mics.end(effect)
        elif isinstance(effect, StatementsChanged):
            if self.on_statements is not None:
                self.on_statements(effect.versions)
        elif isinstance(effect, Escalated):
            if self.on_escalated is not None:
                self.on_escalated(effect)
        else:  # Sequenced and BoardChanged stay inside the core
            raise TypeError(f"no shell action for {type(effect).__name__}")

    def _turn(self, effect: StartTurn | StopTurn | ReviewTurn) -> None:
        turns = self.turns
        if turns is None:
            return
        if isinstance(effect, StartTurn):
            turns.start(effect)
        elif isinstance(effect, StopTurn):
            turns.stop(effect.answer_id)
        else:
            turns.review(effect.answer_id, effect.decision, effect.text, effect.author)

    def _persist(self, effect: Persist) -> None:
        future = self.store.write(effect.records)
        self._writes.add(future)

        def stored(done: asyncio.Future[None]) -> None:
            self._writes.discard(done)
            failed = done.cancelled() or done.exception() is not None
            error = None if done.cancelled() else done.exception()
            if error is not None and not isinstance(error, StoreStopped):  # that one: logged once
                log.error("store write failed", extra={"error": str(error)})
            self.authority.stored(effect, not failed)
            self.run()

        future.add_done_callback(stored)
