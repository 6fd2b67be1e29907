"""The clone's Opus encoding runs in a worker thread, with the same bytes as on the loop."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from townhall.server.clone.voice.opus import OpusEncoder

from .rtc_helpers import speech


class WhereEncoder(OpusEncoder):
    """Records the thread each feed and flush runs in."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def feed(self, pcm, sample_rate):  # type: ignore[no-untyped-def]
        self.threads.append(threading.get_ident())
        return super().feed(pcm, sample_rate)

    def flush(self):  # type: ignore[no-untyped-def]
        self.threads.append(threading.get_ident())
        return super().flush()


async def test_async_encoding_is_off_the_loop_and_identical() -> None:
    pcm, rate = speech("We are opening an office in Lisbon next spring.")
    on_loop = OpusEncoder()
    expected = [f.data for f in on_loop.feed(pcm, rate) + on_loop.flush()]
    encoder = WhereEncoder()
    frames = await encoder.feed_async(pcm[: rate // 3], rate)
    frames += await encoder.feed_async(pcm[rate // 3 :], rate)
    frames += await encoder.flush_async()
    assert [f.data for f in frames] == expected
    assert [f.pts_samples_48k for f in frames] == list(range(0, 960 * len(frames), 960))
    loop_thread = threading.get_ident()
    assert encoder.threads and loop_thread not in encoder.threads
    # The loop keeps turning while a long stretch is encoded.
    ticks = 0

    async def count() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count())
    await WhereEncoder().feed_async(np.tile(pcm, 20), rate)
    counter.cancel()
    assert ticks > 1
