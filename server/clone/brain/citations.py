"""Statement citations in generated text: ``[S12]``, ``[S12, U03]``, ``[S12][S13]``.

The model is asked to cite the statements it uses. Citations must never be spoken or
captioned, and only ids of statements the model was actually given count as sources;
anything else it cites is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection

_CITATION_RE = re.compile(
    r"\s*[\[【]\s*([A-Za-z][\w-]{0,31}(?:\s*[,;]\s*[A-Za-z][\w-]{0,31})*)\s*[\]】]"
)
_ID_SPLIT_RE = re.compile(r"\s*[,;]\s*")
_MARKUP_RE = re.compile(r"[*_`#]+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,!?;:…])")


def extract_citations(text: str, allowed: Collection[str]) -> tuple[str, tuple[str, ...]]:
    """``(spoken text, cited ids that are in allowed)``; all citations removed from the text."""
    cited: list[str] = []

    def take(match: re.Match[str]) -> str:
        for sid in _ID_SPLIT_RE.split(match.group(1)):
            if sid in allowed and sid not in cited:
                cited.append(sid)
        return ""

    spoken = _CITATION_RE.sub(take, text)
    spoken = _MARKUP_RE.sub("", spoken)
    spoken = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", spoken)
    return " ".join(spoken.split()), tuple(cited)
