"""Whether a question asks for a figure, and whether a statement gives any.

"What exactly was revenue in the second quarter?" is not answered by a statement that the
quarter "was mixed": a question after a number is answered only by a statement that
states one. Retrieval drops statements without a figure for such questions, so a figure
question the statements cannot answer is a knowledge gap, or escalates when the intent
classifier sees some risk in it (unpublished numbers). English, Ukrainian and Russian.
"""

from __future__ import annotations

import re

_ASKS = re.compile(
    r"\b(?:exact(?:ly)?|precise(?:ly)?|percent(?:age)?s?|figures?|"
    r"in\s+(?:dollars|euros|pounds|hryvnias?)|to\s+the\s+(?:dollar|euro|cent)|"
    r"точн\w*|відсот\w*|процент\w*|цифр\w*)\b"
)
_NUMBER_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"fifty|hundred|thousand|million|billion|half|twice|dozen|"
    r"один|одна|два|дві|три|чотири|п'ять|шість|сім|вісім|дев'ять|десять|сто|тисяч\w*|"
    r"мільйон\w*|половин\w*|двічі|"
    r"две|четыре|пять|шесть|семь|восемь|девять|миллион\w*|дважды)\b"
)


def asks_for_figure(question: str) -> bool:
    """The question asks for a precise number: "exactly", "what percentage", "точна".

    "How much" and "скільки" alone are left out: "how much runway do we have?" is answered
    in words by the statement on runway."""
    return _ASKS.search(question.lower()) is not None


def states_figure(text: str) -> bool:
    """The text states a number, in digits or words."""
    low = text.lower()
    return any(c.isdigit() for c in low) or _NUMBER_WORDS.search(low) is not None
