"""The message catalog and codec: round trips, limits and precise rejections."""

from __future__ import annotations

import msgpack
import pytest

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.limits import MAX_CLIENT_FRAME_BYTES, POSE_BYTES
from townhall.protocol.messages import (
    BY_TYPE,
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Error,
    Hand,
    Join,
    Keyframe,
    Participant,
    Ping,
    Pose,
    Welcome,
)


def test_type_codes_are_unique_and_in_their_ranges() -> None:
    assert len(BY_TYPE) == len(CLIENT_MESSAGES) + len(SERVER_MESSAGES)
    assert all(1 <= c.TYPE <= 63 for c in CLIENT_MESSAGES)
    assert all(64 <= c.TYPE <= 127 for c in SERVER_MESSAGES)


def test_wire_shape_is_array_with_type_first() -> None:
    raw = msgpack.unpackb(codec.encode(Join(1, 1, "tok")))
    assert raw == [1, 1, 1, "tok", "", 0, ""]


@pytest.mark.parametrize(
    "message",
    [
        Join(1, 1, "t", "resume", 42, "unity/1.0"),
        Ping(-5),
        Pose(123, bytes(range(POSE_BYTES)), 6),
        Hand(True),
    ],
)
def test_client_round_trip(message: object) -> None:
    assert codec.decode_client(codec.encode(message)) == message  # type: ignore[arg-type]


def test_server_round_trip_with_nested_participants() -> None:
    kf = Keyframe(7, 1000, [Participant(3, "u3", "Ann", "attendee", 12, 1)], b"\x01\x02")
    assert codec.decode_server(codec.encode(kf)) == kf


def test_trailing_defaults_may_be_omitted() -> None:
    data = msgpack.packb([1, 1, 1, "tok"])
    assert codec.decode_client(data) == Join(1, 1, "tok")


def reason_of(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        codec.decode_client(data)
    return info.value


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xc1", ErrorCode.BAD_FRAME),  # never-used msgpack byte
        (b"", ErrorCode.BAD_FRAME),
        (msgpack.packb({"type": 1}), ErrorCode.BAD_MESSAGE),
        (msgpack.packb([]), ErrorCode.BAD_MESSAGE),
        (msgpack.packb(["join"]), ErrorCode.BAD_MESSAGE),
        (msgpack.packb([99]), ErrorCode.UNKNOWN_TYPE),
        (msgpack.packb([64, 1]), ErrorCode.UNKNOWN_TYPE),  # a server message sent by a client
        (msgpack.packb([2, "soon"]), ErrorCode.BAD_MESSAGE),
        (msgpack.packb([3, 0, b"short"]), ErrorCode.BAD_MESSAGE),
        (msgpack.packb([3, 0, bytes(POSE_BYTES), 256]), ErrorCode.BAD_MESSAGE),
        (msgpack.packb([4, True, "extra"]), ErrorCode.BAD_MESSAGE),
        (msgpack.packb([1, 1, 1, "x" * 5000]), ErrorCode.BAD_MESSAGE),
        (b"\x00" * (MAX_CLIENT_FRAME_BYTES + 1), ErrorCode.TOO_LARGE),
        (b"\x94\x01\x01\x01\xa1\xff", ErrorCode.BAD_MESSAGE),  # token not valid UTF-8
        (b"\xa2\xc3\x28", ErrorCode.BAD_MESSAGE),  # a bare invalid UTF-8 string
        (b"\x91" * 8_000 + b"\x01", ErrorCode.BAD_FRAME),  # nested deeper than the stack
        (b"\x94\x03\x01" + b"\x91" * 5_000 + b"\x01", ErrorCode.BAD_FRAME),  # inside a field
    ],
)
def test_rejections_carry_a_code_and_reason(data: bytes, code: ErrorCode) -> None:
    err = reason_of(data)
    assert err.code is code
    assert err.reason


def test_bad_field_names_the_message_and_ref() -> None:
    err = reason_of(msgpack.packb([2, "soon"]))
    assert "Ping" in err.reason
    assert err.about == 2


def test_error_message_encodes_code_reason_ref_fatal() -> None:
    e = Error(int(ErrorCode.NOT_ALLOWED), "no", 3, False)
    assert msgpack.unpackb(codec.encode(e)) == [65, 6, "no", 3, False, 0]


def test_welcome_rejects_unknown_role() -> None:
    data = msgpack.packb([64, 1, "main", 1, "u", "n", "pilot", -1, "r", 0, 0, 20])
    with pytest.raises(ProtocolError) as info:
        codec.decode_server(data)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert Welcome.NAME in info.value.reason
