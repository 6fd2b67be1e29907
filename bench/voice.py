"""Voice speeds: eSpeak NG rendering, Opus encoding, and aligning a voice onto another.

Measured here rather than printed from the test suite: the embedded voice's time for a
10-word sentence (median of 20), the Opus encoder's cost per second of audio, and the
alignment (``voice.align.Warp``) of eSpeak's timing onto a faster rendering of the same
sentence, as the OpenAI-compatible voice does for every sentence (median of 10).

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

import numpy as np

from townhall.server.clone.voice.align import Warp
from townhall.server.clone.voice.espeak import EspeakVoice, get_engine
from townhall.server.clone.voice.openai_speech import SAMPLE_RATE
from townhall.server.clone.voice.opus import OpusEncoder

SENTENCE = "Thank you all for joining us today, it was great."
ALIGNED = "Thank you for the question. We are investing in three new offices this year."


def resample(pcm: np.ndarray, rate: int, to: int) -> np.ndarray:
    n = round(len(pcm) * to / rate)
    x = np.linspace(0, len(pcm) - 1, n)
    return np.interp(x, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=20, help="sentences rendered (20)")
    parser.add_argument("--alignments", type=int, default=10, help="alignments timed (10)")
    args = parser.parse_args(argv)
    assert len(re.findall(r"\w+", SENTENCE)) == 10
    voice = EspeakVoice()
    times = []
    for _ in range(args.renders):
        t0 = time.perf_counter()
        utterance = voice.render(SENTENCE, "en")
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    OpusEncoder().encode(utterance.pcm, utterance.sample_rate)
    opus_per_s = (time.perf_counter() - t0) / utterance.duration_s
    engine = get_engine()
    reference = engine.render(ALIGNED, "en")
    fast = engine.render(ALIGNED, "en", rate_wpm=219)
    target = resample(fast.pcm, fast.sample_rate, SAMPLE_RATE)
    warps = []
    for _ in range(args.alignments):
        t0 = time.perf_counter()
        Warp(reference.pcm, reference.sample_rate, target, SAMPLE_RATE)
        warps.append(time.perf_counter() - t0)
    result = {
        "espeak_10_words_median_ms": round(float(np.median(times)) * 1000, 1),
        "espeak_audio_s": round(utterance.duration_s, 2),
        "opus_encode_ms_per_audio_s": round(opus_per_s * 1000, 1),
        "alignment_median_ms": round(float(np.median(warps)) * 1000, 1),
        "alignment_reference_s": round(reference.duration_s, 2),
        "alignment_target_s": round(len(target) / SAMPLE_RATE, 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
