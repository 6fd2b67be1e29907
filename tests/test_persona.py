"""Persona directories: the sample loads; every kind of mistake is reported precisely."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from townhall.server.clone.persona import (
    MESSAGE_KEYS,
    PersonaError,
    check_command,
    check_persona,
    load_persona,
    sample_persona_path,
)


def test_sample_persona_loads() -> None:
    persona = load_persona(sample_persona_path())
    assert persona.name == "Dana Reyes"
    assert persona.languages == ("en", "uk")
    assert persona.default_language == "en"
    en, uk = persona.statements_in("en"), persona.statements_in("uk")
    assert len(en) >= 40 and len(uk) >= 10
    assert len({s.id for s in persona.statements}) == len(persona.statements)
    assert {s.topic for s in en} >= {
        "strategy",
        "roadmap",
        "remote-work",
        "hiring",
        "culture",
        "security",
        "ai",
        "customers",
        "results",
    }
    assert persona.disclosure_for("en").startswith("I'm an AI clone of Dana Reyes")
    assert "ШІ-клон" in persona.disclosure_for("uk")
    assert persona.disclosure_for("de") == persona.disclosure_for("en")
    for lang in persona.languages:
        for key in MESSAGE_KEYS:
            assert persona.message(lang, key)
    assert persona.voice.espeak == {"en": "en-us+f3", "uk": "uk+f3"}
    assert persona.voice.openai_voice == "nova"
    assert {t.id for t in persona.sensitive_topics} >= {"ipo", "reorganisation"}
    s10 = persona.statement("S10")
    assert s10 is not None and s10.date == dt.date(2025, 1, 15) and s10.language == "en"
    assert persona.statement("nope") is None


def test_check_persona_ok_report() -> None:
    ok, report = check_persona(sample_persona_path())
    assert ok, report
    assert "OK" in report and "54 approved statements (en 42, uk 12)" in report


@pytest.fixture
def persona_dir(tmp_path: Path) -> Path:
    """A writable copy of the sample persona."""
    target = tmp_path / "p"
    shutil.copytree(sample_persona_path(), target)
    return target


def _add_statements(directory: Path, name: str, body: str) -> None:
    (directory / "statements" / name).write_text(body, encoding="utf-8")


def _issues(directory: Path) -> list[str]:
    with pytest.raises(PersonaError) as info:
        load_persona(directory)
    ok, report = check_persona(directory)
    assert not ok
    lines = [str(i) for i in info.value.issues]
    for line in lines:
        assert line in report
    return lines


def test_duplicate_id_names_both_files(persona_dir: Path) -> None:
    _add_statements(
        persona_dir,
        "zz.toml",
        '[[statement]]\nid = "S10"\ntopic = "x"\ndate = 2025-01-01\nlanguage = "en"\n'
        'text = "Again."\n',
    )
    assert _issues(persona_dir) == [
        "statements/zz.toml: statement[0] (S10).id: "
        "duplicate id 'S10' (first in statements/en.toml)"
    ]


def test_missing_fields_empty_text_bad_dates_unknown_language(persona_dir: Path) -> None:
    _add_statements(
        persona_dir,
        "zz.toml",
        """
[[statement]]
id = "X1"
date = 2025-02-01
language = "en"
text = "   "

[[statement]]
id = "X2"
topic = "t"
date = "2025/01/01"
language = "de"
text = "Hallo."

[[statement]]
id = "X3"
topic = "t"
date = 2025-01-01T10:00:00
language = "en"
text = "Fine."
colour = "blue"

