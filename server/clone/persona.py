"""The persona: who the clone speaks for, how, and the only material it may answer from.

A persona is a directory (see ``personas/FORMAT.md``): ``persona.toml`` plus approved
statements in ``statements/*.toml``. Loading validates everything up front and reports
every problem at once, each as file, field and reason, so an operator can fix a persona
in one pass instead of discovering errors live on stage.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from townhall.server.clone.avatar.appearance import Appearance, parse_appearance

#: Languages the brain has text processing for (tokenising, stemming, policy keywords).
KNOWN_LANGUAGES: tuple[str, ...] = ("en", "uk")
#: Languages employees write questions in, material or not (Russian among Ukrainian
#: employees): a sensitive topic's keywords may be given in any of them, since a question
#: on the topic must reach the leader whatever language it comes in.
QUESTION_LANGUAGES: tuple[str, ...] = ("en", "uk", "ru")

#: Honest fixed sentences the clone says instead of answering; ``[messages.<lang>]`` keys.
MESSAGE_KEYS: tuple[str, ...] = (
    "escalated",  # sensitive topic, injection, commitment request
    "no_material",  # nothing approved fits the question
    "stopped",  # a generated answer was cut by the policy or the backend failed
    "language_unsupported",  # the question is in a language the persona has no material in
    "other_language",  # approved material exists, but only in another language
)

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
#: A disclosure-only language's code (two lowercase letters, ISO 639-1).
_LANG_CODE_RE = re.compile(r"^[a-z]{2}$")
_TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
_STATEMENT_FIELDS = {"id", "topic", "date", "text", "language", "tags", "review_by", "translations"}
_MAX_TEXT = 1200


class PersonaError(ValueError):
    """A persona directory that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[PersonaIssue], directory: str = "") -> None:
        self.issues = tuple(issues)
        self.directory = directory
        super().__init__("invalid persona:\n" + "\n".join(f"  {i}" for i in self.issues))


@dataclass(frozen=True, slots=True)
class PersonaIssue:
    """One problem: which file, which field, and why."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Statement:
    """An approved statement: the only text the clone may present as the leader's words."""

    id: str
    topic: str
    date: dt.date
    text: str
    language: str
    tags: tuple[str, ...] = ()
    source_file: str = ""
    review_by: dt.date | None = None  # after it the clone stops using it until re-approved
    translations: tuple[str, ...] = ()  # ids of the same statement in other languages


@dataclass(frozen=True, slots=True)
class SensitiveTopic:
    """A topic that always escalates; keywords per language (``word``, ``prefix*``, phrases)."""

    id: str
    keywords: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """How the clone sounds: an eSpeak NG voice per language, rate, pitch, OpenAI voice."""

    espeak: Mapping[str, str]
    rate_wpm: int = 165
    pitch: int = 50
    openai_voice: str = "alloy"


@dataclass(frozen=True)
class Persona:
    """A validated persona; build it with :func:`load_persona`."""

    id: str
    name: str
    title: str
    company: str
    style: str
    languages: tuple[str, ...]
    disclosure: Mapping[str, str]
    escalation_contact: str
    messages: Mapping[str, Mapping[str, str]]
    sensitive_topics: tuple[SensitiveTopic, ...]
    voice: VoiceSettings
    statements: tuple[Statement, ...]
    path: Path | None = None
    avatar_vrm: Path | None = None  # the persona's own model; None: built from appearance
    appearance: Appearance = field(default_factory=Appearance)
    #: ``[disclosure.about.<lang>]``: truthful answers about the clone itself (is it real,
    #: who trains it, is it recording), in the order written, per language.
    about_clone: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _by_id: dict[str, Statement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {s.id: s for s in self.statements})

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def statement(self, statement_id: str) -> Statement | None:
        return self._by_id.get(statement_id)

    def statements_in(self, language: str) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.language == language)

    def message(self, language: str, key: str) -> str:
        """A fixed honest sentence in ``language``, else in the default language."""
        table = self.messages.get(language) or self.messages[self.default_language]
        return table.get(key) or self.messages[self.default_language][key]

    def disclosure_for(self, language: str) -> str:
        return self.disclosure.get(language) or self.disclosure[self.default_language]

    def about_clone_for(self, language: str) -> tuple[tuple[str, str], ...]:
        """The persona's answers about the clone in ``language``, as ``(key, text)``."""
        return tuple(self.about_clone.get(language, ()))

    def speaks_about_itself_in(self, language: str) -> bool:
        """Whether the clone can say what it is in ``language``: a persona language, or a
        disclosure-only one (``[disclosure] ru`` and ``[disclosure.about.ru]``, so a
        Russian "are you real?" is answered truthfully in Russian while other Russian
        questions are declined for want of material)."""
        return language in self.languages or (
            language in self.disclosure and bool(self.about_clone.get(language))
        )


