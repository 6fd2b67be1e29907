"""Reading a MicOffer's SDP once, with the parser that acts on it (aiortc's).

The network policy must see exactly the candidates aiortc would add. aiortc splits SDP with
``str.splitlines``, which also breaks lines at VT, FF, FS, GS, RS, NEL, U+2028, U+2029 and
a lone CR or LF; a filter that split differently once let candidates past it. So the offer
is parsed by aiortc's own ``SessionDescription.parse``, the candidates are taken out of the
parsed description, and what goes to ``setRemoteDescription`` is that description written
back without them: the policy then adds each candidate itself, after restricting ICE.

SDP lines end with CRLF (RFC 8866 section 5); an offer with any other line break, or any
other control character than a tab, is refused outright (BAD_SDP), since it can only be a
mistake or an attempt to make two parsers disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCIceCandidate
from aiortc.sdp import SessionDescription

# Every character str.splitlines() breaks a line at (the Python docs' table), CR and LF
# included: after taking out the CRLF pairs, none may be left.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class BadOffer(ValueError):
    """An offer that cannot be used; the reason goes back to the client as BAD_SDP."""


@dataclass
class Offer:
    """An offer as aiortc reads it: the description without candidates, and the candidates."""

    sdp: str
    candidates: list[RTCIceCandidate]
    kinds: list[str]


def read_offer(text: str) -> Offer:
    """Parse ``text`` once; raises BadOffer for anything aiortc could read otherwise."""
    for line in text.split("\r\n"):
        for ch in line:
            if ch in LINE_BREAKS:
                raise BadOffer(f"SDP lines must end with CRLF, not U+{ord(ch):04X}")
            if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
                raise BadOffer(f"SDP must not contain the control character U+{ord(ch):04X}")
    try:
        description = SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises ValueError, KeyError, AssertionError, ...
        raise BadOffer(f"unusable offer: {type(exc).__name__}: {exc}"[:300]) from None
    candidates: list[RTCIceCandidate] = []
    for index, media in enumerate(description.media):
        for candidate in media.ice_candidates:
            candidate.sdpMid = media.rtp.muxId
            candidate.sdpMLineIndex = index
            candidates.append(candidate)
        media.ice_candidates = []
        media.ice_candidates_complete = False
    try:
        stripped = str(description)
    except Exception as exc:
        raise BadOffer(f"unusable offer: {type(exc).__name__}: {exc}"[:300]) from None
    return Offer(stripped, candidates, [m.kind for m in description.media])
