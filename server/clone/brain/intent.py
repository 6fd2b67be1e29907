"""What a question is after, learnt from labelled examples rather than keyword lists.

Six intents: ``sensitive`` (pay, jobs, legal, deals, health, personal matters, rumours,
unpublished numbers, the persona's own sensitive topics), ``commitment`` (asks the clone
to promise), ``injection`` (orders aimed at the clone, also hidden in a question),
``about_clone``, ``off_topic`` and ``answerable``. The examples live in the repository
(``intents/<intent>.txt``, English, Ukrainian and Russian, ``lang<TAB>text`` a line) and a
persona may add its own in ``<persona>/intents/<intent>.txt``.

Model: scikit-learn, TF-IDF over character n-grams (2 to 5 letters, within words) plus
word unigrams and bigrams, and a logistic regression, twice: over the whole question and
over its content (frame words dropped, :mod:`.frame`); a question is sensitive only as
far as both views say so (:class:`IntentClassifier`). Character n-grams match across
inflections of Ukrainian and Russian and across paraphrases sharing word stems, need no
download and train in about a second; the fit is cached on disk (:mod:`.intent_cache`),
so a server starts without scikit-learn; prediction of one question is a fraction of a
millisecond. Text is :func:`~townhall.server.core.textnorm.fold`-ed first,
so look-alike letters and leetspeak reach the model undone.

The gate escalates when the three escalating intents together are likely enough (its
``RISK_*`` thresholds, calibrated on the train part of ``tests/data/judgment`` and checked
out of fold on these examples by ``bench/intent_cv.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from townhall.server.clone.brain import intent_cache
from townhall.server.clone.brain.frame import content
from townhall.server.clone.brain.intent_cache import FittedModel, FittedViews
from townhall.server.clone.brain.intent_features import (
    ANALYSERS,
    CHAR_NGRAMS,
    WORD_NGRAMS,
    Vocabulary,
)
from townhall.server.core.textnorm import fold

#: Languages the examples are written in; others are judged by the keyword floor only.
CLASSIFIED_LANGUAGES = frozenset({"en", "uk", "ru"})
INTENTS = ("sensitive", "commitment", "injection", "about_clone", "off_topic", "answerable")
ESCALATING = frozenset({"sensitive", "commitment", "injection"})
#: Escalate when P(sensitive) + P(commitment) + P(injection) reaches this.
ESCALATE_AT = 0.35
#: The logistic regression's inverse regularisation strength. 10 rather than 20: chosen
#: on the train and dev parts of the judgment set once the examples held more words of
#: two meanings (issue 12); at 20 two sensitive paraphrases (one of train, one of dev) fell
#: to a knowledge gap, at 5 a fifth of dev's harmless questions escalated.
REGULARISATION = 10.0
EXAMPLES_DIR = Path(__file__).with_name("intents")


@dataclass(frozen=True, slots=True)
class Intent:
    """The most likely intent, every intent's probability, and the escalation risk."""

    name: str
    probabilities: dict[str, float]
    #: The escalation risk the whole question alone gives (its shape and its content).
    shape_risk: float = 0.0
    #: How likely the question's content alone (frame words dropped) is sensitive.
    content_sensitive: float = 0.0

    @property
    def risk(self) -> float:
        """How likely the question must escalate: the escalating intents' share."""
        return sum(p for n, p in self.probabilities.items() if n in ESCALATING)

    @property
    def escalating(self) -> str:
        """The most likely of the escalating intents."""
        return max(ESCALATING, key=lambda n: (self.probabilities.get(n, 0.0), n))

    def describe(self) -> str:
        top = sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:3]
        views = f" (whole question {self.shape_risk:.2f}, content {self.content_sensitive:.2f})"
        return ", ".join(f"{n} {p:.2f}" for n, p in top) + views


def load_examples(directory: Path, labels: Sequence[str] = INTENTS) -> list[tuple[str, str]]:
    """``(text, intent)`` from ``directory/<intent>.txt``; ``#`` lines are comments."""
    examples: list[tuple[str, str]] = []
    if not directory.is_dir():
        return examples
    for intent in labels:
        path = directory / f"{intent}.txt"
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            _lang, sep, text = line.partition("\t")
            if not sep or not text.strip():
                raise ValueError(f"{path}:{number}: expected 'lang<TAB>text', got {line!r}")
            examples.append((text.strip(), intent))
    return examples


class _View:
    """One fitted model and how it reads a question (whole, or frame-free)."""

    def __init__(self, model: FittedModel, read: Callable[[str], str]) -> None:
        self.classes = model.classes
        self.read = read
        self.vocabularies = (
            Vocabulary(ANALYSERS["chars"], _index(model.char_terms), model.char_idf, 0),
            Vocabulary(
                ANALYSERS["words"],
                _index(model.word_terms),
                model.word_idf,
                len(model.char_terms),
            ),
        )
        self.coef = model.coef
        self.intercept = model.intercept

    def probabilities(self, text: str) -> np.ndarray:
        read = self.read(text)
        columns: list[int] = []
        values: list[float] = []
        for vocabulary in self.vocabularies:
            for column, value in vocabulary.features(read).items():
                columns.append(column)
                values.append(value)
        logits = self.intercept + np.asarray(values) @ self.coef[columns]
        exp = np.exp(logits - logits.max())
        return np.asarray(exp / exp.sum())


