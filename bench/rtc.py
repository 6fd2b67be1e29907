"""CPU per live mic: decode + VAD + re-encode + relay, measured on real aiortc peers.

Starts a server on 127.0.0.1 with N attendees holding live mics (``rtc.max_live_mics = N``),
each sending eSpeak speech over WebRTC from this process, and measures the server's side:
the CPU time of its peers' receive path (Opus decode in aiortc, resampling, VAD, Opus
encode, stage packets) per second of audio. One spectator receives the relayed packets.
Prints one JSON object as its last line.

    python bench/rtc.py --mics 1 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from townhall.plugin.client import RoomClient
from townhall.plugin.mic import MicSender, PcmSource
from townhall.protocol.messages import Message, Mic, MicChanged, StagePacket
from townhall.server.app import TownhallServer
from townhall.server.clone.voice.espeak import EspeakVoice
from townhall.server.gateway.tokens import issue_token
from townhall.server.ops.config import Settings
from townhall.server.rtc.relay import LiveRelay

SECRET = "bench-secret-" + "x" * 32


def settings(tmp: Path, mics: int) -> Settings:
    from dataclasses import replace

    base = Settings()
    return replace(
        base,
        auth=replace(base.auth, secret=SECRET),
        server=replace(base.server, port=0),
        store=replace(base.store, path=str(tmp / "bench.db"), synchronous="NORMAL"),
        clone=replace(base.clone, enabled=False),
        rtc=replace(base.rtc, max_live_mics=mics, mic_time_limit_s=3600),
    )


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(mics: int, seconds: float) -> dict[str, object]:
    voice = EspeakVoice()
    utter = voice.render(
        "Good morning. I would like to ask about our plans for the new office and the hiring "
        "for next year, and how the teams will be organised.",
        "en",
    )
    pcm = np.tile(np.concatenate([utter.pcm, np.zeros(utter.sample_rate // 2, np.int16)]), 20)
    relayed = 0

    def on_viewer(message: Message) -> None:
        nonlocal relayed
        if isinstance(message, StagePacket) and message.speaker_slot >= 0:
            relayed += len(message.opus)

    # Time spent in the server's relay (VAD, encode, packets) is measured directly; the
    # whole process's CPU (senders, aiortc on both sides) is reported too, for scale.
    relay_s = 0.0
    original_push = LiveRelay.push

    def timed_push(self: LiveRelay, chunk: np.ndarray) -> None:
        nonlocal relay_s
        t = time.perf_counter()
        original_push(self, chunk)
        relay_s += time.perf_counter() - t

    LiveRelay.push = timed_push  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        async with TownhallServer(settings(Path(tmp), mics)) as srv:

            def tok(user: str, role: str) -> str:
                return issue_token(
                    SECRET, user_id=user, name=user, role=role, room="main", ttl_s=3600
                )

            viewer = RoomClient(srv.ws_url, tok("viewer", "spectator"), on_message=on_viewer)
            mod = RoomClient(srv.ws_url, tok("mod", "moderator"))
            await viewer.connect()
            await mod.connect()
            senders = []
            for i in range(mics):
                c = RoomClient(srv.ws_url, tok(f"att{i}", "attendee"))
                await c.connect()
                slot = c.welcome.slot  # type: ignore[union-attr]
                await mod.send(Mic(i + 1, "grant", slot))
                sender = MicSender(c, PcmSource(pcm, utter.sample_rate))
                while c.state.mics.get(slot) is None:
                    await asyncio.sleep(0.01)
                await sender.start()
                senders.append((c, sender))
            live = lambda: sum(  # noqa: E731
                isinstance(m, MicChanged) for m in viewer.state.mics.values() if m.state == "live"
            )
            deadline = time.monotonic() + 15
            while live() < mics and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            relay_s, relayed = 0.0, 0
            cpu0, t0 = cpu_s(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu1, t1 = cpu_s(), time.perf_counter()
            relay_cpu = relay_s
            frames = relayed
            for c, sender in senders:
                await sender.close()
                await c.close()
            await viewer.close()
            await mod.close()
    LiveRelay.push = original_push  # type: ignore[method-assign]
    wall = t1 - t0
    return {
        "bench": "rtc",
        "live_mics": mics,
        "seconds": round(wall, 2),
        "relayed_frames_per_s": round(frames / wall, 1),
        "relay_cpu_ms_per_audio_s_per_mic": round(1000 * relay_cpu / wall / mics, 2),
        "process_cpu_pct_per_mic": round(100 * (cpu1 - cpu0) / wall / mics, 1),
        "note": "process CPU includes the senders and both aiortc ends in one process",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mics", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.mics, args.seconds))))
