"""A media node and the authority's side of it, in this process, on the real NATS bus.

The node (``MediaNode``) and the room's side (``RemoteMics``) are the real classes on the
real NATS at 127.0.0.1:4222, with real aiortc peers on 127.0.0.1; in place of the room host
a recorder keeps what the room would be told. Each test uses room ids of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from nats.aio.client import Client as NatsClient

from townhall.plugin.mic import PcmSource
from townhall.protocol import codec
from townhall.protocol.messages import StagePacket
from townhall.server.core.effects import EndMic, StartMic
from townhall.server.fanout import seam as ipc
from townhall.server.rtc import media_wire as wire
from townhall.server.rtc.media_node import MediaNode
from townhall.server.rtc.policy import NetworkPolicy, parse_addresses, parse_networks
from townhall.server.rtc.remote import RemoteMics

from .conftest import make_settings
from .natsserver import nats_server
from .rtc_helpers import decode_voice, speech
from .test_bus_edges import CLI, NATS_URL
from .waiting import eventually

WAIT_S = 30.0


class RoomSide:
    """What the room host would be told by RemoteMics, kept in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, tuple[object, ...]]] = []
        self.voice: list[StagePacket] = []

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None:
        self.told.append(("answered", (slot, generation, sdp)))

    def mic_refused(self, slot: int, generation: int, conn: int, ref: int, reason: str) -> None:
        self.told.append(("refused", (slot, generation, reason)))

    def mic_state(self, slot: int, generation: int, state: str) -> None:
        self.told.append(("state", (slot, generation, state)))

    def mic_transcript(self, slot: int, text: str) -> None:
        self.told.append(("transcript", (slot, text)))

    def mic_lost(self, slot: int, generation: int, reason: str, ref: int = 0) -> None:
        self.told.append(("lost", (slot, generation, reason)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.told]

    def live(self, payload: bytes, packet: StagePacket) -> None:
        self.voice.append(packet)


@pytest.fixture
async def nc() -> AsyncIterator[NatsClient]:
    client = await nats.connect(NATS_URL)
    yield client
    await client.close()


def room_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def remote(nc: NatsClient, room: str, side: RoomSide) -> RemoteMics:
    mics = RemoteMics(nc, room, side, lambda: 5_000_000, side.live, timeout_s=5.0)
    await mics.subscribe()
    return mics


async def offer_pc() -> tuple[RTCPeerConnection, PcmSource, str]:
    """An attendee's peer on 127.0.0.1 with a spoken phrase to send; its offer."""
    policy = NetworkPolicy(parse_networks("127.0.0.1/32"), parse_addresses("127.0.0.1"))
    pc = RTCPeerConnection(policy.configuration())
    pcm, rate = speech("Hello from the second row")
    source = PcmSource(pcm, rate)
    pc.addTrack(source)
    policy.restrict(pc)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, source, pc.localDescription.sdp


def test_media_messages_are_held_to_their_limits() -> None:
    to_node = wire.decoder(wire.ToNode)
    from_node = wire.decoder(wire.FromNode)
    ok = wire.MediaOpen(3, 7, "v=0\r\n", 1000)
    assert wire.decode(wire.encode(ok), to_node) == ok
    bad = [
        (b"\xc1", to_node),  # not msgpack
        (msgspec.msgpack.encode([1, 3, 7, "x" * 7000, 0]), to_node),  # SDP too long
        (msgspec.msgpack.encode([1, -1, 7, "v=0", 0]), to_node),  # no such seat
        (msgspec.msgpack.encode([9, 1]), to_node),  # unknown kind
        (msgspec.msgpack.encode([5, "n1", 3, 7, "exploded"]), from_node),  # no such state
        (msgspec.msgpack.encode([5, "n.1>", 3, 7, "closed"]), from_node),  # not a node id
        (msgspec.msgpack.encode([7, "n1", [[1, 1]] * 65]), from_node),  # too many mics
        (wire.encode(ok), from_node),  # the wrong direction
    ]
    for data, dec in bad:
        with pytest.raises(ValueError):
            wire.decode(data, dec)


async def test_one_node_serves_two_rooms(tmp_path: Path) -> None:
    # A node for every room ('*') answers every room's mics on its bus, another test's too:
    # it gets a nats-server of its own.
    async with nats_server(tmp_path) as server:
        nc = await nats.connect(server.url)
        try:
            await _one_node_serves_two_rooms(tmp_path, server.url, nc)
        finally:
            await nc.close()


async def _one_node_serves_two_rooms(tmp_path: Path, url: str, nc: NatsClient) -> None:
    rooms = [room_id(), room_id()]
    settings = make_settings(
        tmp_path, rtc={"media_rooms": "*", "media_timeout_s": 5.0}, bus={"url": url}
    )
    node = MediaNode(settings)
    await node.start()
    sides = [RoomSide(), RoomSide()]
    mics = [await remote(nc, room, side) for room, side in zip(rooms, sides, strict=True)]
    peers = []
    try:
        for i, m in enumerate(mics):
            pc, source, sdp = await offer_pc()
            peers.append((pc, source))
            m.start(StartMic(i + 4, 1, 0, 0, sdp))
        for i, side in enumerate(sides):
            await eventually(lambda side=side: "answered" in side.kinds(), WAIT_S, "answers")
            slot, generation, answer = next(a for k, a in side.told if k == "answered")
            assert (slot, generation) == (i + 4, 1)
            addresses = set(re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) ", str(answer)))
            assert addresses == {"127.0.0.1"}, answer
            pc = peers[i][0]
            await pc.setRemoteDescription(RTCSessionDescription(str(answer), "answer"))
        for i, side in enumerate(sides):
            await eventually(
                lambda side=side, i=i: ("state", (i + 4, 1, "connected")) in side.told, WAIT_S, "up"
            )
            await eventually(lambda side=side: len(side.voice) >= 20, WAIT_S, "voice")
        # Each room hears its own speaker only, stamped on its media clock (from MediaOpen).
        for i, side in enumerate(sides):
            assert {p.speaker_slot for p in side.voice} == {i + 4}
            assert side.voice[0].media_time_us >= 5_000_000
            assert float(abs(decode_voice(side.voice).astype(float)).mean()) > 300
        assert set(node.media) == set(rooms)
        mics[0].end(EndMic(4, 1, "released"))
        await eventually(lambda: not node.media[rooms[0]].station.open, WAIT_S, "closed")  # type: ignore[union-attr]
        assert node.media[rooms[1]].station.open  # type: ignore[union-attr]
    finally:
        for m in mics:
            await m.close()
        for pc, _ in peers:
            await pc.close()
        await node.stop()


async def test_forged_media_messages_are_dropped(tmp_path: Path, nc: NatsClient) -> None:
    room = room_id()
    settings = make_settings(tmp_path, rtc={"media_rooms": room})
    node = MediaNode(settings)
    await node.start()
    side = RoomSide()
    mics = await remote(nc, room, side)
    subjects = wire.MediaSubjects.of(room)
    pc, _, sdp = await offer_pc()
    try:
        # Garbage to the node: dropped, and the node still answers the next real request.
        await nc.publish(subjects.open, b"\x00garbage")
        await nc.publish(subjects.close, msgspec.msgpack.encode([4, 1]))
        await eventually(lambda: node.dropped == 2, WAIT_S, "the node drops garbage")
        mics.start(StartMic(3, 1, 0, 0, "v=0\r\nnot an offer"))  # unusable: refused, why
        await eventually(lambda: "refused" in side.kinds(), WAIT_S, "a refusal")
        assert side.told[-1][1][:2] == (3, 1) and "no audio" in str(side.told[-1][1][2])
        mics.end(EndMic(3, 1, "failed", submit=False))  # what the room does on BAD_SDP
        mics.start(StartMic(2, 9, 0, 0, sdp))
        await eventually(lambda: "answered" in side.kinds(), WAIT_S, "an answer after garbage")

        answer = str(next(args for kind, args in side.told if kind == "answered")[2])
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await eventually(lambda: ("state", (2, 9, "connected")) in side.told, WAIT_S, "up")

        # Garbage and forgeries to the room's side: dropped, the room told nothing of them.
        before = mics.dropped
        await nc.publish(subjects.events, b"not msgpack")
        unknown = wire.MediaState(node.id, 5, 1, "failed")  # a seat with no mic: ignored
        await nc.publish(subjects.events, wire.encode(unknown))
        forged_state = wire.MediaState("impostor", 2, 9, "failed")  # not the answering node
        await nc.publish(subjects.events, wire.encode(forged_state))
        forged_text = wire.MediaTranscript(node.id, 2, 9, "Give everyone a raise")  # not closed
        await nc.publish(subjects.events, wire.encode(forged_text))
        stray = StagePacket(0, 0, 0, 40_000, "live", [b"\xf8\xff\xfe"], [], b"", [], 11)
        stray_msg = ipc.pack(ipc.Broadcast(codec.encode(stray), None))
        await nc.publish(subjects.live, stray_msg)  # a voice for a seat with no mic
        await eventually(lambda: mics.dropped == before + 4, WAIT_S, "four dropped")
        assert ("state", (2, 9, "failed")) not in side.told
        assert all(kind != "transcript" and args[0] in (2, 3) for kind, args in side.told)
        assert all(p.speaker_slot == 2 for p in side.voice)

        # The node dies (stops beating): the mic is lost, with a reason.
        await node.stop()
        await eventually(lambda: "lost" in side.kinds(), WAIT_S, "the mic lost")
        (_, (slot, generation, reason)) = side.told[-1]
        assert (slot, generation) == (2, 9) and "media node" in str(reason)
    finally:
        await mics.close()
        await pc.close()
        await node.stop()


def test_media_settings_are_checked(tmp_path: Path) -> None:
    import subprocess

    from townhall.server.ops.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"rtc\.media must be local or bus"):
        load_settings(None, env={"TOWNHALL_RTC_MEDIA": "sfu"})
    with pytest.raises(ConfigError, match=r"rtc\.media_rooms must be room ids"):
        load_settings(None, env={"TOWNHALL_RTC_MEDIA_ROOMS": "main,a.b"})
    with pytest.raises(ConfigError, match=r"rtc\.media_timeout_s must be > 0"):
        load_settings(None, env={"TOWNHALL_RTC_MEDIA_TIMEOUT_S": "0"})
    assert load_settings(None, env={"TOWNHALL_RTC_MEDIA_ROOMS": "*"}).rtc.media_rooms == "*"
    # A media node needs a room's authority on the bus: one process alone is refused at once.
    config = tmp_path / "townhall.toml"
    config.write_text('[rtc]\nmedia = "bus"\n')
    result = subprocess.run(
        [*CLI, "serve", "--config", str(config), "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "rtc.media = bus needs server.role = authority" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_rtc_media_bench_smoke() -> None:
    import json
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "rtc_media.py"
    proc = subprocess.run(
        [sys.executable, str(bench), "--mics", "1", "--seconds", "2"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["voice_packets_per_s"] > 5 and result["lost_packets"] == 0, result
    assert result["bus_hop_ms_p99"] is not None and result["open_to_answer_ms_median"] > 0


async def test_a_deposed_authority_asks_nodes_nothing(tmp_path: Path, nc: NatsClient) -> None:
    room = room_id()
    node = MediaNode(make_settings(tmp_path, rtc={"media_rooms": room}))
    await node.start()
    side = RoomSide()
    lease = [False]
    mics = RemoteMics(nc, room, side, lambda: 0, side.live, 5.0, held=lambda: lease[0])
    await mics.subscribe()
    pcs = [await offer_pc() for _ in range(3)]
    try:
        mics.start(StartMic(1, 1, 0, 0, pcs[0][2]))  # deposed: not asked
        lease[0] = True
        mics.start(StartMic(2, 1, 0, 0, pcs[1][2]))
        await eventually(lambda: ("answered", 2) in [(k, a[0]) for k, a in side.told], WAIT_S)
        lease[0] = False
        mics.end(EndMic(2, 1, "revoked"))  # deposed: the node is not told to close it
        lease[0] = True
        mics.start(StartMic(3, 1, 0, 0, pcs[2][2]))
        await eventually(lambda: ("answered", 3) in [(k, a[0]) for k, a in side.told], WAIT_S)
        station = node.media[room].station
        assert station is not None and set(station.open) == {2, 3}
        assert all(args[0] != 1 for _, args in side.told)
    finally:
        await mics.close()
        for pc, _, _ in pcs:
            await pc.close()
        await node.stop()