class IntentClassifier:
    """Two logistic regressions over character and word n-grams of the repository's
    labelled examples: one reads the whole question, one its content (frame words
    dropped, :mod:`.frame`).

    The whole question decides every intent (a request for a commitment or an order to
    the clone is mostly its frame: "can you promise", "ignore your rules"), but it is
    taken for sensitive only as far as its content is too: the sensitive probability is
    the smaller of the two views' (then all renormalised). So "will there be
    a hackathon again this year?" no longer escalates for sharing its frame with "will
    there be layoffs this year?": the frame-free view sees "hackathon" and nothing
    sensitive.

    Trained with scikit-learn (:func:`fit`), or loaded from the cache of an earlier fit
    (:mod:`.intent_cache`) without importing it; a question is scored by hand from the
    fitted vocabularies and weights (the same arithmetic), because the pipeline's
    per-call validation costs several milliseconds on a busy machine and the features of
    one question are few.
    """

    def __init__(self, model: FittedViews) -> None:
        if model.whole.classes != model.content.classes:
            raise ValueError("the two views of the intent model disagree on the intents")
        self.classes: tuple[str, ...] = model.whole.classes
        self.size = model.whole.size
        self._whole = _View(model.whole, fold)
        self._content = _View(model.content, prepare)
        self._sensitive = self.classes.index("sensitive") if "sensitive" in self.classes else -1

    @classmethod
    def train(
        cls,
        examples: Sequence[tuple[str, str]],
        known: Sequence[str] = INTENTS,
        cache: Path | None = None,
    ) -> IntentClassifier:
        """The model of these examples: from the cache (``cache`` or the default
        :func:`~.intent_cache.cache_dir`) when it holds this very fit, else fitted and
        cached."""
        check_examples(examples, known)
        key = intent_cache.model_key(examples, known)
        model = intent_cache.load(key, cache)
        if model is None:
            model = fit(examples)
            intent_cache.store(key, model, cache)
        return cls(model)

    def classify(self, text: str) -> Intent:
        whole = self._whole.probabilities(text)
        shape = sum(float(p) for c, p in zip(self.classes, whole, strict=True) if c in ESCALATING)
        evidence = 0.0
        if self._sensitive >= 0:
            evidence = float(self._content.probabilities(text)[self._sensitive])
            whole = whole.copy()
            whole[self._sensitive] = min(whole[self._sensitive], evidence)
            whole /= whole.sum()
        scores = {c: float(p) for c, p in zip(self.classes, whole, strict=True)}
        return Intent(max(scores, key=lambda c: scores[c]), scores, shape, evidence)

    def latency_ms(
        self, questions: Iterable[str], clock: Callable[[], float] = time.perf_counter
    ) -> list[float]:
        """Time of :meth:`classify` per question, in milliseconds (for the bench): wall
        time by default, or this thread's CPU time with ``clock=time.thread_time`` (what
        the work costs, without the waits of a crowded machine)."""
        times = []
        for q in questions:
            start = clock()
            self.classify(q)
            times.append((clock() - start) * 1000.0)
        return times

    @classmethod
    def for_directories(cls, *extra: Path) -> IntentClassifier:
        """The built-in examples plus any persona's own (trained once per set of paths)."""
        return _cached(tuple(str(p) for p in extra))


@lru_cache(maxsize=8)
def _cached(extra: tuple[str, ...]) -> IntentClassifier:
    examples = load_examples(EXAMPLES_DIR)
    for directory in extra:
        examples.extend(load_examples(Path(directory)))
    return IntentClassifier.train(examples)


def check_examples(examples: Sequence[tuple[str, str]], known: Sequence[str]) -> None:
    """Two intents at least, and none unknown."""
    labels = {intent for _, intent in examples}
    if len(labels) < 2:
        raise ValueError("intent examples need at least two intents")
    unknown = labels - set(known)
    if unknown:
        raise ValueError(f"unknown intents in examples: {sorted(unknown)}")


def fit(examples: Sequence[tuple[str, str]]) -> FittedViews:
    """Fit both views (whole question, frame-free) with scikit-learn (imported only here)."""
    return FittedViews(_fit_view(examples, fold), _fit_view(examples, prepare))


def _fit_view(examples: Sequence[tuple[str, str]], read: Callable[[str], str]) -> FittedModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion
    from threadpoolctl import threadpool_limits

    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True)
    words = TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, sublinear_tf=True)
    union = FeatureUnion([("chars", chars), ("words", words)])
    matrix = union.fit_transform([read(t) for t, _ in examples])
    model = LogisticRegression(C=REGULARISATION, max_iter=3000, class_weight="balanced")
    with threadpool_limits(1):  # BLAS threads fighting over 2 busy cores: 10x slower
        model.fit(matrix, [i for _, i in examples])
    classes = tuple(str(c) for c in model.classes_)
    coef, intercept = model.coef_, model.intercept_
    if len(classes) == 2:  # one weight row for the second class: softmax over [0, z]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    char_terms = sorted(chars.vocabulary_, key=chars.vocabulary_.__getitem__)
    word_terms = sorted(words.vocabulary_, key=words.vocabulary_.__getitem__)
    return FittedModel(
        classes=classes,
        size=len(examples),
        char_terms=[str(t) for t in char_terms],
        char_idf=np.asarray(chars.idf_, dtype=np.float64),
        word_terms=[str(t) for t in word_terms],
        word_idf=np.asarray(words.idf_, dtype=np.float64),
        coef=np.ascontiguousarray(coef.T, dtype=np.float64),
        intercept=np.asarray(intercept, dtype=np.float64).copy(),
    )


def prepare(text: str) -> str:
    """What the model reads of a question: folded (look-alikes and leetspeak undone), its
    frame words dropped (:mod:`.frame`)."""
    return content(fold(text))


def _index(terms: Sequence[str]) -> dict[str, int]:
    return {term: column for column, term in enumerate(terms)}
