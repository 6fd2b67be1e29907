"""``townhall persona import|export``: a persona folder's statements in and out of the store.

The store is where statements live (versions, authors, review dates); the folder format
(``personas/FORMAT.md``) stays for review in git. Import makes the store match a folder:
new and changed statements get a new version, ones missing from the folder are retired.
Export writes the current, unretired versions back as ``statements/<language>.toml``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from townhall.server.clone.persona import load_persona
from townhall.server.clone.statements import IMPORT_AUTHOR, version_of
from townhall.server.store.records import StatementVersion
from townhall.server.store.sqlite import load_statements, write_now


class Statements(Protocol):
    """Where a persona's statements are kept: a SQLite file's path, or this (PostgreSQL)."""

    def load_statements(self, persona: str) -> list[StatementVersion]: ...

    def write_now(self, records: Sequence[StatementVersion]) -> None: ...


def _latest(db: str | Statements, persona: str) -> list[StatementVersion]:
    return load_statements(db, persona) if isinstance(db, str) else db.load_statements(persona)


_COMPARED = ("topic", "text", "language", "date", "tags", "review_by", "translations")


def import_folder(
    directory: str | Path, db: str | Statements, author: str = IMPORT_AUTHOR
) -> dict[str, int]:
    """Store the folder's statements; returns counts of added, changed, retired, unchanged."""
    persona = load_persona(directory)
    current = {v.id: v for v in _latest(db, persona.id)}
    now = time.time()
    out: list[StatementVersion] = []
    counts = {"added": 0, "changed": 0, "retired": 0, "unchanged": 0}
    for s in persona.statements:
        new = version_of(persona.id, s, author)
        old = current.get(s.id)
        if old is None:
            out.append(new)
            counts["added"] += 1
        elif old.retired or any(getattr(old, f) != getattr(new, f) for f in _COMPARED):
            out.append(_next(new, old, now))
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
    listed = {s.id for s in persona.statements}
    for old in current.values():
        if old.id not in listed and not old.retired:
            out.append(_next(old, old, now, retired=True, author=author))
            counts["retired"] += 1
    if isinstance(db, str):
        write_now(db, out)
    else:
        db.write_now(out)
    return counts


def _next(
    new: StatementVersion,
    old: StatementVersion,
    now: float,
    *,
    retired: bool = False,
    author: str = "",
) -> StatementVersion:
    return StatementVersion(
        new.persona, new.id, old.version + 1, new.topic, new.text, new.language, new.date,
        new.tags, author or new.author, now, new.review_by, new.translations, new.supersedes,
        retired,
    )  # fmt: skip


def export_folder(source: str | Path, db: str | Statements, directory: str | Path) -> int:
    """Write ``directory`` as a persona folder: ``source``'s persona.toml (and other files)
    plus the store's current statements; returns how many statements were written."""
    persona = load_persona(source)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if Path(source).resolve() != out.resolve():
        for item in Path(source).iterdir():
            if item.name != "statements":
                target = out / item.name
                if item.is_dir():
                    shutil.copytree(item, target, dirs_exist_ok=True)
                else:
                    shutil.copy2(item, target)
    folder = out / "statements"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.toml"):
        old.unlink()
    versions = [v for v in _latest(db, persona.id) if not v.retired]
    by_language: dict[str, list[StatementVersion]] = {}
    for v in versions:
        by_language.setdefault(v.language, []).append(v)
    for language, items in sorted(by_language.items()):
        (folder / f"{language}.toml").write_text(render(items, language), encoding="utf-8")
    return len(versions)


def render(items: Sequence[StatementVersion], language: str) -> str:
    lines = [
        f"# Approved statements ({language}), exported from the store; see ../../FORMAT.md.",
        "",
    ]
    for v in sorted(items, key=lambda v: v.id):
        lines += [
            "[[statement]]",
            f"id = {_s(v.id)}",
            f"topic = {_s(v.topic)}",
            f"date = {v.date}",
            f"language = {_s(v.language)}",
            f"tags = [{', '.join(_s(t) for t in v.tags)}]",
        ]
        if v.review_by:
            lines.append(f"review_by = {v.review_by}")
        if v.translations:
            lines.append(f"translations = [{', '.join(_s(t) for t in v.translations)}]")
        lines += [f"text = {_s(v.text)}", ""]
    return "\n".join(lines)


def _s(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)