[[statement]]
topic = "t"
language = "en"
text = "No id, no date."
""",
    )
    issues = _issues(persona_dir)
    assert "statements/zz.toml: statement[0] (X1).topic: missing" in issues
    assert "statements/zz.toml: statement[0] (X1).text: empty" in issues
    assert any(
        i.startswith("statements/zz.toml: statement[1] (X2).date: '2025/01/01'") for i in issues
    )
    assert (
        "statements/zz.toml: statement[1] (X2).language: unknown language 'de' "
        "(persona languages: en, uk)"
    ) in issues
    assert any(
        i.startswith("statements/zz.toml: statement[2] (X3).date: 2025-01-01T10:00:00 has a time")
        for i in issues
    )
    assert any(
        i.startswith("statements/zz.toml: statement[2] (X3).colour: unknown field") for i in issues
    )
    assert "statements/zz.toml: statement[3].id: missing" in issues
    assert "statements/zz.toml: statement[3].date: missing" in issues


def test_invalid_calendar_date_in_toml_is_a_toml_error(persona_dir: Path) -> None:
    # 2025-02-30 is not a TOML date at all, so the file fails to parse; the report says so.
    _add_statements(persona_dir, "zz.toml", '[[statement]]\nid = "X1"\ndate = 2025-02-30\n')
    (issue,) = _issues(persona_dir)
    assert issue.startswith("statements/zz.toml: -: not valid TOML")


def test_string_dates_accepted_and_checked(persona_dir: Path) -> None:
    _add_statements(
        persona_dir,
        "zz.toml",
        '[[statement]]\nid = "X1"\ntopic = "t"\ndate = "2025-03-01"\nlanguage = "en"\n'
        'text = "Ok."\n\n[[statement]]\nid = "X2"\ntopic = "t"\ndate = "2025-02-30"\n'
        'language = "en"\ntext = "Bad."\n',
    )
    assert _issues(persona_dir) == [
        "statements/zz.toml: statement[1] (X2).date: '2025-02-30' is not a valid date YYYY-MM-DD"
    ]


def test_persona_toml_errors(persona_dir: Path) -> None:
    toml = (persona_dir / "persona.toml").read_text(encoding="utf-8")
    toml = toml.replace('name = "Dana Reyes"\n', "")
    toml = toml.replace('languages = ["en", "uk"]', 'languages = ["en", "uk", "xx"]')
    toml = toml.replace('uk = "Я — ШІ-клон', 'fr = "Je suis', 1)
    toml = toml.replace("rate_wpm = 170", "rate_wpm = 5")
    (persona_dir / "persona.toml").write_text(toml, encoding="utf-8")
    issues = _issues(persona_dir)
    assert "persona.toml: persona.name: missing" in issues
    assert "persona.toml: persona.languages: unknown language 'xx' (known: en, uk)" in issues
    assert (
        "persona.toml: disclosure.fr: unknown language 'fr' (persona languages: en, uk)" in issues
    )
    assert "persona.toml: disclosure.uk: missing" in issues
    assert (
        "persona.toml: voice.rate_wpm: must be an integer 80..450 words per minute, got 5" in issues
    )


def test_missing_default_messages_and_bad_topics(persona_dir: Path) -> None:
    toml = (persona_dir / "persona.toml").read_text(encoding="utf-8")
    toml = toml.replace("[messages.en]\nescalated =", "[messages.en]\nescalatd =")
    toml = toml.replace('id = "ipo"', 'id = "IPO!"')
    (persona_dir / "persona.toml").write_text(toml, encoding="utf-8")
    issues = _issues(persona_dir)
    assert any(i.startswith("persona.toml: messages.en.escalatd: unknown message") for i in issues)
    assert (
        "persona.toml: messages.en.escalated: missing (the default language needs every message)"
        in issues
    )
    assert (
        "persona.toml: sensitive_topics[0].id: 'IPO!' must be lower-case letters, digits, - or _"
        in issues
    )


def test_topic_keywords_may_be_in_a_language_questions_come_in(persona_dir: Path) -> None:
    """Russian has no material in the sample persona, but employees ask in it: a topic's
    Russian keywords are kept (a question on it must reach the leader); a language
    nobody asks in is a typo, reported."""
    persona = load_persona(sample_persona_path())
    assert "ru" not in persona.languages
    closure = next(t for t in persona.sensitive_topics if t.id == "office_closure")
    assert closure.keywords["ru"]
    toml = (persona_dir / "persona.toml").read_text(encoding="utf-8")
    toml = toml.replace('ru = ["ipo",', 'fr = ["ipo",', 1)
    (persona_dir / "persona.toml").write_text(toml, encoding="utf-8")
    issues = _issues(persona_dir)
    assert (
        "persona.toml: sensitive_topics[0].keywords.fr: unknown language 'fr' (known: en, uk, ru)"
        in issues
    )


def test_missing_files(tmp_path: Path) -> None:
    assert _issues(tmp_path / "nope") == [f"{tmp_path / 'nope'}: -: not a directory"]
    (tmp_path / "empty").mkdir()
    assert _issues(tmp_path / "empty") == ["persona.toml: -: file not found"]


def test_no_statements(persona_dir: Path) -> None:
    for f in (persona_dir / "statements").glob("*.toml"):
        f.unlink()
    assert _issues(persona_dir) == ["statements/: -: no approved statements (statements/*.toml)"]
    shutil.rmtree(persona_dir / "statements")
    assert _issues(persona_dir) == ["statements/: -: missing directory"]


def test_check_command(persona_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_command(["check", str(sample_persona_path())]) == 0
    assert "OK" in capsys.readouterr().out
    _add_statements(persona_dir, "zz.toml", "[[statement]]\nid = 1\n")
    assert check_command([str(persona_dir)]) == 1
    err = capsys.readouterr().err
    assert "statements/zz.toml: statement[0].id: must be a string, got int" in err
    assert check_command([]) == 2