def sample_persona_path() -> Path:
    """The fictional sample persona shipped with the package, so the demo works offline."""
    return Path(__file__).with_name("personas") / "sample"


def load_persona(directory: str | Path) -> Persona:
    """Load and validate a persona directory; raises :class:`PersonaError` listing every issue."""
    persona, issues = _read(Path(directory))
    if issues or persona is None:
        raise PersonaError(issues, str(directory))
    return persona


def check_persona(directory: str | Path) -> tuple[bool, str]:
    """Validate a persona directory; ``(ok, human-readable report)``."""
    path = Path(directory)
    persona, issues = _read(path)
    if issues or persona is None:
        lines = [f"{path}: {len(issues)} problem(s)"]
        lines += [f"  {issue}" for issue in issues]
        return False, "\n".join(lines)
    counts = ", ".join(f"{lang} {len(persona.statements_in(lang))}" for lang in persona.languages)
    topics = ", ".join(t.id for t in persona.sensitive_topics) or "none"
    report = (
        f"{path}: OK\n"
        f"  {persona.name}, {persona.title}, {persona.company}\n"
        f"  {len(persona.statements)} approved statements ({counts})\n"
        f"  extra sensitive topics: {topics}"
    )
    return True, report


def check_command(argv: Sequence[str] | None = None) -> int:
    """``townhall persona check DIR``: print the report; exit status 0 when valid, 1 when not."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check"]:
        args = args[1:]
    if len(args) != 1:
        print("usage: townhall persona check DIR", file=sys.stderr)
        return 2
    ok, report = check_persona(args[0])
    print(report, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


# --- reading and validation -------------------------------------------------------------


class _Issues:
    """Collects issues for one file so every check can say exactly where it failed."""

    def __init__(self, out: list[PersonaIssue], file: str) -> None:
        self.out = out
        self.file = file

    def add(self, field_name: str, reason: str) -> None:
        self.out.append(PersonaIssue(self.file, field_name, reason))


def _read_toml(path: Path, rel: str, issues: list[PersonaIssue]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        issues.append(PersonaIssue(rel, "-", "file not found"))
    except tomllib.TOMLDecodeError as err:
        issues.append(PersonaIssue(rel, "-", f"not valid TOML: {err}"))
    except OSError as err:
        issues.append(PersonaIssue(rel, "-", f"cannot read: {err.strerror or err}"))
    return None


def _text(
    table: Mapping[str, Any], key: str, where: str, out: _Issues, *, required: bool = True
) -> str:
    value = table.get(key)
    name = f"{where}.{key}" if where else key
    if value is None:
        if required:
            out.add(name, "missing")
        return ""
    if not isinstance(value, str):
        out.add(name, f"must be a string, got {type(value).__name__}")
        return ""
    if required and not value.strip():
        out.add(name, "empty")
    return value.strip()


def _per_language(
    table: Any,
    where: str,
    languages: Sequence[str],
    out: _Issues,
    *,
    required: bool = True,
    also: Sequence[str] = (),
) -> dict[str, str]:
    """A ``{lang = "text"}`` table: strings only, known languages, every language if required
    (``also``: more languages allowed, never required: a persona's disclosure-only ones)."""
    result: dict[str, str] = {}
    if table is None:
        if required:
            out.add(where, "missing")
        return result
    if not isinstance(table, dict):
        out.add(where, "must be a table of language = text")
        return result
    for lang, value in table.items():
        if lang not in languages and lang not in also:
            out.add(
                f"{where}.{lang}",
                f"unknown language {lang!r} (persona languages: {', '.join(languages)})",
            )
        elif not isinstance(value, str) or not value.strip():
            out.add(f"{where}.{lang}", "must be a non-empty string")
        else:
            result[lang] = value.strip()
    if required:
        for lang in languages:
            if lang not in table:
                out.add(f"{where}.{lang}", "missing")
    return result


def _read(path: Path) -> tuple[Persona | None, list[PersonaIssue]]:
    issues: list[PersonaIssue] = []
    if not path.is_dir():
        return None, [PersonaIssue(str(path), "-", "not a directory")]
    data = _read_toml(path / "persona.toml", "persona.toml", issues)
    if data is None:
        return None, issues
    out = _Issues(issues, "persona.toml")
    for key in data:
        if key not in {
            "persona",
            "disclosure",
            "escalation",
            "messages",
            "sensitive_topics",
            "voice",
            "avatar",
            "appearance",
        }:
            out.add(key, "unknown table")

    head = data.get("persona")
    if not isinstance(head, dict):
        out.add("persona", "missing table [persona]")
        head = {}
    name = _text(head, "name", "persona", out)
    title = _text(head, "title", "persona", out)
    company = _text(head, "company", "persona", out)
    style = _text(head, "style", "persona", out)
    languages = _languages(head.get("languages"), out)

    disclosure_table = data.get("disclosure")
    about: dict[str, tuple[tuple[str, str], ...]] = {}
    about_table: Any = None
    if isinstance(disclosure_table, dict) and "about" in disclosure_table:
        disclosure_table = dict(disclosure_table)
        about_table = disclosure_table.pop("about")
    only = _disclosure_only(disclosure_table, about_table, languages)
    if about_table is not None:
        about = _about_clone(about_table, languages, out, extra=only)
    disclosure = _per_language(disclosure_table, "disclosure", languages, out, also=only)
    esc = data.get("escalation")
    if not isinstance(esc, dict):
        out.add("escalation", "missing table [escalation]")
        esc = {}
    contact = _text(esc, "contact", "escalation", out)
    messages = _messages(data.get("messages"), languages, out)
    topics = _topics(data.get("sensitive_topics", []), languages, out)
    voice = _voice(data.get("voice", {}), languages, out)
    avatar = _avatar(data.get("avatar", {}), path, out)
    appearance = parse_appearance(data.get("appearance"), out.add)

    statements = _statements(path, languages, issues)
    if not statements and not any(i.file.startswith("statements") for i in issues):
        issues.append(
            PersonaIssue("statements/", "-", "no approved statements (statements/*.toml)")
        )
    if issues:
        return None, issues
    persona = Persona(
        id=path.name,
        name=name,
        title=title,
        company=company,
        style=style,
        languages=languages,
        disclosure=disclosure,
        escalation_contact=contact,
        messages=messages,
        sensitive_topics=topics,
        voice=voice,
        statements=tuple(statements),
        path=path,
        avatar_vrm=avatar,
        appearance=appearance,
        about_clone=about,
    )
    return persona, issues


def _disclosure_only(disclosure: Any, about: Any, languages: Sequence[str]) -> tuple[str, ...]:
    """Languages with a disclosure but no material: ``[disclosure] ru`` *and*
    ``[disclosure.about.ru]``, so a question about the clone in them always has an answer.
    The clone says what it is in them, and nothing else. Only one of the two: the other
    is reported as an unknown language."""
    said = set(disclosure) if isinstance(disclosure, dict) else set()
    told = set(about) if isinstance(about, dict) else set()
    both = (said & told) - set(languages)
    return tuple(sorted(lang for lang in both if _LANG_CODE_RE.match(lang)))


def _about_clone(
    table: Any, languages: Sequence[str], out: _Issues, *, extra: Sequence[str] = ()
) -> dict[str, tuple[tuple[str, str], ...]]:
    """``[disclosure.about.<lang>]`` tables of ``key = "text"``: the same keys in every
    persona language, so the truth about the clone never depends on the language asked in."""
    where = "disclosure.about"
    if not isinstance(table, dict):
        out.add(where, "must be a table of [disclosure.about.<language>] tables")
        return {}
    result: dict[str, tuple[tuple[str, str], ...]] = {}
    for lang, facts in table.items():
        if lang not in languages and lang not in extra:
            out.add(
                f"{where}.{lang}",
                f"unknown language {lang!r} (persona languages: {', '.join(languages)})",
            )
            continue
        if not isinstance(facts, dict) or not facts:
            out.add(f"{where}.{lang}", "must be a non-empty table of key = text")
            continue
        good: list[tuple[str, str]] = []
        for key, text in facts.items():
            if not _TOPIC_RE.match(key):
                out.add(f"{where}.{lang}.{key}", "key must be lowercase letters, digits, - or _")
            elif not isinstance(text, str) or not text.strip():
                out.add(f"{where}.{lang}.{key}", "must be a non-empty string")
            else:
                good.append((key, text.strip()))
        result[lang] = tuple(good)
    keys = {key for facts in table.values() if isinstance(facts, dict) for key in facts}
    for lang in (*languages, *extra):
        facts = table.get(lang)
        missing = sorted(keys - set(facts)) if isinstance(facts, dict) else sorted(keys)
        for key in missing:
            out.add(f"{where}.{lang}.{key}", "missing (every language answers the same)")
    return result


def _avatar(value: Any, path: Path, out: _Issues) -> Path | None:
    """``[avatar] vrm = "clone.vrm"``: a VRM file inside the persona directory (optional)."""
    if not isinstance(value, dict):
        out.add("avatar", "must be a table")
        return None
    for key in value:
        if key != "vrm":
            out.add(f"avatar.{key}", "unknown field (only vrm)")
    name = value.get("vrm")
    if name is None:
        return None
    if not isinstance(name, str) or not name.endswith(".vrm"):
        out.add("avatar.vrm", "must be the name of a .vrm file in the persona directory")
        return None
    file = (path / name).resolve()
    if not file.is_relative_to(path.resolve()) or not file.is_file():
        out.add("avatar.vrm", f"no file {name} in the persona directory")
        return None
    return file


def _languages(value: Any, out: _Issues) -> tuple[str, ...]:
    if value is None:
        out.add("persona.languages", "missing")
        return ("en",)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        out.add("persona.languages", "must be a non-empty list of language codes")
        return ("en",)
    langs: list[str] = []
    for code in value:
        if code not in KNOWN_LANGUAGES:
            out.add(
                "persona.languages",
                f"unknown language {code!r} (known: {', '.join(KNOWN_LANGUAGES)})",
            )
        elif code in langs:
            out.add("persona.languages", f"{code!r} listed twice")
        else:
            langs.append(code)
    return tuple(langs) or ("en",)


def _messages(value: Any, languages: Sequence[str], out: _Issues) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        out.add("messages", "missing table [messages.<language>]")
        return {}
    result: dict[str, dict[str, str]] = {}
    for lang, table in value.items():
        where = f"messages.{lang}"
        if lang not in languages:
            out.add(where, f"unknown language {lang!r} (persona languages: {', '.join(languages)})")
            continue
        if not isinstance(table, dict):
            out.add(where, "must be a table")
            continue
        for key in table:
            if key not in MESSAGE_KEYS:
                out.add(f"{where}.{key}", f"unknown message (known: {', '.join(MESSAGE_KEYS)})")
        result[lang] = {k: _text(table, k, where, out) for k in MESSAGE_KEYS if k in table}
    default = languages[0] if languages else "en"
    for key in MESSAGE_KEYS:
        if key not in result.get(default, {}):
            out.add(
                f"messages.{default}.{key}", "missing (the default language needs every message)"
            )
    return result


def _topics(value: Any, languages: Sequence[str], out: _Issues) -> tuple[SensitiveTopic, ...]:
    if not isinstance(value, list):
        out.add("sensitive_topics", "must be an array of tables [[sensitive_topics]]")
        return ()
    topics: list[SensitiveTopic] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"sensitive_topics[{i}]"
        if not isinstance(item, dict):
            out.add(where, "must be a table")
            continue
        topic_id = _text(item, "id", where, out)
        if topic_id and not _TOPIC_RE.match(topic_id):
            out.add(f"{where}.id", f"{topic_id!r} must be lower-case letters, digits, - or _")
        if topic_id in seen:
            out.add(f"{where}.id", f"duplicate topic {topic_id!r}")
        seen.add(topic_id)
        kw = item.get("keywords")
        keywords: dict[str, tuple[str, ...]] = {}
        if not isinstance(kw, dict) or not kw:
            out.add(f"{where}.keywords", "missing: a table of language = [keywords]")
        else:
            for lang, words in kw.items():
                kwhere = f"{where}.keywords.{lang}"
                if lang not in languages and lang not in QUESTION_LANGUAGES:
                    known = ", ".join(dict.fromkeys((*languages, *QUESTION_LANGUAGES)))
                    out.add(kwhere, f"unknown language {lang!r} (known: {known})")
                elif (
                    not isinstance(words, list)
                    or not words
                    or not all(isinstance(w, str) and w.strip(" *") for w in words)
                ):
                    out.add(kwhere, "must be a non-empty list of non-empty strings")
                else:
                    keywords[lang] = tuple(w.strip().lower() for w in words)
        topics.append(SensitiveTopic(topic_id, keywords))
    return tuple(topics)


def _voice(value: Any, languages: Sequence[str], out: _Issues) -> VoiceSettings:
    if not isinstance(value, dict):
        out.add("voice", "must be a table")
        return VoiceSettings(espeak={})
    espeak = _per_language(value.get("espeak", {}), "voice.espeak", languages, out, required=False)
    rate = value.get("rate_wpm", 165)
    pitch = value.get("pitch", 50)
    if not isinstance(rate, int) or isinstance(rate, bool) or not 80 <= rate <= 450:
        out.add("voice.rate_wpm", f"must be an integer 80..450 words per minute, got {rate!r}")
        rate = 165
    if not isinstance(pitch, int) or isinstance(pitch, bool) or not 0 <= pitch <= 99:
        out.add("voice.pitch", f"must be an integer 0..99 (eSpeak pitch), got {pitch!r}")
        pitch = 50
    openai_voice = _text(value, "openai_voice", "voice", out, required=False) or "alloy"
    return VoiceSettings(espeak=espeak, rate_wpm=rate, pitch=pitch, openai_voice=openai_voice)


def _statements(
    path: Path, languages: Sequence[str], issues: list[PersonaIssue]
) -> list[Statement]:
    folder = path / "statements"
    if not folder.is_dir():
        issues.append(PersonaIssue("statements/", "-", "missing directory"))
        return []
    result: list[Statement] = []
    first_seen: dict[str, str] = {}
    for file in sorted(folder.glob("*.toml")):
        rel = f"statements/{file.name}"
        data = _read_toml(file, rel, issues)
        if data is None:
            continue
        out = _Issues(issues, rel)
        for key in data:
            if key != "statement":
                out.add(key, "unknown key (statements are [[statement]] tables)")
        items = data.get("statement", [])
        if not isinstance(items, list):
            out.add("statement", "must be an array of tables [[statement]]")
            continue
        for i, item in enumerate(items):
            stmt = _statement(item, i, rel, languages, out)
            if stmt is None:
                continue
            if stmt.id in first_seen:
                out.add(
                    f"statement[{i}] ({stmt.id}).id",
                    f"duplicate id {stmt.id!r} (first in {first_seen[stmt.id]})",
                )
                continue
            first_seen[stmt.id] = rel
            result.append(stmt)
    return result


def _statement(
    item: Any, i: int, rel: str, languages: Sequence[str], out: _Issues
) -> Statement | None:
    where = f"statement[{i}]"
    if not isinstance(item, dict):
        out.add(where, "must be a table")
        return None
    sid = item.get("id")
    if isinstance(sid, str) and sid:
        where = f"statement[{i}] ({sid})"
    before = len(out.out)
    for key in item:
        if key not in _STATEMENT_FIELDS:
            out.add(
                f"{where}.{key}", f"unknown field (fields: {', '.join(sorted(_STATEMENT_FIELDS))})"
            )
    sid = _text(item, "id", where, out)
    if sid and not _ID_RE.match(sid):
        out.add(
            f"{where}.id",
            f"{sid!r} must start with a letter and use letters, digits, - or _ (max 32)",
        )
    topic = _text(item, "topic", where, out)
    if topic and not _TOPIC_RE.match(topic):
        out.add(f"{where}.topic", f"{topic!r} must be lower-case letters, digits, - or _")
    text = _text(item, "text", where, out)
    if len(text) > _MAX_TEXT:
        out.add(f"{where}.text", f"too long ({len(text)} characters, max {_MAX_TEXT})")
    language = _text(item, "language", where, out)
    if language and language not in languages:
        out.add(
            f"{where}.language",
            f"unknown language {language!r} (persona languages: {', '.join(languages)})",
        )
    date = _date(item.get("date"), f"{where}.date", out)
    tags_raw = item.get("tags", [])
    tags: tuple[str, ...] = ()
    if not isinstance(tags_raw, list) or not all(
        isinstance(t, str) and t.strip() for t in tags_raw
    ):
        out.add(f"{where}.tags", "must be a list of non-empty strings")
    else:
        tags = tuple(t.strip().lower() for t in tags_raw)
    review_by = None
    if item.get("review_by") is not None:
        review_by = _date(item.get("review_by"), f"{where}.review_by", out)
    translations_raw = item.get("translations", [])
    translations: tuple[str, ...] = ()
    if not isinstance(translations_raw, list) or not all(
        isinstance(t, str) and _ID_RE.match(t) for t in translations_raw
    ):
        out.add(f"{where}.translations", "must be a list of statement ids")
    else:
        translations = tuple(translations_raw)
    if len(out.out) > before or date is None:
        return None
    return Statement(sid, topic, date, text, language, tags, rel, review_by, translations)


def _date(value: Any, where: str, out: _Issues) -> dt.date | None:
    if value is None:
        out.add(where, "missing")
        return None
    if isinstance(value, dt.datetime):
        out.add(where, f"{value.isoformat()} has a time; use a plain date YYYY-MM-DD")
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
        out.add(where, f"{value!r} is not a valid date YYYY-MM-DD")
        return None
    out.add(where, f"must be a date YYYY-MM-DD, got {type(value).__name__}")
    return None


if __name__ == "__main__":
    sys.exit(check_command())
