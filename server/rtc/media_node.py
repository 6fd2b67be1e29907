"""A media node (``townhall serve --role media``): the live mics' WebRTC peers, off the room.

It may run on any host the attendees' WebRTC can reach (its ICE policy is ``[rtc]``'s, as in
the authority). For each room it serves (``rtc.media_rooms``) it takes ``MediaOpen``
requests in the NATS queue group ``townhall-media`` (several nodes share the load; each
mic goes to one), runs the same ``MicStation`` the authority runs with ``rtc.media =
"local"``, publishes the relayed voice on the room's ``live`` subject (every edge and the
authority's own clients get it) and reports to the authority on ``media.events``. The
room's media clock comes with each MediaOpen, so the voice is stamped on the room's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from townhall.protocol import codec
from townhall.protocol.messages import StagePacket
from townhall.server.core.effects import EndMic, StartMic
from townhall.server.fanout import bus
from townhall.server.fanout import seam as ipc
from townhall.server.ops.config import Settings
from townhall.server.rtc import media_wire as wire
from townhall.server.rtc.service import MicStation

log = logging.getLogger("townhall.media")

BEAT_S = 1.0


def served_rooms(settings: Settings) -> list[str]:
    """``rtc.media_rooms`` as room ids ('*': every room); empty: ``server.room``."""
    text = settings.rtc.media_rooms.strip() or settings.server.room
    return [r.strip() for r in text.split(",") if r.strip()]


@dataclass
class RoomMedia:
    """One room's mics on this node: its station, the pending answers, its clock."""

    subjects: wire.MediaSubjects
    station: MicStation | None = None
    offset_us: int = 0  # room media time - this node's clock
    replies: dict[tuple[int, int], Msg] = field(default_factory=dict)
    closed: dict[int, int] = field(default_factory=dict)  # slot -> last closed generation


