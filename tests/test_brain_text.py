"""Language detection, sentence splitting (whole and streamed) and citations."""

from __future__ import annotations

import pytest

from townhall.server.clone.brain.citations import extract_citations
from townhall.server.clone.brain.language import detect_language
from townhall.server.clone.brain.sentences import SentenceSplitter, split_sentences


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("What is our strategy?", "en"),
        ("Яка наша стратегія?", "uk"),
        ("Коли запуск?", "uk"),  # no і/ї/є/ґ: undecided Cyrillic falls back to uk
        ("Що з remote work?", "uk"),  # ties go to Cyrillic
        ("Чи можна користуватися ChatGPT на роботі?", "uk"),
        ("What does Дана think about AI?", "en"),
        ("Какая у нас стратегия?", "ru"),
        ("Как дела", "ru"),  # no Russian-only letters: function words decide
        ("Was ist unsere Strategie für dieses Jahr?", "de"),
        ("¿Cuál es nuestra estrategia?", "es"),
        ("我们的战略是什么", "zh"),
        ("ChatGPT?", "en"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_detect_language_default_when_no_letters() -> None:
    assert detect_language("123 ???") == "en"
    assert detect_language("", default="uk") == "uk"


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        (
            "We use tools, e.g. ChatGPT. Then we check.",
            ["We use tools, e.g. ChatGPT.", "Then we check."],
        ),
        ("Dr. Reyes said so. Next.", ["Dr. Reyes said so.", "Next."]),
        ("We aim for 99.9% uptime. Always.", ["We aim for 99.9% uptime.", "Always."]),
        ("We grew in 2024. Next year too.", ["We grew in 2024.", "Next year too."]),
        ("Ask J. Smith. He knows.", ["Ask J. Smith.", "He knows."]),
        ('She said "yes." Then left.', ['She said "yes."', "Then left."]),
        ("Wait... what? Really?!", ["Wait...", "what?", "Really?!"]),
        (
            "Плани, напр. мобільний застосунок. Далі — інше.",
            ["Плани, напр. мобільний застосунок.", "Далі — інше."],
        ),
        ("Книжки, курси і т. д. Усе це є.", ["Книжки, курси і т. д. Усе це є."]),
        ("Перше речення! Друге? Третє…", ["Перше речення!", "Друге?", "Третє…"]),
        ("Steps:\n1. Write it down.\n2. Share it.", ["Steps:\n1. Write it down.", "2. Share it."]),
        ("First paragraph\n\nSecond paragraph", ["First paragraph", "Second paragraph"]),
        ("It works [S10]. Yes [S11].", ["It works [S10].", "Yes [S11]."]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_streaming_emits_each_sentence_as_soon_as_it_ends() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("We are remote") == []
    assert splitter.feed("-first [S10].") == []  # could still be "e.g." style: wait for space
    assert splitter.feed(" Teams") == ["We are remote-first [S10]."]
    assert splitter.feed(" choose, e.") == []
    assert splitter.feed("g. office days. ") == ["Teams choose, e.g. office days."]
    assert splitter.feed("Bye") == []
    assert splitter.flush() == ["Bye"]
    assert splitter.flush() == []


def test_streaming_one_character_at_a_time_matches_whole_text() -> None:
    text = "Dr. Reyes spoke. We aim for 99.9% uptime [S41]! Is that all? Yes, i.e. for now. Done"
    splitter = SentenceSplitter()
    out: list[str] = []
    for ch in text:
        out += splitter.feed(ch)
    out += splitter.flush()
    assert out == split_sentences(text)
    assert len(out) == 5


def test_overlong_sentence_is_cut_at_a_comma() -> None:
    text = ", ".join(["a clause with several words"] * 20) + "."
    parts = split_sentences(text)
    assert len(parts) > 1 and all(len(p) <= 240 for p in parts)
    assert " ".join(parts).replace(" ,", ",") == text


def test_citations_are_stripped_and_only_known_ids_kept() -> None:
    allowed = {"S10", "S11", "U03"}
    assert extract_citations("We stay remote [S10].", allowed) == ("We stay remote.", ("S10",))
    assert extract_citations("Both [S10, S11] and [U03][S99].", allowed) == (
        "Both and.",
        ("S10", "S11", "U03"),
    )
    assert extract_citations("**Bold** claim [S42].", allowed) == ("Bold claim.", ())
    assert extract_citations("Без посилань.", allowed) == ("Без посилань.", ())
