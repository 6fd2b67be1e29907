"""Reading scene JSON strictly: positions for syntax errors, no silent surprises.

Python's json module quietly keeps the last of two equal keys and accepts
``NaN`` and ``Infinity``; both would turn an author's typo into a wrong hall,
so they are reported here with a pointer.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path
from typing import Any

from .errors import SceneError, pointer


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers keys it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    seen: list[str] = []
    for key, value in pairs:
        if key in obj and key not in seen:
            seen.append(key)
        obj[key] = value
    if seen:
        obj.duplicates = tuple(seen)
    return obj


def read_json(path: str | Path) -> object:
    """Parse a scene file; raise SceneError for unreadable or invalid JSON."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SceneError(source, "", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SceneError(source, "", f"not UTF-8 text (bad byte at offset {exc.start})") from exc
    try:
        return json.loads(text, object_pairs_hook=_object_pairs)
    except json.JSONDecodeError as exc:
        raise SceneError(
            source,
            "",
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from exc
    except RecursionError as exc:
        raise SceneError(source, "", "invalid JSON: nested too deeply") from exc


def json_hazards(data: object, source: str) -> list[SceneError]:
    """Duplicate keys and non-finite numbers, in document order."""
    errors: list[SceneError] = []
    stack: list[tuple[tuple[str | int, ...], object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(SceneError(source, pointer(*path), f"number must be finite, got {value}"))
        elif isinstance(value, dict):
            for key in getattr(value, "duplicates", ()):
                errors.append(
                    SceneError(
                        source, pointer(*path, key), f"duplicate key {key!r}; keys must be unique"
                    )
                )
            stack.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
    return errors


_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|NaN|-?Infinity")


def value_lines(text: str) -> dict[str, int]:
    """The 1-based line where each value starts, by JSON pointer; partial for broken JSON.

    Python's json module keeps no positions; an author reading ``hall.json:12`` finds the
    value at once, where a pointer alone means counting array elements by hand.
    """
    lines: dict[str, int] = {}
    n = len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, path: str) -> int:
        i = skip(i)
        lines.setdefault(path, text.count("\n", 0, i) + 1)
        c = text[i]
        if c == '"':
            return json.decoder.scanstring(text, i + 1)[1]  # type: ignore[attr-defined,no-any-return]
        if c in "{[":
            close, index = ("}" if c == "{" else "]"), 0
            i = skip(i + 1)
            while text[i] != close:
                if c == "{":
                    key, i = json.decoder.scanstring(text, skip(i) + 1)  # type: ignore[attr-defined]
                    i = skip(i) + 1  # the colon
                    i = value(i, pointer_join(path, key))
                else:
                    i = value(i, pointer_join(path, index))
                    index += 1
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
            return i + 1
        match = _SCALAR.match(text, i)
        if match is None:
            raise ValueError(f"unexpected {c!r}")
        return match.end()

    with contextlib.suppress(IndexError, ValueError):  # broken JSON: the lines found so far
        value(0, "")
    return lines


def pointer_join(path: str, key: str | int) -> str:
    return path + pointer(key)


def line_of(path: str | Path, ptr: str) -> int | None:
    """The line of the value at ``ptr`` in the file, or of its nearest enclosing value."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    lines = value_lines(text)
    while ptr not in lines and ptr:
        ptr = ptr.rsplit("/", 1)[0]
    return lines.get(ptr)
