"""Turn eSpeak NG's synthesis events into phoneme and word timing (pure, no library calls).

Positions come from each event's ``sample`` field (the sample index in the output, exact), which
eSpeak also reports rounded down to milliseconds as ``audio_position``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from townhall.server.clone.speech import PhonemeEvent, WordEvent

PRIMARY_STRESS = "'"
SECONDARY_STRESS = ","
PAUSE_PREFIX = "_"


@dataclass(frozen=True, slots=True)
class RawWord:
    """An espeakEVENT_WORD: where a word of the text starts being spoken."""

    sample: int
    text_position: int  # 1-based character index into the text, as eSpeak counts it
    length: int


@dataclass(frozen=True, slots=True)
class RawPhoneme:
    """An espeakEVENT_PHONEME: a phoneme mnemonic, with stress marks, and where it starts."""

    sample: int
    mnemonic: str


RawEvent = RawWord | RawPhoneme


def is_pause(phoneme: str) -> bool:
    """eSpeak's pause phonemes (``_``, ``_:``, ``_!`` ...): silence, mouth at rest."""
    return phoneme.startswith(PAUSE_PREFIX)


def split_stress(mnemonic: str) -> tuple[str, bool]:
    """``'oU`` -> (``oU``, True). Only primary stress counts; secondary (``,``) is dropped."""
    stressed = PRIMARY_STRESS in mnemonic
    name = mnemonic.replace(PRIMARY_STRESS, "").replace(SECONDARY_STRESS, "")
    return (name or mnemonic), stressed


def build_timeline(
    events: list[RawEvent], text: str, sample_rate: int, n_samples: int
) -> tuple[tuple[PhonemeEvent, ...], tuple[WordEvent, ...]]:
    """Phonemes (each lasting until the next one starts) and words of the input text."""
    phoneme_events = [e for e in events if isinstance(e, RawPhoneme)]
    starts = [min(max(e.sample, 0), n_samples) for e in phoneme_events]
    ends = [*starts[1:], n_samples]
    phonemes: list[PhonemeEvent] = []
    for event, start, end in zip(phoneme_events, starts, ends, strict=True):
        name, stressed = split_stress(event.mnemonic)
        phonemes.append(
            PhonemeEvent(
                start_s=start / sample_rate,
                duration_s=max(end - start, 0) / sample_rate,
                phoneme=name,
                stressed=stressed,
            )
        )
    return tuple(phonemes), _words(events, text, sample_rate, starts, ends)


def _words(
    events: list[RawEvent],
    text: str,
    sample_rate: int,
    starts: list[int],
    ends: list[int],
) -> tuple[WordEvent, ...]:
    """One word per whitespace-separated token of the input, timed by eSpeak's word events.

    eSpeak's words do not map one to one onto the text: it splits "3,500" into sub-words (merged
    back here), speaks "of the" as one word (the time is shared out by letters), and misreports
    lengths (``don't`` is 3 characters), so word texts come from the input tokens instead.
    """
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    timed: dict[int, tuple[int, int]] = {}  # token index -> (start sample, end sample)
    phoneme_index = 0
    for i, event in enumerate(events):
        if isinstance(event, RawPhoneme):
            phoneme_index += 1
            continue
        token = _token_at(tokens, event.text_position - 1)
        if token is None:
            continue
        # The word's phonemes are the spoken ones up to the next word event.
        owned: list[int] = []
        k = phoneme_index
        for later in events[i + 1 :]:
            if isinstance(later, RawWord):
                break
            if not is_pause(later.mnemonic):
                owned.append(k)
            k += 1
        start, end = (starts[owned[0]], ends[owned[-1]]) if owned else (event.sample, event.sample)
        if token in timed:
            start, end = min(timed[token][0], start), max(timed[token][1], end)
        timed[token] = (start, end)
    texts = [text[a:b] for a, b in tokens]
    groups: list[list[int]] = []  # a timed token followed by the untimed ones it spoke
    for n, token_text in enumerate(texts):
        if n in timed or not groups:
            groups.append([n])
        elif any(ch.isalnum() for ch in token_text):  # not a lone dash or bracket
            groups[-1].append(n)
    words: list[WordEvent] = []
    for group in groups:
        if group[0] not in timed:
            continue  # text before eSpeak's first word: nothing was said
        start, end = timed[group[0]]
        weights = [max(len(_clean_token(texts[n])), 1) for n in group]
        edges = np.cumsum([0, *weights]) / sum(weights) * (end - start) + start
        for n, a, b in zip(group, edges[:-1], edges[1:], strict=True):
            words.append(
                WordEvent(
                    start_s=float(a) / sample_rate,
                    duration_s=float(b - a) / sample_rate,
                    text=_clean_token(texts[n]),
                )
            )
    return tuple(words)


def _token_at(tokens: list[tuple[int, int]], index: int) -> int | None:
    for n, (start, end) in enumerate(tokens):
        if start <= index < end:
            return n
        if start > index:
            return n  # eSpeak pointed at the whitespace before a token
    return None


def _clean_token(token: str) -> str:
    """Strip surrounding punctuation and symbols; keep the token if nothing else is left."""

    def edge(ch: str) -> bool:
        return unicodedata.category(ch)[0] in "PS"

    start, end = 0, len(token)
    while start < end and edge(token[start]):
        start += 1
    while end > start and edge(token[end - 1]):
        end -= 1
    return token[start:end] or token
