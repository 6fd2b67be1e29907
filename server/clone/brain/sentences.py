"""Sentence splitting, whole texts or incrementally as a model streams text in.

Each sentence goes to the voice as soon as it is complete, so the splitter must decide at
the earliest moment: a sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing
quotes or brackets) followed by white space, unless the word before the full stop is an
abbreviation (``e.g.``, ``Dr.``, ``т. д.``, ``напр.``), an initial (``J.``) or a list
number at the start of a line. A blank line ends a sentence too. Overlong sentences are cut
at a comma so speech can start.
"""

from __future__ import annotations

import re

ABBREVIATIONS: frozenset[str] = frozenset(
    """
    mr mrs ms dr prof sr jr st vs etc e.g i.e eg ie inc ltd co corp dept approx est
    no nos fig vol p pp jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu
    fri sat sun a.m p.m am pm u.s u.k e.u ca cf al
    т д п ін інш напр див р рр ст тис млн млрд грн с пп проф доц акад вул м обл
    і т.д т.п т.ч зокр порівн
    """.split()
)

_END_RE = re.compile(r"(?:\.\.\.|[.!?…]+)[\"'»”’)\]]*(?=\s)")
_BLANK_RE = re.compile(r"\n\s*\n")
_WORD_BEFORE_RE = re.compile(r"([^\s\"'«“(\[]+)$")
_LIST_NUMBER_RE = re.compile(r"(?:^|\n)\s*\d{1,2}$")
MAX_SENTENCE = 240


def _is_boundary(text: str, end: int) -> bool:
    """Whether the terminal punctuation ending at ``end`` ends a sentence."""
    stop = text[end - 1]
    punct_start = end
    while punct_start > 0 and text[punct_start - 1] in ".!?…\"'»”’)]":
        punct_start -= 1
    if "." not in text[punct_start:end] or any(c in "!?…" for c in text[punct_start:end]):
        return True
    if text[punct_start:end].startswith("..."):
        return True
    before = text[:punct_start]
    if _LIST_NUMBER_RE.search(before):
        return False
    match = _WORD_BEFORE_RE.search(before)
    if not match:
        return stop != "."
    word = match.group(1).casefold().rstrip(".")
    if word in ABBREVIATIONS:
        return False
    # A single letter ("J. Smith") is an initial, unless it is a lone digit ending a sentence.
    return not (len(word) == 1 and word.isalpha())


class SentenceSplitter:
    """Feed text as it streams in; get back the sentences completed so far."""

    def __init__(self, max_length: int = MAX_SENTENCE) -> None:
        self._buffer = ""
        self._scan_from = 0
        self.max_length = max_length

    def feed(self, text: str) -> list[str]:
        """Append text; return the sentences it completed (stripped, non-empty)."""
        self._buffer += text
        done: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            sentence = self._buffer[:cut].strip()
            self._buffer = self._buffer[cut:].lstrip()
            self._scan_from = 0
            if sentence:
                done.append(sentence)
        return done

    def flush(self) -> list[str]:
        """The remaining text as a last sentence (at the end of the stream)."""
        rest = self._buffer.strip()
        self._buffer = ""
        self._scan_from = 0
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        buf = self._buffer
        for match in _END_RE.finditer(buf, self._scan_from):
            if _is_boundary(buf, match.end()):
                return match.end()
        blank = _BLANK_RE.search(buf)
        if blank:
            return blank.start()
        if len(buf) > self.max_length:
            comma = max(buf.rfind(", ", 0, self.max_length), buf.rfind("; ", 0, self.max_length))
            if comma > self.max_length // 3:
                return comma + 1
        # Nothing yet: later matches can only end beyond what has been scanned.
        self._scan_from = max(0, len(buf) - 4)
        return None


def split_sentences(text: str) -> list[str]:
    """Split a whole text into sentences."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()
