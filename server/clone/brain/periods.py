"""Which periods a text names: quarters, halves of the year, years.

A statement about the first quarter does not answer a question about the second one, however
many words they share ("exact revenue for the second quarter?" once got the first-quarter
statement, labelled approved). Retrieval drops a statement that does not name the quarter
or half-year asked about, or names another year than the one asked (:func:`mismatch`).

English, Ukrainian and Russian; ordinals in words or digits ("Q2", "2nd quarter",
"другий квартал", "2-й квартал", "втором квартале"), years as four digits.
"""

from __future__ import annotations

import re

_ORDINALS: dict[int, str] = {
    1: r"first|1st|1|перш\w*|перв\w*|1-\w+",
    2: r"second|2nd|2|друг\w*|втор\w*|2-\w+",
    3: r"third|3rd|3|трет\w*|3-\w+",
    4: r"fourth|4th|4|четв[её]рт\w*|4-\w+",
}
_QUARTER = r"(?:quarter|qtr|квартал\w*)"
_HALF = r"(?:half|півріч\w*|полугоди\w*)"

_PATTERNS: list[tuple[str, int, re.Pattern[str]]] = []
for _n, _words in _ORDINALS.items():
    _PATTERNS.append(("quarter", _n, re.compile(rf"\b(?:{_words})\s+{_QUARTER}\b")))
    _PATTERNS.append(("quarter", _n, re.compile(rf"\bq{_n}\b")))
    _PATTERNS.append(("quarter", _n, re.compile(rf"\b{_QUARTER}\s+{_n}\b")))
    if _n <= 2:
        _PATTERNS.append(("half", _n, re.compile(rf"\b(?:{_words})\s+{_HALF}\b")))
        _PATTERNS.append(("half", _n, re.compile(rf"\bh{_n}\b")))
_YEAR = re.compile(r"\b(?:fy)?((?:19|20)\d\d)\b")


def periods(text: str) -> frozenset[tuple[str, int]]:
    """The periods ``text`` names, as (kind, number): ("quarter", 2), ("year", 2025)."""
    low = text.lower()
    found = {(kind, n) for kind, n, pattern in _PATTERNS if pattern.search(low)}
    found |= {("year", int(m.group(1))) for m in _YEAR.finditer(low)}
    return frozenset(found)


#: Kinds of period a statement must name to answer a question about one: how "every
#: quarter" goes says nothing about how the third quarter went. Years are only checked for
#: a clash, since statements say "this year" rather than the number.
MUST_NAME = frozenset({"quarter", "half"})


def mismatch(question: frozenset[tuple[str, int]], statement: frozenset[tuple[str, int]]) -> bool:
    """The statement does not speak of the quarter or half asked about, or names another year."""
    for kind in {k for k, _ in question}:
        asked = {n for k, n in question if k == kind}
        stated = {n for k, n in statement if k == kind}
        if (stated or kind in MUST_NAME) and not asked & stated:
            return True
    return False