class MediaNode:
    """Hosts live mics for the rooms it serves; the authorities decide who holds them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.id = f"media-{uuid.uuid4().hex[:8]}"
        self.rooms = served_rooms(settings)
        self.media: dict[str, RoomMedia] = {}
        self.nc: NatsClient | None = None
        self.publisher: bus.Publisher | None = None
        self.dropped = 0
        self.stopped = False
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._beat: asyncio.Task[None] | None = None
        self._open_dec = wire.decoder(wire.ToNode)

    async def start(self) -> None:
        for room in self.rooms:
            if room != "*":
                wire.MediaSubjects.of(room)  # a room id no subject can carry: BusError now
        self.nc = nc = await bus.connect(self.settings.bus, f"townhall-{self.id}")
        self.publisher = bus.Publisher(nc)
        for room in self.rooms:  # ready before the first offer (the transcriber's import
            if room != "*":  # takes a second); with *, a room's on its first MediaOpen
                self._room(wire.MediaSubjects(room).open)
        for room in self.rooms:
            token = "*" if room == "*" else room
            self._subs.append(
                await nc.subscribe(f"townhall.{token}.media.open", wire.QUEUE, cb=self._on_open)
            )
            self._subs.append(
                await nc.subscribe(f"townhall.{token}.media.close", cb=self._on_close)
            )
        await nc.flush()
        self._beat = asyncio.get_running_loop().create_task(self._beats(), name="media-beat")

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for media in self.media.values():
            if media.station is not None:
                await media.station.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.close()
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    # ------------------------------------------------------------ from the authority

    def _room(self, subject: str) -> RoomMedia | None:
        room = wire.room_of(subject)
        if not room:
            return None
        media = self.media.get(room)
        if media is None:
            media = self.media[room] = RoomMedia(wire.MediaSubjects(room))
            media.station = MicStation(
                self.settings,
                lambda: self._now_us() + media.offset_us,
                lambda packet: self._voice(media, packet),
                _Events(self, media),
            )
        return media

    def _refuse(self, subject: str, reason: str) -> None:
        self.dropped += 1
        log.warning("media message dropped", extra={"subject": subject, "reason": reason})

    async def _on_open(self, msg: Msg) -> None:
        media = self._room(msg.subject)
        try:
            message = wire.decode(msg.data, self._open_dec)
            if media is None or not isinstance(message, wire.MediaOpen) or not msg.reply:
                raise ValueError("not a MediaOpen request for a room")
        except ValueError as exc:
            self._refuse(msg.subject, str(exc))
            return
        assert media.station is not None
        media.offset_us = message.media_us - self._now_us()
        old = media.station.open.get(message.slot)
        if old is not None:  # a new grant of the same seat: the old peer goes
            media.station.end(EndMic(message.slot, old.generation, "replaced", submit=False))
        media.replies[(message.slot, message.generation)] = msg
        media.station.start(StartMic(message.slot, message.generation, 0, 0, message.sdp))
        log.info("mic opened", extra={"room": media.subjects.room, "slot": message.slot})

    async def _on_close(self, msg: Msg) -> None:
        media = self._room(msg.subject)
        try:
            message = wire.decode(msg.data, self._open_dec)
            if media is None or not isinstance(message, wire.MediaClose):
                raise ValueError("not a MediaClose for a room")
        except ValueError as exc:
            self._refuse(msg.subject, str(exc))
            return
        assert media.station is not None
        entry = media.station.open.get(message.slot)
        if entry is None or entry.generation != message.generation:
            return  # another node's mic, or closed already
        media.closed[message.slot] = message.generation
        media.replies.pop((message.slot, message.generation), None)
        media.station.end(EndMic(message.slot, message.generation, "closed", message.submit))

    # ------------------------------------------------------------ to the room

    def _now_us(self) -> int:
        return time.monotonic_ns() // 1000

    def _voice(self, media: RoomMedia, packet: StagePacket) -> None:
        assert self.publisher is not None
        payload = codec.encode(packet)
        self.publisher.publish(media.subjects.live, ipc.pack(ipc.Broadcast(payload, None)))

    def publish(self, media: RoomMedia, message: wire.MediaMessage) -> None:
        assert self.publisher is not None
        self.publisher.publish(media.subjects.events, wire.encode(message))

    def reply(self, media: RoomMedia, slot: int, generation: int, message: wire.Reply) -> None:
        msg = media.replies.pop((slot, generation), None)
        if msg is None:
            return
        task = asyncio.get_running_loop().create_task(self._respond(msg, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, msg: Msg, message: wire.Reply) -> None:
        try:
            await msg.respond(wire.encode(message))
        except Exception as exc:  # the authority hears nothing: its request times out
            log.warning("media reply failed", extra={"error": str(exc)})

    def orphan_check(self, media: RoomMedia, slot: int, generation: int) -> None:
        """A dead peer the authority never closes (it died too, or lost the room): let it go
        once the authority has had twice its own patience (``rtc.media_timeout_s``)."""

        async def later() -> None:
            await asyncio.sleep(2 * self.settings.rtc.media_timeout_s)
            station = media.station
            entry = station.open.get(slot) if station is not None else None
            if station is not None and entry is not None and entry.generation == generation:
                log.warning("mic closed here: no word from its room", extra={"slot": slot})
                station.end(EndMic(slot, generation, "orphaned", submit=False))

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _beats(self) -> None:
        """Once a second per room: alive, and which mics are held here."""
        while True:
            for media in list(self.media.values()):
                assert media.station is not None
                mics = [(e.slot, e.generation) for e in media.station.open.values()]
                self.publish(media, wire.MediaBeat(self.id, mics[: wire.MAX_BEAT_MICS]))
            await asyncio.sleep(BEAT_S)


class _Events:
    """A room's MicStation reports: to the authority (the answer as the request's reply)."""

    def __init__(self, node: MediaNode, media: RoomMedia) -> None:
        self.node = node
        self.media = media

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None:
        self.node.reply(self.media, slot, generation, wire.MediaAnswer(self.node.id, sdp))

    def mic_refused(self, slot: int, generation: int, conn: int, ref: int, reason: str) -> None:
        station = self.media.station
        if station is not None and slot in station.open:
            station.end(EndMic(slot, generation, "failed", submit=False))
        reason = reason[: wire.MAX_REASON]
        self.node.reply(self.media, slot, generation, wire.MediaRefused(self.node.id, reason))

    def mic_state(self, slot: int, generation: int, state: str) -> None:
        if state not in ("new", "connecting", "connected", "disconnected", "failed", "closed"):
            return
        log.info("mic peer", extra={"room": self.media.subjects.room, "slot": slot, "state": state})
        message = wire.MediaState(self.node.id, slot, generation, state)  # type: ignore[arg-type]
        self.node.publish(self.media, message)
        if state in ("failed", "closed"):
            self.node.orphan_check(self.media, slot, generation)

    def mic_transcript(self, slot: int, text: str) -> None:
        generation = self.media.closed.get(slot, 0)
        text = text[: wire.MAX_TRANSCRIPT]
        self.node.publish(self.media, wire.MediaTranscript(self.node.id, slot, generation, text))
