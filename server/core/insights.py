"""Insights over one event and over time: the studio's numbers, grouped.

An *event* is what the lifecycle delimits (core/lifecycle.py): every ``control:event`` move
is kept in the audit with its time, and an ``open`` (ended -> doors) begins a new event in
the same room, so event n runs from the n-th ``open`` (the store's beginning for the first)
to the next. Its ``live`` and ``ended`` times are the first ``start`` and ``end`` moves in
it. *Over time* groups the same facts by UTC day and by ISO week. Each group counts the
answers by label, the most-cited topics (the topics of the statements an answer cited),
the escalations by reason, and the knowledge gaps (escalated for ``no_material``).
Pure: the store hands the rows over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GAP_REASON = "no_material"
TOP = 8


@dataclass(frozen=True, slots=True)
class AnswerFact:
    time: float
    label: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EscalationFact:
    time: float
    question_id: int
    question: str
    reason: str


@dataclass(frozen=True, slots=True)
class PhaseMove:
    time: float
    event: str  # open, start, hold, resume, end


@dataclass
class Group:
    """The numbers of one event, day or week."""

    key: str
    start: float = 0.0  # the first thing in it (an event: its opening)
    live: float = 0.0  # an event: when it went live (0: never)
    ended: float = 0.0  # an event: when it ended (0: not yet)
    labels: Counter[str] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    gaps: list[str] = field(default_factory=list)

    @property
    def answers(self) -> int:
        return sum(self.labels.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "start": self.start,
            "live": self.live,
            "ended": self.ended,
            "answers": self.answers,
            "escalations": sum(self.reasons.values()),
            "labels": dict(self.labels.most_common()),
            "topics": self.topics.most_common(TOP),
            "reasons": dict(self.reasons.most_common()),
            "gaps": self.gaps,
        }


def reason_kind(reason: str) -> str:
    """``budget:daily`` and ``budget:hourly`` are one reason on a chart."""
    return reason.split(":", 1)[0]


def day_of(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def week_of(t: float) -> str:
    year, week, _ = datetime.fromtimestamp(t, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def event_starts(moves: Iterable[PhaseMove]) -> list[float]:
    """When each event after the first began: the ``open`` moves, in time order."""
    return sorted(m.time for m in moves if m.event == "open")


def _event_index(starts: Sequence[float], t: float) -> int:
    n = 0
    for s in starts:
        if t >= s:
            n += 1
    return n


def _add(
    group: Group,
    answers: Iterable[AnswerFact],
    escalations: Iterable[EscalationFact],
    topic_of: Mapping[str, str],
) -> None:
    for a in answers:
        group.labels[a.label] += 1
        for topic in {topic_of[s] for s in a.sources if s in topic_of}:
            group.topics[topic] += 1
    for e in escalations:
        kind = reason_kind(e.reason)
        group.reasons[kind] += 1
        if kind == GAP_REASON and e.question not in group.gaps:
            group.gaps.append(e.question)


def _grouped(
    key: Callable[[float], str],
    answers: Sequence[AnswerFact],
    escalations: Sequence[EscalationFact],
    topic_of: Mapping[str, str],
) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for t in sorted([a.time for a in answers] + [e.time for e in escalations]):
        groups.setdefault(key(t), Group(key(t), start=t))
    for k, g in groups.items():
        _add(
            g,
            (a for a in answers if key(a.time) == k),
            (e for e in escalations if key(e.time) == k),
            topic_of,
        )
    return groups


def by_event(
    answers: Sequence[AnswerFact],
    escalations: Sequence[EscalationFact],
    moves: Sequence[PhaseMove],
    topic_of: Mapping[str, str],
) -> list[Group]:
    """One group per event, oldest first (an event with nothing in it still shows)."""
    starts = event_starts(moves)
    groups = [Group(f"event {i + 1}", start=s) for i, s in enumerate([0.0, *starts])]
    for m in sorted(moves, key=lambda m: m.time):
        g = groups[_event_index(starts, m.time)]
        if m.event == "start" and not g.live:
            g.live = m.time
        elif m.event == "end" and not g.ended:
            g.ended = m.time
    for i, g in enumerate(groups):
        _add(
            g,
            (a for a in answers if _event_index(starts, a.time) == i),
            (e for e in escalations if _event_index(starts, e.time) == i),
            topic_of,
        )
    first = groups[0]
    if not first.start:  # the first event began with the first thing that happened in it
        times = [a.time for a in answers] + [e.time for e in escalations]
        times += [m.time for m in moves]
        before = [t for t in times if not starts or t < starts[0]]
        first.start = min(before) if before else 0.0
    return groups


def insights(
    answers: Sequence[AnswerFact],
    escalations: Sequence[EscalationFact],
    moves: Sequence[PhaseMove],
    topic_of: Mapping[str, str],
) -> dict[str, Any]:
    """Everything /studio's Insights shows: all time, per event, per day, per week."""
    total = Group("all")
    _add(total, answers, escalations, topic_of)
    return {
        "events_by": "lifecycle: an event runs from an 'open' move (ended to doors) to the next",
        "all": total.to_json(),
        "events": [g.to_json() for g in by_event(answers, escalations, moves, topic_of)],
        "days": [g.to_json() for g in _grouped(day_of, answers, escalations, topic_of).values()],
        "weeks": [g.to_json() for g in _grouped(week_of, answers, escalations, topic_of).values()],
    }
