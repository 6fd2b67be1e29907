"""One granted attendee's WebRTC peer connection (aiortc), held to the network policy.

The offer carries its candidates inline (no trickle). They are taken out of the SDP and
added one by one after the ICE connection has been restricted, so no candidate reaches aioice
unchecked; then the answer is made, gathering on the configured host addresses only.
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
from aiortc.sdp import candidate_from_sdp

from townhall.server.rtc.policy import NetworkPolicy, refused_candidates

log = logging.getLogger("townhall.rtc.peer")


class BadOffer(ValueError):
    """An offer that cannot be used; the reason goes back to the client as BAD_SDP."""


def split_candidates(sdp: str) -> tuple[str, list[tuple[str, int, str]]]:
    """The SDP without candidate lines, and the candidates as (mid, m-line index, line)."""
    kept: list[str] = []
    found: list[tuple[str, int, str]] = []
    mline = -1
    mid = ""
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            mline += 1
            mid = ""
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        if line.startswith("a=candidate:"):
            found.append((mid, mline, line[2:]))
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        kept.append(line)
    # mids seen after the candidate lines of their section
    return "\r\n".join(kept).strip() + "\r\n", found


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
        if "m=audio" not in offer:
            raise BadOffer("the offer has no audio section")
        stripped, candidates = split_candidates(offer)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(stripped, "offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... for bad SDP
            raise BadOffer(f"unusable offer: {type(exc).__name__}: {exc}"[:300]) from None
        if not any(t.kind == "audio" for t in self.pc.getTransceivers()):
            raise BadOffer("the offer has no audio track")
        self.policy.restrict(self.pc)
        mids = {t.mid for t in self.pc.getTransceivers()}
        for mid, index, line in candidates:
            try:
                candidate = candidate_from_sdp(line.split(":", 1)[1])
            except Exception:
                log.warning("unreadable candidate", extra={"candidate": line[:200]})
                continue
            candidate.sdpMid = mid if mid in mids else None
            candidate.sdpMLineIndex = index
            await self.pc.addIceCandidate(candidate)
        await self.pc.addIceCandidate(None)  # every candidate came inline
        usable = [
            c
            for t in self.pc.getTransceivers()
            for c in t.receiver.transport.transport.getRemoteCandidates()
        ]
        if not usable:
            refused = ", ".join(refused_candidates(self.pc)) or "none given"
            raise BadOffer(f"no usable ICE candidate in the offer (refused: {refused})"[:400])
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return str(self.pc.localDescription.sdp)

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
