"""BM25 retrieval over approved statements, one index per language, with a fit threshold.

Every statement becomes a bag of terms: stems of its content words and tags plus the
lexicon's concept tags (``#remote``). BM25 ranks the statements. Whether the best one
*fits well enough* is a separate question that raw BM25 scores cannot answer (they grow
with the question's length), so each hit also gets a *confidence*: the share of the
question's content words the statement covers (by stem, or by a concept both mention),
each word weighted by its rarity (words of a lexicon concept ``CONCEPT_WEIGHT`` times
more: they are the curated topical words; words no statement knows at ``UNKNOWN_WEIGHT``
of the rarest). A question that is mostly about something else thus falls below the
threshold. A lone shared word that is not a lexicon concept never fits. A statement that
names another quarter, half-year or year than the question asks about never fits either
(:mod:`.periods`), nor one without a number to a question after a figure
(:mod:`.figures`).
Thresholds are calibrated in ``tests/test_brain_retrieval.py`` on labelled questions.

A question with no good fit in its own language (below ``OWN_SURE``) is also matched on
concepts alone against the other languages' statements (``cross_language``): stems never
match across languages, so the same coverage rule then counts only what the concepts
bridge. The other language's statement is said when nothing fits in the question's own,
or when it covers the question by ``CROSS_MARGIN`` more than the own-language fit.

A hyphenated word of a question also matches by its parts ("ШІ-клон" meets "клон"); a
statement's compounds stay whole ("home-office" says nothing about any office).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from townhall.server.clone.brain.figures import asks_for_figure, states_figure
from townhall.server.clone.brain.lexicon import build_lexicon
from townhall.server.clone.brain.matching import KeywordSet
from townhall.server.clone.brain.periods import mismatch, periods
from townhall.server.clone.brain.text import STOPWORDS, stem, words
from townhall.server.clone.persona import Persona, Statement

K1 = 1.2
B = 0.75
#: Confidence a statement in the question's language needs to count as an answer.
#: Calibrated on the train part of ``tests/data/judgment``: the highest value at which no
#: question labelled a knowledge gap gets an approved statement (0.45: one does), while
#: losing the fewest answerable ones (0.5 and up lose 7 and more of 64; 0.48 loses 4).
THRESHOLD = 0.48
#: Confidence a statement in another language needs (matched through concepts only).
CROSS_THRESHOLD = 0.5
#: An own-language fit this good is taken without looking at the other languages.
OWN_SURE = 0.7
#: Below it, a statement in another language is said instead when it covers the question
#: by this much more: a weak own-language fit on one shared concept ("нові функції" to
#: the new module) is a worse answer than a statement about the whole question. Chosen on
#: train and dev: at 0.1 and below, a sensitive train question ("will AI replace my
#: role?", in Ukrainian) counted as covered by the English statement on AI and was not
#: escalated; 0.15 to 0.25 give the same outcomes; 0.2 keeps a margin from that edge.
CROSS_MARGIN = 0.2
#: Weight of a question word no statement in the language knows, relative to the rarest.
UNKNOWN_WEIGHT = 0.5
#: Extra weight of a word that belongs to a lexicon concept: the curated topical words.
CONCEPT_WEIGHT = 1.5


@dataclass(frozen=True, slots=True)
class Hit:
    """A scored statement; ``confidence`` in [0, 1]; ``matched`` the shared terms."""

    statement: Statement
    score: float
    confidence: float
    matched: tuple[str, ...] = ()

    @property
    def strong(self) -> bool:
        """A lone shared word is weak evidence unless it is one of the lexicon's concepts."""
        return any(t.startswith("#") for t in self.matched) or len(self.matched) >= 2


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What fits a question: hits above the threshold, best first, and their language."""

    hits: tuple[Hit, ...]
    language: str
    cross_language: bool = False

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(h.statement.id for h in self.hits)


@dataclass(frozen=True, slots=True)
class _Word:
    stem: str
    concepts: frozenset[str]
    #: Stems of a hyphenated word's parts ("ші-клон": "ші", "клон"), which match too.
    parts: tuple[str, ...] = ()

    @property
    def stems(self) -> tuple[str, ...]:
        return (self.stem, *self.parts)


@dataclass(frozen=True, slots=True)
class Query:
    """A question analysed once: its content words and the concepts they belong to."""

    words: tuple[_Word, ...]
    concepts: tuple[str, ...]

    def terms(self, *, stems: bool = True) -> list[str]:
        found = [s for w in self.words for s in w.stems] if stems else []
        return list(dict.fromkeys(found + list(self.concepts)))


class _Index:
    """Okapi BM25 over one language's statements, plus the coverage confidence."""

    def __init__(self, docs: Sequence[tuple[Statement, list[str]]]) -> None:
        self.docs = [(s, Counter(terms), len(terms)) for s, terms in docs]
        self.n = len(self.docs)
        self.avgdl = (sum(n for _, _, n in self.docs) / self.n) if self.n else 1.0
        df: Counter[str] = Counter()
        for _, tf, _ in self.docs:
            df.update(tf.keys())
        self.idf = {t: self._idf(c) for t, c in df.items()}
        self.idf_unknown = self._idf(0)

    def _idf(self, df: int) -> float:
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))

    def _weight(self, word: _Word) -> float:
        known = [self.idf[c] for c in word.concepts if c in self.idf]
        if known:
            return CONCEPT_WEIGHT * max(self.idf.get(word.stem, 0.0), *known)
        known_stems = [self.idf[s] for s in word.stems if s in self.idf]
        if known_stems:
            return max(known_stems)
        return self.idf_unknown * UNKNOWN_WEIGHT

    def search(self, query: Query, *, stems: bool = True) -> list[Hit]:
        terms = [(t, self.idf[t]) for t in query.terms(stems=stems) if t in self.idf]
        if not terms:
            return []
        weights = [self._weight(w) for w in query.words]
        total = sum(weights)
        hits: list[Hit] = []
        for statement, tf, length in self.docs:
            score = 0.0
            matched: list[str] = []
            norm = K1 * (1.0 - B + B * length / self.avgdl)
            for term, idf in terms:
                f = tf.get(term)
                if f:
                    score += idf * f * (K1 + 1.0) / (f + norm)
                    matched.append(term)
            if score <= 0.0:
                continue
            covered = sum(
                wt
                for w, wt in zip(query.words, weights, strict=True)
                if (stems and any(s in tf for s in w.stems)) or any(c in tf for c in w.concepts)
            )
            hits.append(Hit(statement, score, covered / total if total else 0.0, tuple(matched)))
        hits.sort(key=lambda h: (-h.score, h.statement.id))
        return hits


