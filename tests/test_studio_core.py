"""The studio in the sans-I/O core: saves are acknowledged only once stored, undone if the
store refuses them, and a second save of a stale version is a CONFLICT even before the
first is stored."""

from __future__ import annotations

from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Error, StatementSave
from townhall.server.core.effects import Persist, StatementsChanged
from townhall.server.core.inbox import Inbox
from townhall.server.store.records import EscalationRecorded, StatementVersion

from .test_authority import join, make_room, sent_to, store_all

S1 = StatementVersion("sample", "S1", 1, "remote", "Remote stays.", "en", "2025-01-01", (),
                      "persona import", 0.0)  # fmt: skip


def studio_room():  # type: ignore[no-untyped-def]
    room = make_room()
    room.studio.load_statements("sample", ("en", "uk"), [S1])
    join(room, 1, "ann:operator")
    join(room, 2, "ben:operator")
    return room


def test_acknowledged_only_once_stored_and_the_clone_told_then() -> None:
    room = studio_room()
    room.receive(1, StatementSave(5, "S1", 1, "remote", "Two office days.", "en"), 1.0)
    (persist,) = room.effects()
    assert isinstance(persist, Persist) and not sent_to([persist], 1)
    released = store_all(room, [persist])
    assert any(isinstance(e, StatementsChanged) for e in released)
    (ack,) = [m for m in sent_to(released, 1) if isinstance(m, Ack)]
    assert ack.ref == 5 and ack.id == 2


def test_a_stale_save_conflicts_even_before_the_first_is_stored() -> None:
    room = studio_room()
    room.receive(1, StatementSave(5, "S1", 1, "remote", "Two office days.", "en"), 1.0)
    room.effects()
    room.receive(2, StatementSave(6, "S1", 1, "remote", "Office every day.", "en"), 1.1)
    error = next(m for m in sent_to(room.effects(), 2) if isinstance(m, Error))
    assert error.code == ErrorCode.CONFLICT and "Two office days." in error.reason


def test_a_refused_store_undoes_the_save() -> None:
    room = studio_room()
    room.receive(1, StatementSave(5, "S1", 1, "remote", "Two office days.", "en"), 1.0)
    (persist,) = room.effects()
    room.stored(persist, False)
    (error,) = sent_to(room.effects(), 1)
    assert isinstance(error, Error) and error.code == ErrorCode.STORE
    assert room.studio.book.current["S1"] == S1 and room.studio.history["S1"] == [S1]
    room.receive(2, StatementSave(6, "S1", 1, "remote", "Office every day.", "en"), 1.1)
    assert isinstance(next(iter(room.effects())), Persist)  # version 1 is the newest again


def test_bad_fields_are_refused_with_a_reason() -> None:
    room = studio_room()
    room.receive(1, StatementSave(5, "S1", 1, "Not A Topic", "x", "en"), 1.0)
    room.receive(1, StatementSave(6, "S1", 1, "remote", "x", "fr"), 1.0)
    room.receive(1, StatementSave(7, "S1", 1, "remote", "x", "en", review_by="soon"), 1.0)
    errors = [m for m in sent_to(room.effects(), 1) if isinstance(m, Error)]
    assert [e.code for e in errors] == [ErrorCode.BAD_MESSAGE] * 3
    assert "topic" in errors[0].reason and "fr" in errors[1].reason and "soon" in errors[2].reason


def test_similar_questions_are_grouped() -> None:
    inbox = Inbox()
    a = inbox.add(EscalationRecorded(1.0, 1, "When is the summer picnic?", "no_material", "en"),
                  "u1", "Sam")  # fmt: skip
    b = inbox.add(EscalationRecorded(2.0, 2, "When is the summer picnic this year?",
                                     "no_material", "en"), "u2", "Ann")  # fmt: skip
    c = inbox.add(EscalationRecorded(3.0, 3, "Are layoffs planned?", "sensitive_topic", "en"),
                  "u3", "Bo")  # fmt: skip
    assert (a.group, b.group, c.group) == (1, 1, 3)


def test_translations_are_linked_both_ways() -> None:
    from townhall.server.core.studio import info

    room = studio_room()
    room.receive(
        1, StatementSave(5, "U1", 0, "remote", "Віддалено.", "uk", translations=["S1"]), 1.0
    )
    store_all(room, list(room.effects()))
    book = room.studio.book
    assert info(book.current["S1"], 1.0, book).translations == ["U1"]
    assert info(book.current["U1"], 1.0, book).translations == ["S1"]
