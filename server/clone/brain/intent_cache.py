"""A trained intent model on disk, so a server starts without scikit-learn.

Training imports scikit-learn and scipy (about 1.5 s of CPU) and fits for a second or
more; every ``townhall serve`` did both. The fitted vocabularies, IDF weights and
regression weights of both views of a question (whole, and without its frame words) are
plain arrays: they are written once to
``$TOWNHALL_CACHE_DIR/intent/<key>.npz`` (default ``~/.cache/townhall``) and loaded at the
next start. The key hashes everything the fit depends on: the examples and labels, the
code that trains and scores, and the scikit-learn release; a model that fits none of them
is simply not found, and one that cannot be read is trained again. Each change to the
examples (a persona's own, say) adds a model of 1 to 3 MB, so the folder keeps only the
``KEEP`` most recently used ones: a load marks its file used, a store removes the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "TOWNHALL_CACHE_DIR"
#: Bumped when the file's layout changes (2: two views, whole and frame-free).
FORMAT = 2
#: Models kept in the cache folder (the most recently used), enough for a few personas.
KEEP = 8
_CODE = tuple(Path(__file__).with_name(n) for n in ("intent.py", "intent_features.py", "frame.py"))
#: The views of a question a fit holds, as prefixes of the arrays in the file.
VIEWS = ("whole", "content")


@dataclass(frozen=True, slots=True)
class FittedModel:
    """What scoring needs of a fit: classes, two vocabularies, weights."""

    classes: tuple[str, ...]
    size: int
    char_terms: list[str]
    char_idf: np.ndarray
    word_terms: list[str]
    word_idf: np.ndarray
    coef: np.ndarray  # features x classes
    intercept: np.ndarray


@dataclass(frozen=True, slots=True)
class FittedViews:
    """One model per view of the question: ``whole``, and ``content`` (frame words
    dropped, :mod:`.frame`)."""

    whole: FittedModel
    content: FittedModel


def cache_dir(env: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """``$TOWNHALL_CACHE_DIR``, else ``$XDG_CACHE_HOME/townhall``, else ``~/.cache/townhall``."""
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "townhall"


def _sklearn_version() -> str:
    try:
        return importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def model_key(examples: Sequence[tuple[str, str]], known: Sequence[str]) -> str:
    """A hash of the examples, the labels, the training code and scikit-learn's release."""
    digest = hashlib.sha256()
    digest.update(f"format {FORMAT}\nsklearn {_sklearn_version()}\n".encode())
    for path in _CODE:
        digest.update(path.read_bytes())
    digest.update(json.dumps([list(known), [list(e) for e in examples]]).encode())
    return digest.hexdigest()[:32]


def _path(key: str, directory: Path | None) -> Path:
    return (directory or cache_dir()) / "intent" / f"{key}.npz"


def load(key: str, directory: Path | None = None) -> FittedViews | None:
    """The models cached under ``key``, or None when there are none or they cannot be read."""
    path = _path(key, directory)
    try:
        with np.load(path, allow_pickle=False) as data:
            whole, content = (_read(data, view) for view in VIEWS)
            model = FittedViews(whole, content)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # torn: refit
        log.warning("intent model cache %s unreadable (%s); training", path, exc)
        return None
    with contextlib.suppress(OSError):  # used now: kept by the next prune
        os.utime(path)
    return model


def _read(data: Any, view: str) -> FittedModel:
    return FittedModel(
        classes=tuple(str(c) for c in data[f"{view}_classes"]),
        size=int(data[f"{view}_size"]),
        char_terms=[str(t) for t in data[f"{view}_char_terms"]],
        char_idf=data[f"{view}_char_idf"].astype(np.float64),
        word_terms=[str(t) for t in data[f"{view}_word_terms"]],
        word_idf=data[f"{view}_word_idf"].astype(np.float64),
        coef=np.ascontiguousarray(data[f"{view}_coef"], dtype=np.float64),
        intercept=data[f"{view}_intercept"].astype(np.float64),
    )


def _arrays(view: str, model: FittedModel) -> dict[str, Any]:
    return {
        f"{view}_classes": np.array(model.classes),
        f"{view}_size": np.array(model.size),
        f"{view}_char_terms": np.array(model.char_terms, dtype=str),
        f"{view}_char_idf": model.char_idf,
        f"{view}_word_terms": np.array(model.word_terms, dtype=str),
        f"{view}_word_idf": model.word_idf,
        f"{view}_coef": model.coef,
        f"{view}_intercept": model.intercept,
    }


def store(key: str, model: FittedViews, directory: Path | None = None) -> None:
    """Write the model atomically (a rename), so a concurrent reader sees all or nothing.

    A cache that cannot be written costs the next start a training, nothing else.
    """
    path = _path(key, directory)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **_arrays("whole", model.whole), **_arrays("content", model.content))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("intent model cache %s not written (%s)", path, exc)
        return
    prune(path.parent, keep=path)


def prune(folder: Path, keep: Path, count: int = KEEP) -> None:
    """Remove all but the ``count`` most recently used models (``keep`` always stays)."""

    def used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile by another process's prune
            return 0.0

    models = sorted(folder.glob("*.npz"), key=used, reverse=True)
    for old in [m for m in models if m != keep][max(count - 1, 0) :]:
        with contextlib.suppress(OSError):
            old.unlink()
