"""The authority's side of a media node (``rtc.media = "bus"``): mics run elsewhere.

The room host hands this the same ``StartMic``/``EndMic`` it would hand a local
``MicStation``; this asks a media node over NATS (``media_wire``) and reports back to the
room what the node says, checked like client input. Faults end the mic with a reason,
never a hang: no node subscribed (NATS says so at once), no answer within
``rtc.media_timeout_s``, or a node that stops beating while it holds a mic (killed, cut
off). The voice the node relays arrives on the room's ``live`` subject: the edges take it
from there; this passes it to the authority's own clients (``local_live``), after checking
it is a stage packet of a mic this room opened on a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from townhall.protocol import codec
from townhall.protocol.limits import MAX_SDP_CHARS, clip
from townhall.protocol.messages import StagePacket
from townhall.server.core.effects import EndMic, StartMic
from townhall.server.fanout import seam as ipc
from townhall.server.rtc import media_wire as wire

log = logging.getLogger("townhall.rtc.remote")

CLOSED_KEEP_S = 120.0  # a closed mic's transcript is still taken this long


class RemoteEvents(Protocol):
    """The room host's entry points for a mic's outcomes."""

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None: ...
    def mic_refused(self, slot: int, generation: int, conn: int, ref: int, reason: str) -> None: ...
    def mic_state(self, slot: int, generation: int, state: str) -> None: ...
    def mic_transcript(self, slot: int, text: str) -> None: ...
    def mic_lost(self, slot: int, generation: int, reason: str, ref: int = 0) -> None: ...


@dataclass
class _Remote:
    """A mic this room asked a node to open."""

    slot: int
    generation: int
    conn: int
    ref: int
    node: str = ""  # the node that answered ('' : no answer yet)
    last_heard: float = 0.0


class RemoteMics:
    """Runs the room's mics on media nodes over NATS; same interface as ``MicStation``."""

    def __init__(
        self,
        nc: NatsClient,
        room: str,
        events: RemoteEvents,
        now_us: Callable[[], int],
        local_live: Callable[[bytes, StagePacket], None],
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        held: Callable[[], bool] = lambda: True,
    ) -> None:
        self.nc = nc
        self.subjects = wire.MediaSubjects.of(room)
        self.events = events
        self.now_us = now_us
        self.local_live = local_live
        self.timeout_s = timeout_s
        self.clock = clock
        # Whether this authority still holds the room's lease: a deposed one asks nodes for
        # nothing (its seats and generations are the new authority's now).
        self.held = held
        self.open: dict[int, _Remote] = {}
        self.closed: dict[tuple[int, int], float] = {}  # (slot, generation) -> when
        self.dropped = 0
        self._reply_dec = wire.decoder(wire.Reply)
        self._event_dec = wire.decoder(wire.FromNode)
        self._live_dec: msgspec.msgpack.Decoder[ipc.Seam] = msgspec.msgpack.Decoder(ipc.Broadcast)
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._later: set[asyncio.Task[None]] = set()  # hang-ups waiting for a MicRelease

    async def subscribe(self) -> None:
        """Listen to the nodes' reports and the relayed voice (before any mic opens)."""
        self._subs.append(await self.nc.subscribe(self.subjects.events, cb=self._on_event))
        self._subs.append(await self.nc.subscribe(self.subjects.live, cb=self._on_live))
        await self.nc.flush()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for task in [*self._later, *([self._watcher] if self._watcher else [])]:
            task.cancel()
        for entry in list(self.open.values()):
            self._publish_close(entry.slot, entry.generation, submit=False)
        self.open.clear()
        with contextlib.suppress(TimeoutError):  # the closes go out; a pending open ends
            await asyncio.wait_for(
                asyncio.gather(*self._tasks, return_exceptions=True), self.timeout_s
            )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ effects

    def start(self, effect: StartMic) -> None:
        """Ask a media node for the peer; its answer goes to the attendee."""
        entry = _Remote(effect.slot, effect.generation, effect.conn, effect.ref)
        self.open[effect.slot] = entry
        if self.held():  # checked now, and again when the request goes out
            self._spawn(self._open(entry, effect.sdp))

    async def _open(self, entry: _Remote, sdp: str) -> None:
        if not self.held():
            return
        request = wire.MediaOpen(entry.slot, entry.generation, sdp, max(0, self.now_us()))
        try:
            msg = await self.nc.request(
                self.subjects.open, wire.encode(request), timeout=self.timeout_s
            )
        except NoRespondersError:
            self._lost(entry, "no media node is running for this room")
            return
        except (NatsTimeout, TimeoutError):
            self._lost(entry, f"no media node answered within {self.timeout_s:g} s")
            return
        except Exception as exc:  # the bus is down: the same for the attendee
            self._lost(entry, f"the media node could not be asked: {type(exc).__name__}")
            return
        try:
            reply = wire.decode(msg.data, self._reply_dec)
        except ValueError as exc:
            self.dropped += 1
            log.warning("media reply dropped", extra={"reason": str(exc)})
            self._lost(entry, "the media node's answer was unusable")
            return
        if self.open.get(entry.slot) is not entry:  # ended meanwhile: the node lets it go
            self._publish_close(entry.slot, entry.generation, submit=False)
            return
        if isinstance(reply, wire.MediaRefused):
            self.events.mic_refused(entry.slot, entry.generation, entry.conn, entry.ref,
                                    reply.reason)  # fmt: skip
            return
        assert isinstance(reply, wire.MediaAnswer)
        entry.node = reply.node
        entry.last_heard = self.clock()
        log.info("mic answered by a media node", extra={"slot": entry.slot, "node": reply.node})
        sdp_out = clip(reply.sdp, MAX_SDP_CHARS)
        self.events.mic_answered(entry.slot, entry.generation, entry.conn, entry.ref, sdp_out)

    def _lost(self, entry: _Remote, reason: str) -> None:
        log.error("mic lost", extra={"slot": entry.slot, "reason": reason})
        if self.open.get(entry.slot) is entry:
            self.events.mic_lost(entry.slot, entry.generation, reason, entry.ref)

    def end(self, effect: EndMic) -> None:
        """Tell the nodes to close the peer (the holder reports what was said)."""
        entry = self.open.get(effect.slot)
        if entry is None or entry.generation != effect.generation:
            return
        del self.open[effect.slot]
        now = self.clock()
        self.closed[(entry.slot, entry.generation)] = now
        for key, when in list(self.closed.items()):
            if now - when > CLOSED_KEEP_S:
                del self.closed[key]
        self._publish_close(entry.slot, entry.generation, effect.submit)

    def _publish_close(self, slot: int, generation: int, submit: bool) -> None:
        if not self.held():
            return
        data = wire.encode(wire.MediaClose(slot, generation, submit))
        self._spawn(self._publish(self.subjects.close, data))

    async def _publish(self, subject: str, data: bytes) -> None:
        if not self.held():
            return
        try:
            await self.nc.publish(subject, data)
        except Exception as exc:
            log.warning("media publish failed", extra={"error": str(exc)})

    # ------------------------------------------------------------ from nodes

    async def _on_event(self, msg: Msg) -> None:
        try:
            message = wire.decode(msg.data, self._event_dec)
        except ValueError as exc:
            self._drop(str(exc))
            return
        try:
            self._event(message)
        except Exception:  # a bug here must not take the room down with it
            log.exception("media event failed")

    def _event(self, message: wire.MediaMessage) -> None:
        if isinstance(message, wire.MediaBeat):
            now = self.clock()
            held = set(message.mics)
            for entry in self.open.values():
                if entry.node == message.node and (entry.slot, entry.generation) in held:
                    entry.last_heard = now
            return
        if isinstance(message, wire.MediaState):
            found = self.open.get(message.slot)
            if found is None or found.generation != message.generation:
                return  # ended meanwhile
            if found.node and found.node != message.node:
                self._drop(f"state for slot {message.slot} from {message.node}, not its node")
                return
            found.last_heard = self.clock()
            if message.state == "closed":
                # The attendee hung up. Their MicRelease comes the long way (through an edge
                # and the bus), often after the node saw the peer close: it gets the time
                # to end the mic as released; a hang-up without one ends it as failed.
                later = asyncio.get_running_loop().create_task(self._closed_later(found))
                self._later.add(later)
                later.add_done_callback(self._later.discard)
                return
            self.events.mic_state(message.slot, message.generation, message.state)
        elif isinstance(message, wire.MediaTranscript):
            if (message.slot, message.generation) not in self.closed:
                self._drop(f"transcript for a mic not closed here: slot {message.slot}")
                return
            del self.closed[(message.slot, message.generation)]
            self.events.mic_transcript(message.slot, message.text)

    async def _closed_later(self, entry: _Remote) -> None:
        await asyncio.sleep(self.timeout_s)
        if self.open.get(entry.slot) is entry:
            self.events.mic_state(entry.slot, entry.generation, "closed")

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        log.warning("media message dropped", extra={"reason": reason[:200]})

    async def _on_live(self, msg: Msg) -> None:
        """The relayed voice, for this process's own clients (edges take it themselves)."""
        if not self.open:
            return  # nothing of ours: the authority's own broadcasts come back here too
        try:
            broadcast = ipc.unpack_one(msg.data, self._live_dec)
            assert isinstance(broadcast, ipc.Broadcast)
            packet = codec.decode_server(broadcast.payload)
        except Exception:
            return  # not a voice packet (the room's own live broadcasts are not ours)
        if not isinstance(packet, StagePacket) or packet.speaker_slot < 0:
            return
        if packet.speaker_slot not in self.open:  # a forgery, or one of an ended mic
            self._drop(f"voice for seat {packet.speaker_slot}, which has no mic here")
            return
        self.local_live(broadcast.payload, packet)

    async def _watch(self) -> None:
        """A node that holds a mic and falls silent has died: the mic ends, with a reason."""
        while True:
            await asyncio.sleep(min(1.0, self.timeout_s / 4))
            now = self.clock()
            for entry in list(self.open.values()):
                if entry.node and now - entry.last_heard > self.timeout_s:
                    reason = f"the media node hosting this mic went silent ({entry.node})"
                    entry.node = ""  # reported once
                    self._lost(entry, reason)
