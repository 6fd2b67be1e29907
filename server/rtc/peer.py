"""One granted attendee's WebRTC peer connection (aiortc), held to the network policy.

The offer carries its candidates inline (no trickle). ``offer.read_offer`` parses it once,
with aiortc's parser, and takes the candidates out; they are added one by one after the ICE
connection has been restricted, so no candidate reaches aioice unchecked (and ``netguard``
checks every datagram anyway); then the answer is made, gathering on the configured host
addresses only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from townhall.server.rtc.offer import BadOffer, read_offer
from townhall.server.rtc.policy import NetworkPolicy, refused_candidates

__all__ = ["BadOffer", "MicPeer"]

log = logging.getLogger("townhall.rtc.peer")


class MicPeer:
    """Receives one attendee's microphone; hands decoded 48 kHz mono PCM to ``on_audio``."""

    def __init__(
        self,
        policy: NetworkPolicy,
        on_audio: Callable[[npt.NDArray[np.int16]], None],
        on_state: Callable[[str], None],
    ) -> None:
        self.policy = policy
        self.on_audio = on_audio
        self.on_state = on_state
        self.pc = RTCPeerConnection(policy.configuration())
        self._reader: asyncio.Task[None] | None = None
        self.closed = False
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)

    async def accept(self, offer: str) -> str:
        """Take the attendee's offer; returns the answer SDP (raises BadOffer)."""
        parsed = read_offer(offer)
        if "audio" not in parsed.kinds:
            raise BadOffer("the offer has no audio section")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(parsed.sdp, "offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... for bad SDP
            raise BadOffer(f"unusable offer: {type(exc).__name__}: {exc}"[:300]) from None
        if not any(t.kind == "audio" for t in self.pc.getTransceivers()):
            raise BadOffer("the offer has no audio track")
        self.policy.restrict(self.pc)
        if self._remote_candidates():  # the description reached ICE with candidates: never
            raise BadOffer("the offer's candidates could not be taken apart from it")
        mids = {t.mid for t in self.pc.getTransceivers()}
        for candidate in parsed.candidates:
            if candidate.sdpMid not in mids:
                candidate.sdpMid = None
            await self.pc.addIceCandidate(candidate)
        await self.pc.addIceCandidate(None)  # every candidate came inline
        if not self._remote_candidates():
            refused = ", ".join(refused_candidates(self.pc)) or "none given"
            raise BadOffer(f"no usable ICE candidate in the offer (refused: {refused})"[:400])
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return str(self.pc.localDescription.sdp)

    def _remote_candidates(self) -> list[object]:
        return [
            c
            for t in self.pc.getTransceivers()
            for c in t.receiver.transport.transport.getRemoteCandidates()
        ]

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        try:
            while True:
                frame = await track.recv()
                for out in resampler.resample(frame):  # type: ignore[arg-type]
                    self.on_audio(np.asarray(out.to_ndarray(), dtype=np.int16).reshape(-1))
        except MediaStreamError:
            pass
        except Exception:
            log.exception("reading the mic failed")

    def _on_connection_state(self) -> None:
        if not self.closed:
            self.on_state(self.pc.connectionState)

    async def close(self) -> None:
        self.closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.pc.close()
