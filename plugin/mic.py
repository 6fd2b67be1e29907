"""The headset's live mic: when a moderator grants it, send an audio source over WebRTC.

Any aiortc audio track works: a device (``aiortc.contrib.media.MediaPlayer``), or
:class:`PcmSource` for PCM you already have (tests use eSpeak NG speech). ICE is held to the
same policy as the server's: host candidates only on the given addresses, and nothing is
sent outside the allowed networks.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Iterable

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from townhall.protocol.errors import RequestFailed
from townhall.protocol.messages import Error, Message, MicAnswer, MicChanged, MicOffer, MicRelease
from townhall.server.rtc.policy import NetworkPolicy, parse_addresses, parse_networks

from .client import RoomClient

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960


class PcmSource(MediaStreamTrack):
    """Plays mono int16 PCM in real time as 20 ms frames, then silence (like a quiet mic)."""

    kind = "audio"

    def __init__(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> None:
        super().__init__()
        if sample_rate != SAMPLE_RATE:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
            frame.sample_rate = sample_rate
            parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
            pcm = np.concatenate(parts).astype(np.int16)
        self.pcm = pcm
        self._pts = 0
        self._start: float | None = None
        self.done = asyncio.Event()  # set once the whole PCM has been sent

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._pts / SAMPLE_RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = self.pcm[self._pts : self._pts + FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            self.done.set()
            chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return frame


class MicSender:
    """Sends ``track`` to the room while this attendee holds the mic."""

    def __init__(
        self,
        client: RoomClient,
        track: MediaStreamTrack,
        *,
        host_addresses: Iterable[str] = ("127.0.0.1",),
        allowed_networks: str = "127.0.0.1/32,::1/128",
    ) -> None:
        self.client = client
        self.track = track
        self.policy = NetworkPolicy(
            parse_networks(allowed_networks), parse_addresses(",".join(host_addresses))
        )
        self.pc: RTCPeerConnection | None = None
        self.state = ""  # the latest MicChanged state for us
        self._answers: dict[int, asyncio.Future[Message]] = {}
        self._ref = 40_000
        client.listeners.append(self._on_message)

    def _on_message(self, message: Message) -> None:
        me = self.client.welcome.slot if self.client.welcome is not None else -1
        if isinstance(message, MicChanged) and message.slot == me:
            self.state = message.state
        elif isinstance(message, (MicAnswer, Error)):
            ref = message.ref
            future = self._answers.pop(ref, None)
            if future is not None and not future.done():
                future.set_result(message)

    async def start(self, timeout_s: float = 10.0) -> None:
        """Accept the grant: offer, wait for the answer, start sending."""
        pc = self.pc = RTCPeerConnection(self.policy.configuration())
        pc.addTrack(self.track)
        self.policy.restrict(pc)
        await pc.setLocalDescription(await pc.createOffer())
        self._ref += 1
        ref = self._ref
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._answers[ref] = future
        await self.client.send(MicOffer(ref, pc.localDescription.sdp))
        reply = await asyncio.wait_for(future, timeout_s)
        if isinstance(reply, Error):
            await self.close()
            raise RequestFailed.of(reply.code, reply.reason, reply.about, reply.ref)
        assert isinstance(reply, MicAnswer)
        await pc.setRemoteDescription(RTCSessionDescription(reply.sdp, "answer"))

    async def release(self) -> None:
        """Done speaking: tell the room, then hang up."""
        self._ref += 1
        await self.client.send(MicRelease(self._ref))
        await self.close()

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
