"""The authority's side of the bus: clients of networked edges as connections of the room.

Each tick is published once (``bus.Subjects.ticks``, kept in JetStream; its crowd frames
on ``crowd``), whatever the number of edges. What an edge's clients send arrives on the
edge's inbound subject; the room sees each such client as one more connection, with an
id of its own, and its replies go back to that edge's subject. Everything arriving here
is checked like client input: a message that does not decode, names a client the edge
does not hold, or carries poses for seats that are not its clients' is logged and dropped.
An edge not heard from for ``bus.edge_timeout_s`` is taken for dead: its clients leave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import msgspec
import numpy as np
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from townhall.protocol import quant
from townhall.protocol.limits import MAX_EDGES, MAX_URL_CHARS
from townhall.protocol.messages import Role
from townhall.server.core.effects import Admit
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.bus import Publisher, Subjects, edge_id_of, presence_all
from townhall.server.gateway.session import new_session_id
from townhall.server.ops.metrics import Metrics

log = logging.getLogger("townhall.bus.room")

MAX_TEXT = 256  # address and guest id from an edge, at most
MAX_PRESENCE = 256  # edges of the deployment a page's policy may name, at most
MAX_TOLD = 4096  # unknown clients of one edge told to reconnect, at most


class RoomInbox(Protocol):
    """The room host's entry points for a connection's life."""

    def connect(self, conn: int, address: str = "", guest: str = "") -> None: ...
    def receive(self, conn: int, data: bytes | str) -> None: ...
    def poses(self, slots: bytes, flags: bytes, records: bytes, bytes_in: int) -> None: ...
    def disconnect(self, conn: int) -> None: ...


@dataclass
class EdgeState:
    """What the room knows of one edge: when it last spoke, and its clients."""

    last_heard: float
    conns: dict[int, int] = field(default_factory=dict)  # edge's sid -> room conn id
    slots: set[int] = field(default_factory=set)  # seats of its joined attendees
    url: str = ""  # its public WebSocket URL, as its Stats announce it ("" : none)
    told_to_reconnect: set[int] = field(default_factory=set)  # unknown sids sent a Close


class BusRoom:
    """Publishes the room's output to the bus and feeds the room what edges send."""

    def __init__(
        self,
        nc: NatsClient,
        subjects: Subjects,
        inbox: RoomInbox,
        keyframe: Callable[[], bytes],
        metrics: Metrics,
        edge_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        term: int = 0,
        held: Callable[[], bool] = lambda: True,
        on_edges: Callable[[tuple[str, ...]], None] | None = None,
        deployment: str = "main",
        guest_of: Callable[[str], str] = lambda cookie: "",
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.inbox = inbox
        self.keyframe = keyframe
        self.metrics = metrics
        self.edge_timeout_s = edge_timeout_s
        self.clock = clock
        self.term = term  # the lease term every tick carries (edges notice a new authority)
        self.held_lease = held  # checked on every message in and out (lease.py)
        self.publisher = Publisher(nc, held)
        self.on_edges = on_edges  # told the live edges' URLs whenever they change
        self.deployment = deployment  # whose edges' presence it hears (bus.deployment)
        self.guest_of = guest_of  # a guest cookie's value, verified: its guest id or ""
        self.edges: dict[str, EdgeState] = {}
        # Every edge of the deployment (any room's), by its presence: id -> (URL, last heard)
        self.presence: dict[str, tuple[str, float]] = {}
        self.where: dict[int, tuple[str, int, int]] = {}  # conn -> (edge, sid, slot)
        self.dropped = 0  # bus messages refused
        self.fenced = False
        self._decoder: msgspec.msgpack.Decoder[ipc.Seam] = msgspec.msgpack.Decoder(ipc.ToRoom)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.nc.subscribe(self.subjects.inbound_all, cb=self._on_message)
        await self.nc.subscribe(presence_all(self.deployment), cb=self._on_presence)
        self._tasks.append(asyncio.get_running_loop().create_task(self._sweep()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.publisher.close()

    def fence(self) -> None:
        """The lease is lost: send nothing more and take nothing more from edges, at once."""
        self.publisher.fence()
        self.fenced = True

    def held(self) -> int:
        """Clients the edges hold (they count toward max_connections)."""
        return len(self.where)

    # ------------------------------------------------------------ from edges

    async def _on_message(self, msg: Msg) -> None:
        if self.fenced or not self.held_lease():
            self.fence()
            return
        edge = edge_id_of(msg.subject)
        try:
            message = ipc.unpack_one(msg.data, self._decoder)
            if not edge:
                raise ValueError("no edge id in the subject")
            self.on_edge(edge, message)
        except (ValueError, TypeError) as exc:
            self.refuse(edge, str(exc))
        except Exception:  # a bug here must not take the room down with it
            self.dropped += 1
            log.exception("bus message failed", extra={"edge": edge})

    async def _on_presence(self, msg: Msg) -> None:
        """An edge of the deployment (of any room) says where it serves: checked, kept."""
        edge = edge_id_of(msg.subject)
        try:
            message = ipc.unpack_one(msg.data, self._decoder)
        except ValueError as exc:
            self.refuse(edge, f"presence: {exc}")
            return
        if not edge or not isinstance(message, ipc.Stats) or not usable_edge_url(message.url):
            self.refuse(edge, "presence without an edge id or a usable URL")
            return
        if edge not in self.presence and len(self.presence) >= MAX_PRESENCE:
            self.refuse(edge, "presence: too many edges")
            return
        known = self.presence.get(edge, ("", 0.0))[0]
        self.presence[edge] = (message.url, self.clock())
        if message.url != known:  # a new edge (or a new URL): Welcomes name it from now on
            self._edges_changed()

    def deployment_urls(self) -> tuple[str, ...]:
        """Every live edge's URL, whichever rooms it serves now (any of them may serve this
        one): where this room's pages may open a WebSocket."""
        urls = dict.fromkeys(self.edge_urls())
        urls.update(dict.fromkeys(url for url, _ in self.presence.values()))
        return tuple(urls)[:MAX_PRESENCE]

    def refuse(self, edge: str, reason: str) -> None:
        self.dropped += 1
        log.warning("bus message dropped", extra={"edge": edge, "reason": reason[:200]})

    def on_edge(self, edge: str, message: ipc.Seam) -> None:
        state = self.edges.get(edge)
        if state is None:
            state = self.edges[edge] = EdgeState(self.clock())
            log.info("edge joined", extra={"edge": edge})
        state.last_heard = self.clock()
        if isinstance(message, ipc.Inbound):
            for sid, payload in message.items:
                conn = state.conns.get(sid)
                if conn is None:
                    self.refuse(edge, f"inbound for unknown client {sid}")
                    self._reconnect(edge, state, sid)
                    continue
                if not isinstance(payload, bytes | str):
                    self.refuse(edge, f"inbound for client {sid}: not a message")
                    continue
                self.inbox.receive(conn, payload)
        elif isinstance(message, ipc.PoseBatch):
            self._poses(edge, state, message)
        elif isinstance(message, ipc.Connect):
            if message.sid in state.conns:
                self.refuse(edge, f"client {message.sid} connected twice")
                return
            conn = new_session_id()
            state.conns[message.sid] = conn
            self.where[conn] = (edge, message.sid, -1)
            # The edge forwards the browser's guest cookie as it came; the room verifies it.
            cookies = message.guest[:MAX_TEXT].split(",")
            guest = next((g for g in map(self.guest_of, cookies[:3]) if g), "")
            self.inbox.connect(conn, message.address[:MAX_TEXT], guest)
        elif isinstance(message, ipc.Gone):
            conn = state.conns.pop(message.sid, None)
            if conn is not None:
                self._forget(state, conn)
                self.inbox.disconnect(conn)
        elif isinstance(message, ipc.Stats):
            self._stats(message)
            self._announce(edge, state, message.url)
        elif isinstance(message, ipc.NeedKeyframe):
            log.info("edge asked for a keyframe", extra={"edge": edge, "after": message.after})
            keyframe = ipc.Broadcast(self.keyframe(), None)
            self.publisher.publish(self.subjects.edge(edge), ipc.pack(keyframe))

    def _reconnect(self, edge: str, state: EdgeState, sid: int) -> None:
        """A client the room does not know speaks through its edge: the room let it go when
        the edge fell silent (a starved or frozen process), and the edge, back, still holds
        it. It is told to reconnect (1012), which resumes its session, rather than talking
        on unheard; once per client."""
        if sid in state.told_to_reconnect or len(state.told_to_reconnect) >= MAX_TOLD:
            return
        state.told_to_reconnect.add(sid)
        close = ipc.Close(sid, ipc.RECONNECT, "the room lost this connection; reconnect")
        self.publisher.publish(self.subjects.edge(edge), ipc.pack(close))

    def _poses(self, edge: str, state: EdgeState, batch: ipc.PoseBatch) -> None:
        n = len(batch.flags)
        if len(batch.slots) != 2 * n or len(batch.poses) != n * quant.POSE_DTYPE.itemsize:
            self.refuse(edge, "pose batch of mismatched lengths")
            return
        slots = np.frombuffer(batch.slots, dtype="<u2")
        if not np.isin(slots, np.fromiter(state.slots, dtype=np.int64)).all():
            self.refuse(edge, "poses for seats that are not this edge's attendees")
            return
        try:
            quant.check_poses(batch.poses)
        except quant.QuantizationError as exc:
            self.refuse(edge, f"bad pose: {exc}")
            return
        self.inbox.poses(batch.slots, batch.flags, batch.poses, max(0, batch.bytes_in))

    def _stats(self, stats: ipc.Stats) -> None:
        m = self.metrics
        m.messages_out += max(0, stats.messages_out)
        m.bytes_out += max(0, stats.bytes_out)
        m.frames_dropped += max(0, stats.frames_dropped)
        for reason, n in list(stats.closes.items())[:16]:
            m.closes[reason[:64]] = m.closes.get(reason[:64], 0) + max(0, n)

    def _announce(self, edge: str, state: EdgeState, url: str) -> None:
        """An edge's public URL, checked like client input, into the Welcome's list."""
        if url == state.url:
            return
        if url and not usable_edge_url(url):
            self.refuse(edge, f"not a ws:// or wss:// URL: {url[:80]!r}")
            return
        state.url = url
        self._edges_changed()

    def edge_urls(self) -> tuple[str, ...]:
        """The live edges' URLs (at most ``MAX_EDGES``, one each, in the order they came)."""
        urls = dict.fromkeys(s.url for s in self.edges.values() if s.url)
        return tuple(urls)[:MAX_EDGES]

    def welcome_urls(self) -> tuple[str, ...]:
        """Where this room's clients may go if their edge dies: the edges serving the room
        now first, then every other live edge of the deployment (any edge links a room on
        its first client), at most ``MAX_EDGES``."""
        return self.deployment_urls()[:MAX_EDGES]

    def _edges_changed(self) -> None:
        if self.on_edges is not None:
            self.on_edges(self.welcome_urls())

    def _forget(self, state: EdgeState, conn: int) -> None:
        _, _, slot = self.where.pop(conn, ("", 0, -1))
        state.slots.discard(slot)

    async def _sweep(self) -> None:
        """Edges that went silent (killed, cut off): their clients leave the room."""
        while True:
            await asyncio.sleep(min(1.0, self.edge_timeout_s / 2))
            now = self.clock()
            gone = [
                e for e, (_, heard) in self.presence.items() if now - heard >= self.edge_timeout_s
            ]
            for edge in gone:
                del self.presence[edge]
            if gone:
                self._edges_changed()
            for edge, state in list(self.edges.items()):
                if now - state.last_heard < self.edge_timeout_s:
                    continue
                log.error("edge silent: its clients leave", extra={"edge": edge})
                del self.edges[edge]
                self.presence.pop(edge, None)  # named nowhere again until it is heard anew
                if state.url:
                    self._edges_changed()
                for conn in state.conns.values():
                    self.where.pop(conn, None)
                    self.inbox.disconnect(conn)

    # ------------------------------------------------------------ to edges

    def admit(self, admit: Admit) -> bool:
        """A bus client joined: its edge writes it from now on (False: not a bus client)."""
        where = self.where.get(admit.conn)
        if where is None:
            return False
        edge, sid, _ = where
        self.where[admit.conn] = (edge, sid, admit.slot)
        state = self.edges.get(edge)
        if state is not None and admit.role == "attendee":
            state.slots.add(admit.slot)
        adopt = ipc.Adopt(sid, admit.slot, admit.role, admit.cell, list(admit.payloads))
        self.publisher.publish(self.subjects.edge(edge), ipc.pack(adopt))
        return True

    def send(self, conn: int, payloads: Sequence[bytes]) -> bool:
        where = self.where.get(conn)
        if where is None:
            return False
        if payloads:
            message = ipc.pack(ipc.Send(where[1], list(payloads)))
            self.publisher.publish(self.subjects.edge(where[0]), message)
        return True

    def close(self, conn: int, code: int, reason: str) -> bool:
        where = self.where.get(conn)
        if where is None:
            return False
        message = ipc.pack(ipc.Close(where[1], code, reason))
        self.publisher.publish(self.subjects.edge(where[0]), message)
        return True

    def tick(self, tick: ipc.Tick) -> None:
        """Once per tick for every edge: the tick to the stream, its crowd frames aside."""
        crowd = ipc.Crowd(tick.number, tick.near, tick.far)
        kept = msgspec.structs.replace(tick, near={}, far=b"", term=self.term)
        self.publisher.publish(self.subjects.ticks, ipc.pack(kept))
        if crowd.near or crowd.far:
            self.publisher.publish(self.subjects.crowd, ipc.pack(crowd))

    def broadcast(self, payload: bytes, roles: frozenset[Role] | None) -> None:
        message = ipc.Broadcast(payload, sorted(roles) if roles else None)
        self.publisher.publish(self.subjects.live, ipc.pack(message))


def usable_edge_url(url: str) -> bool:
    """A URL a client could open: ws:// or wss://, a host, printable, not too long."""
    if len(url) > MAX_URL_CHARS or not url.isascii() or not url.isprintable() or " " in url:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return False
    return parts.scheme in ("ws", "wss") and bool(parts.hostname)