class Retriever:
    """Finds the approved statements that answer a question, per language."""

    def __init__(
        self,
        statements: Sequence[Statement],
        *,
        extra_stopwords: Iterable[str] = (),
        lexicon: KeywordSet | None = None,
        threshold: float = THRESHOLD,
        cross_threshold: float = CROSS_THRESHOLD,
    ) -> None:
        self.lexicon = lexicon or build_lexicon()
        self.stopwords = STOPWORDS | {w for s in extra_stopwords for w in words(s)}
        self.threshold = threshold
        self.cross_threshold = cross_threshold
        concept_names = set(self.lexicon.names)
        by_lang: dict[str, list[tuple[Statement, list[str]]]] = {}
        self._periods: dict[str, frozenset[tuple[str, int]]] = {}
        self._figures = {s.id for s in statements if states_figure(s.text)}
        for s in statements:
            self._periods[s.id] = periods(" ".join((s.text, *s.tags)))
            query = self.analyse(" . ".join((s.text, *s.tags)))
            tagged = [f"#{t}" for t in (*s.tags, s.topic) if t in concept_names]
            # Whole words only: a statement's compounds are its own terms ("home-office"
            # is no answer to a question about any office).
            terms = [w.stem for w in query.words] + list(query.concepts) + tagged
            by_lang.setdefault(s.language, []).append((s, terms))
        self._indexes = {lang: _Index(docs) for lang, docs in by_lang.items()}

    @classmethod
    def from_persona(
        cls,
        persona: Persona,
        *,
        threshold: float = THRESHOLD,
        cross_threshold: float = CROSS_THRESHOLD,
    ) -> Retriever:
        """Index a persona's statements; its name and company are stop words in questions."""
        return cls(
            persona.statements,
            extra_stopwords=(persona.name, persona.company),
            threshold=threshold,
            cross_threshold=cross_threshold,
        )

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._indexes)

    def analyse(self, text: str) -> Query:
        """Content words with their stems and the concepts that cover them."""
        seq = words(text)
        covering: dict[int, set[str]] = {}
        concepts: list[str] = []
        for name, start, end in self.lexicon.spans(seq):
            concepts.append(f"#{name}")
            for i in range(start, end):
                covering.setdefault(i, set()).add(f"#{name}")
        qwords = tuple(
            self._word(w, covering.get(i, set()))
            for i, w in enumerate(seq)
            if w not in self.stopwords and (len(w) > 1 or w.isdigit())
        )
        return Query(qwords, tuple(dict.fromkeys(concepts)))

    def _word(self, word: str, concepts: set[str]) -> _Word:
        """One content word; a hyphenated one in a question also by its parts and their
        concepts, so "ші-клон" meets "клон" (the whole word still matches the whole:
        "on-call", "demand-planning")."""
        if "-" not in word:
            return _Word(stem(word), frozenset(concepts))
        parts = [p for p in word.split("-") if p not in self.stopwords and len(p) > 1]
        found = {f"#{name}" for name, _, _ in self.lexicon.spans(parts)}
        stems = tuple(dict.fromkeys(stem(p) for p in parts))
        return _Word(stem(word), frozenset(concepts | found), stems)

    def search(self, question: str, language: str) -> list[Hit]:
        """Statements in ``language`` sharing a term with the question, best first."""
        index = self._indexes.get(language)
        return index.search(self.analyse(question)) if index else []

    def search_concepts(self, question: str, target_language: str) -> list[Hit]:
        """Statements in ``target_language`` scored on the question's concepts only."""
        index = self._indexes.get(target_language)
        return index.search(self.analyse(question), stems=False) if index else []

    def find(self, question: str, language: str, *, limit: int = 3) -> Retrieval:
        """Statements that fit well enough: own language first, then other languages."""
        query = self.analyse(question)
        asked = periods(question)
        figure = asks_for_figure(question)

        def fits(hit: Hit, threshold: float) -> bool:
            # A statement about another quarter or year than the one asked is no answer, nor
            # one without any number to a question after a figure.
            sid = hit.statement.id
            return (
                _fits(hit, threshold)
                and not mismatch(asked, self._periods[sid])
                and not (figure and sid not in self._figures)
            )

        own: list[Hit] = []
        own_index = self._indexes.get(language)
        if own_index is not None:
            own = [h for h in own_index.search(query) if fits(h, self.threshold)]
            if own and own[0].confidence >= OWN_SURE:
                return Retrieval(tuple(own[:limit]), language)
        best: list[Hit] = []
        best_lang = language
        for other, index in self._indexes.items():
            if other == language:
                continue
            hits = [h for h in index.search(query, stems=False) if fits(h, self.cross_threshold)]
            if hits and (not best or hits[0].score > best[0].score):
                best, best_lang = hits, other
        if best and (not own or best[0].confidence >= own[0].confidence + CROSS_MARGIN):
            return Retrieval(tuple(best[:limit]), best_lang, cross_language=True)
        return Retrieval(tuple(own[:limit]), language)


def _fits(hit: Hit, threshold: float) -> bool:
    return hit.confidence >= threshold and hit.strong
