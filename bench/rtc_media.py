"""The live mic on a media node: the bus's cost and delay, on real aiortc peers and real NATS.

Runs a media node (``MediaNode``) and a room's side of it (``RemoteMics``) in this process
on the NATS at 127.0.0.1:4222, with N attendees' aiortc peers sending eSpeak speech, and
measures what moving the peer off the authority adds: the time from asking a node for a
peer to its answer, the delay of each voice packet from the node's publish to the room's
side receiving it (one NATS hop; the same hop reaches each edge), and the bus bytes per
second of voice. Prints one JSON object as its last line.

    python bench/rtc_media.py --mics 1 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import nats
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription

from townhall.plugin.mic import PcmSource
from townhall.protocol.messages import StagePacket
from townhall.server.clone.voice.espeak import EspeakVoice
from townhall.server.core.effects import StartMic
from townhall.server.ops.config import Settings
from townhall.server.rtc.media_node import MediaNode, RoomMedia
from townhall.server.rtc.policy import NetworkPolicy, parse_addresses, parse_networks
from townhall.server.rtc.remote import RemoteMics


class Room:
    """The room's side: when each answer and each voice packet arrived."""

    def __init__(self) -> None:
        self.answers: dict[int, tuple[float, str]] = {}
        self.states: dict[int, str] = {}
        self.received: dict[tuple[int, int], float] = {}
        self.bytes = 0

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None:
        self.answers[slot] = (time.perf_counter(), sdp)

    def mic_refused(self, slot: int, generation: int, conn: int, ref: int, reason: str) -> None:
        raise SystemExit(f"refused: {reason}")

    def mic_state(self, slot: int, generation: int, state: str) -> None:
        self.states[slot] = state

    def mic_transcript(self, slot: int, text: str) -> None:
        pass

    def mic_lost(self, slot: int, generation: int, reason: str, ref: int = 0) -> None:
        raise SystemExit(f"lost: {reason}")

    def live(self, payload: bytes, packet: StagePacket) -> None:
        self.received[(packet.speaker_slot, packet.index)] = time.perf_counter()
        self.bytes += len(payload)


async def main(mics: int, seconds: float) -> dict[str, object]:
    utter = EspeakVoice().render(
        "Good morning. I would like to ask about our plans for the new office and the hiring "
        "for next year, and how the teams will be organised.",
        "en",
    )
    pcm = np.tile(np.concatenate([utter.pcm, np.zeros(utter.sample_rate // 2, np.int16)]), 20)
    room_id = f"bench{uuid.uuid4().hex[:8]}"
    sent: dict[tuple[int, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings()
        settings = replace(
            base,
            store=replace(base.store, path=str(Path(tmp) / "bench.db")),
            rtc=replace(base.rtc, media_rooms=room_id),
        )
        node = MediaNode(settings)
        original = node._voice

        def timed_voice(media: RoomMedia, packet: StagePacket) -> None:
            sent[(packet.speaker_slot, packet.index)] = time.perf_counter()
            original(media, packet)

        node._voice = timed_voice  # type: ignore[method-assign]
        await node.start()
        nc = await nats.connect(settings.bus.url)
        room = Room()
        remote = RemoteMics(nc, room_id, room, lambda: 0, room.live, timeout_s=10.0)
        await remote.subscribe()
        policy = NetworkPolicy(parse_networks("127.0.0.1/32"), parse_addresses("127.0.0.1"))
        peers: list[RTCPeerConnection] = []
        asked: dict[int, float] = {}
        for slot in range(mics):
            pc = RTCPeerConnection(policy.configuration())
            pc.addTrack(PcmSource(pcm, utter.sample_rate))
            policy.restrict(pc)
            await pc.setLocalDescription(await pc.createOffer())
            peers.append(pc)
            asked[slot] = time.perf_counter()
            remote.start(StartMic(slot, 1, 0, 0, pc.localDescription.sdp))
        deadline = time.monotonic() + 30
        while len(room.answers) < mics and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for slot, pc in enumerate(peers):
            await pc.setRemoteDescription(RTCSessionDescription(room.answers[slot][1], "answer"))
        while sum(s == "connected" for s in room.states.values()) < mics:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        sent.clear()
        room.received.clear()
        assert node.publisher is not None
        bytes0, t0 = node.publisher.bytes_out, time.perf_counter()
        await asyncio.sleep(seconds)
        bytes1, t1 = node.publisher.bytes_out, time.perf_counter()
        await asyncio.sleep(0.5)  # what was in flight at t1 arrives
        window = {key: at for key, at in sent.items() if at <= t1}
        hops = [1000 * (room.received[k] - at) for k, at in window.items() if k in room.received]
        for pc in peers:
            await pc.close()
        await remote.close()
        await nc.close()
        await node.stop()
    wall = t1 - t0
    hops.sort()
    opens = [1000 * (room.answers[s][0] - asked[s]) for s in range(mics)]
    return {
        "bench": "rtc_media",
        "live_mics": mics,
        "seconds": round(wall, 2),
        "open_to_answer_ms_median": round(statistics.median(opens), 1),
        "voice_packets_per_s": round(len(hops) / wall, 1),
        "bus_hop_ms_p50": round(hops[len(hops) // 2], 2) if hops else None,
        "bus_hop_ms_p99": round(hops[int(len(hops) * 0.99)], 2) if hops else None,
        "bus_bytes_per_s_per_mic": round((bytes1 - bytes0) / wall / mics),
        "lost_packets": len(window) - len(hops),
        "note": "node, room side and senders in one process on one NATS; the hop is NATS's",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mics", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.mics, args.seconds))))
