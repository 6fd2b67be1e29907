"""Checking a scene document against schema.json, with author-friendly reasons."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import (  # type: ignore[import-untyped]
    ValidationError,
    best_match,
    relevance,
)

from .errors import SceneError, pointer

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"


def scene_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the scene format; a fresh copy each call."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(scene_schema())


def schema_errors(data: object, source: str) -> list[SceneError]:
    """Every schema violation, the most relevant (jsonschema's best_match) first."""
    raw = list(_validator().iter_errors(data))
    if not raw:
        return []
    first = best_match(raw)
    ordered = [first, *sorted((e for e in raw if e is not first), key=_path_order)]
    errors: list[SceneError] = []
    seen: set[tuple[str, str]] = set()
    for error in ordered:
        for found in _convert(error, source):
            key = (found.pointer, found.reason)
            if key not in seen:
                seen.add(key)
                errors.append(found)
    return errors


def _path_order(error: ValidationError) -> tuple[Any, ...]:
    return tuple((isinstance(p, str), str(p).zfill(10)) for p in error.absolute_path)


def _convert(error: ValidationError, source: str) -> Iterable[SceneError]:
    path = tuple(error.absolute_path)
    keyword = error.validator
    if keyword in ("anyOf", "oneOf") and error.context:
        # For "integer or array" choices, explain the branch the value's type
        # matched; if none matched, name the types that would have.
        matched = [e for e in error.context if e.validator != "type"]
        if matched:
            yield from _convert(max(matched, key=relevance), source)
        else:
            expected = _either([e.validator_value for e in error.context])
            yield SceneError(
                source, pointer(*path), f"expected {expected}, got {json_type(error.instance)}"
            )
        return
    if keyword == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance:
                yield SceneError(
                    source, pointer(*path, name), f"required field {name!r} is missing"
                )
        return
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        for name in error.instance:
            if name not in known:
                yield SceneError(source, pointer(*path, name), f"unknown field {name!r}")
        return
    yield SceneError(source, pointer(*path), _reason(error))


def _reason(error: ValidationError) -> str:
    keyword, value, instance = error.validator, error.validator_value, error.instance
    match keyword:
        case "type":
            return f"expected {_either([value])}, got {json_type(instance)}"
        case "const":
            return f"must be {_show(value)}, got {_show(instance)}"
        case "enum":
            return f"must be one of {', '.join(_show(v) for v in value)}; got {_show(instance)}"
        case "minimum":
            return f"must be >= {value}, got {instance}"
        case "maximum":
            return f"must be <= {value}, got {instance}"
        case "exclusiveMinimum":
            return f"must be > {value}, got {instance}"
        case "exclusiveMaximum":
            return f"must be < {value}, got {instance}"
        case "minItems" | "maxItems":
            schema = error.schema
            if schema.get("minItems") == schema.get("maxItems"):
                return f"expected exactly {value} items, got {len(instance)}"
            bound = "at least" if keyword == "minItems" else "at most"
            return f"expected {bound} {value} items, got {len(instance)}"
        case "minLength":
            return "must not be empty" if value == 1 else f"must be at least {value} characters"
        case "maxLength":
            return f"must be at most {value} characters, got {len(instance)}"
        case "pattern":
            return f"{_show(instance)} does not match the pattern {value}"
    return str(error.message)


def json_type(value: object) -> str:
    """The JSON name of a Python value's type, as an author would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _either(names: list[Any]) -> str:
    flat = [str(n) for group in names for n in (group if isinstance(group, list) else [group])]
    return " or ".join(flat)


def _show(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
