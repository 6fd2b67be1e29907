"""The leader's inbox: every escalated question and knowledge gap, until the leader acts.

Pure. Items are keyed by question (a question escalates once; a later escalation of the
same question replaces the item while it is open). Similar questions are grouped, so the
leader answers "when does the cafeteria open" once, not for every paraphrase: an item
joins the group of the first open item whose words overlap it enough.
"""

from __future__ import annotations

import re

import msgspec

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.limits import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, MAX_REASON_CHARS, clip
from townhall.protocol.messages import InboxItem, InboxState
from townhall.server.core.textnorm import fold
from townhall.server.store.records import EscalationRecorded, InboxResolved

#: Share of shared content words (Jaccard) from which two questions are one group.
GROUP_OVERLAP = 0.5
_SHORT = 3  # words this short carry little meaning ("the", "is", "we")


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"\w+", fold(text)) if len(w) > _SHORT)


class Inbox:
    """Open and resolved escalations, newest last."""

    def __init__(self) -> None:
        self.items: dict[int, InboxItem] = {}
        self._words: dict[int, frozenset[str]] = {}

    def add(self, e: EscalationRecorded, asker_id: str, asker_name: str) -> InboxItem:
        words = content_words(e.question)
        item = InboxItem(
            e.question_id,
            clip(e.question, MAX_QUESTION_CHARS),
            clip(e.reason, MAX_REASON_CHARS),
            clip(e.detail, MAX_REASON_CHARS),
            asker_id,
            asker_name,
            e.language,
            e.time,
            clip(e.said, MAX_ANSWER_CHARS),
            self._group(e.question_id, words),
        )
        self.items[e.question_id] = item
        self._words[e.question_id] = words
        return item

    def _group(self, question: int, words: frozenset[str]) -> int:
        for other in sorted(self.items):
            item = self.items[other]
            if other == question or item.state != "open" or not words:
                continue
            theirs = self._words.get(other, frozenset())
            if len(words & theirs) / len(words | theirs) >= GROUP_OVERLAP:
                return item.group
        return question

    def said(self, question: int, text: str) -> InboxItem | None:
        """What the clone said for an open item that has nothing yet (None: unchanged)."""
        item = self.items.get(question)
        if item is None or item.state != "open" or item.said or not text:
            return None
        item = msgspec.structs.replace(item, said=clip(text, MAX_ANSWER_CHARS))
        self.items[question] = item
        return item

    def open_item(self, question: int) -> InboxItem:
        item = self.items.get(question)
        if item is None:
            raise Refused(ErrorCode.NOT_FOUND, f"question {question} is not in the inbox")
        if item.state != "open":
            raise Refused(
                ErrorCode.CONFLICT,
                f"question {question} was already answered ({item.state}): {item.answer_text}",
            )
        return item

    def resolve(self, r: InboxResolved) -> InboxItem:
        item = self.items[r.question_id]
        state: InboxState = r.action if r.action in ("publish", "post", "asker") else "decline"  # type: ignore[assignment]
        done = msgspec.structs.replace(
            item, state=state, answer_text=clip(r.text, MAX_ANSWER_CHARS), answer=r.answer_id
        )
        self.items[r.question_id] = done
        return done

    def restore(self, rows: list[tuple[EscalationRecorded, InboxResolved | None]],
                askers: dict[int, tuple[str, str]]) -> None:  # fmt: skip
        """The inbox as the store left it."""
        for e, resolved in rows:
            asker = askers.get(e.question_id, ("", ""))
            self.add(e, *asker)
            if resolved is not None:
                self.resolve(resolved)

    def listed(self) -> list[InboxItem]:
        """Open items first (newest first), then the resolved ones."""
        items = sorted(self.items.values(), key=lambda i: -i.time)
        return [i for i in items if i.state == "open"] + [i for i in items if i.state != "open"]
