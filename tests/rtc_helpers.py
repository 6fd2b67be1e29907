"""Helpers for the live-mic tests: clients that record what they get, speech to send."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Error, Message, MicChanged, StagePacket
from townhall.server.clone.voice.espeak import EspeakVoice
from townhall.server.clone.voice.opus import OpusDecoder


class Recorder(RoomClient):
    """A RoomClient that keeps every message it receives."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token)
        self.got: list[Message] = []
        self.listeners.append(self.got.append)

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.got if isinstance(m, kind)]

    def mic_states(self, slot: int) -> list[tuple[str, str]]:
        return [(m.state, m.reason) for m in self.of(MicChanged) if m.slot == slot]

    def errs(self, request: int = -1) -> list[Error]:
        return [e for e in self.of(Error) if request < 0 or e.ref == request]

    def live_packets(self, slot: int) -> list[StagePacket]:
        return [p for p in self.of(StagePacket) if p.speaker_slot == slot]


def speech(text: str) -> tuple[npt.NDArray[np.int16], int]:
    """eSpeak NG saying ``text``, with a little silence before and after."""
    utterance = EspeakVoice().render(text, "en")
    pad = np.zeros(utterance.sample_rate // 4, np.int16)
    return np.concatenate([pad, utterance.pcm, pad]), utterance.sample_rate


def decode_voice(packets: list[StagePacket]) -> npt.NDArray[np.int16]:
    decoder = OpusDecoder()
    return decoder.decode([frame for p in packets for frame in p.opus])
