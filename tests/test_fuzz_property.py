"""Property: any malformed frame, in any state, from any role, through one process or with
fan-out workers, gets an Error with a code or a close with a reason, and never a traceback.

Hypothesis draws the frames (deep nesting bare or inside a real message of any type, staff
messages included; truncated, retyped, over-long, unknown, text, echo-bait strings), the
role and whether the connection has joined. The server runs for real on 127.0.0.1 in a
thread of its own; every log record of the test process and everything the fan-out
workers print is captured, and none may carry a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import POSE_BYTES
from townhall.protocol.messages import CLIENT_MESSAGES, Error, Join, Ping, Pong, Pose
from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import issue_token

from .conftest import SECRET, make_settings

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ROLES = ("attendee", "spectator", "moderator", "operator", "anonymous")
# What a malformed frame may be answered with: never INTERNAL, never a silent drop.
CODES = {
    ErrorCode.BAD_FRAME,
    ErrorCode.BAD_MESSAGE,
    ErrorCode.UNKNOWN_TYPE,
    ErrorCode.TOO_LARGE,
    ErrorCode.NOT_ALLOWED,
    ErrorCode.NOT_JOINED,
    ErrorCode.ALREADY_JOINED,
    ErrorCode.RATE_LIMITED,
    ErrorCode.FLOODING,
}


class Tracebacks(logging.Handler):
    """Every record that carries an exception, from any logger of this process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or (record.levelno >= logging.ERROR and "Traceback" in record.msg):
            self.records.append(record)


@dataclass
class LiveServer:
    srv: TownhallServer
    loop: asyncio.AbstractEventLoop
    worker_log: Path
    tracebacks: Tracebacks
    stop: threading.Event = field(default_factory=threading.Event)

    def worker_output(self) -> str:
        return self.worker_log.read_text(errors="replace")


@pytest.fixture(scope="module", params=[0, 2], ids=["one-process", "2-workers"])
def live(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    tmp = Path(tempfile.mkdtemp(prefix="townhall-fuzz-"))
    worker_log = tmp / "workers.log"
    settings_ = make_settings(
        tmp,
        server={"workers": request.param},
        limits={
            "max_rejects": 10_000,
            "messages_per_s": 10_000.0,
            "message_burst": 10_000,
            "connects_per_address_per_min": 0.0,  # a connection per example, all from 127.0.0.1
        },
    )
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            srv = TownhallServer(settings_)
            # The workers inherit fd 2 while they start: point it at a file they keep.
            saved = os.dup(2)
            with open(worker_log, "wb") as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    await srv.start()
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)
            stop = asyncio.Event()
            box["srv"], box["loop"], box["stop"] = srv, asyncio.get_running_loop(), stop
            ready.set()
            await stop.wait()
            await srv.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield LiveServer(box["srv"], box["loop"], worker_log, handler)
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(30)
    logging.getLogger().removeHandler(handler)


def nested(depth: int, leaf: Any = 1) -> bytes:
    return b"\x91" * depth + msgpack.packb(leaf)


def decodes(frame: bytes | str) -> bool:
    """Whether the frame is, by chance, a valid client message."""
    if isinstance(frame, str):
        return False
    try:
        codec.decode_client(frame, 1 << 20)
    except Exception:
        return False
    return True


@st.composite
def malformed(draw: st.DrawFn) -> bytes | str:
    """One frame no client may send (drawn frames that happen to be valid are skipped)."""
    frame = draw(_candidate())
    assume(not decodes(frame))
    return frame


@st.composite
def _candidate(draw: st.DrawFn) -> bytes | str:
    kind = draw(
        st.sampled_from(
            [
                "nested",
                "nested-field",
                "truncated",
                "retyped",
                "unknown",
                "text",
                "echo",
                "not-array",
                "extra",
                "random",
                "huge-length",
            ]
        )
    )
    cls = draw(st.sampled_from(CLIENT_MESSAGES))
    if kind == "nested":
        return nested(draw(st.integers(100, 8000)))
    if kind == "nested-field":  # a real type code, a field replaced by deep nesting
        fields = len(cls.__struct_fields__)
        at = draw(st.integers(0, max(0, fields - 1)))
        body = [cls.TYPE, *[0] * fields]
        head = msgpack.packb(body[: at + 1])[1:] if at + 1 < len(body) else b""
        prefix = bytes((0x90 | len(body),)) + b"".join(msgpack.packb(v) for v in body[: at + 1])
        del head
        rest = b"".join(msgpack.packb(v) for v in body[at + 2 :])
        return prefix + nested(draw(st.integers(50, 7000)), "x") + rest
    if kind == "truncated":  # a Pose as the headset sends it, or any type's fields
        pose = codec.encode(Pose(1, bytes(POSE_BYTES), 6))
        whole = draw(st.sampled_from([pose, msgpack.packb([cls.TYPE, 1, b"\x00" * 30, 6, "t", 0])]))
        return whole[: draw(st.integers(1, len(whole) - 1))]
    if kind == "retyped":
        values = st.one_of(
            st.none(),
            st.booleans(),
            st.floats(),
            st.binary(max_size=8),
            st.lists(INT64, max_size=3),
            st.dictionaries(st.text(max_size=3), INT64, max_size=2),
            st.integers(min_value=-(2**63), max_value=2**64 - 1),
        )
        n = len(cls.__struct_fields__)
        return msgpack.packb([cls.TYPE, *draw(st.lists(values, min_size=n, max_size=n))])
    if kind == "unknown":
        code = draw(
            st.integers(-(2**31), 2**31).filter(
                lambda c: c not in {m.TYPE for m in CLIENT_MESSAGES}
            )
        )
        return msgpack.packb([code, 1, 2])
    if kind == "text":
        return draw(st.text(max_size=50))
    if kind == "echo":  # strings a reason might echo: long, multi-byte, control characters
        bait = draw(st.sampled_from(["Ω" * 60, "€" * 80, "\u202e" * 40, "\x00\x1b[2J" * 20]))
        return msgpack.packb([cls.TYPE, 1, bait, bait, bait])
    if kind == "not-array":
        return msgpack.packb(
            draw(
                st.one_of(
                    INT64,
                    st.text(max_size=20),
                    st.binary(max_size=20),
                    st.dictionaries(INT64, INT64, max_size=3),
                )
            )
        )
    if kind == "extra":
        n = len(cls.__struct_fields__)
        return msgpack.packb([cls.TYPE, *([0] * (n + draw(st.integers(1, 5))))])
    if kind == "huge-length":
        return draw(
            st.sampled_from(
                [b"\xdd\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff", b"\x9f"]
            )
        )
    return draw(st.binary(min_size=1, max_size=200))


def token_for(role: str, n: int) -> str:
    if role == "anonymous":
        return ""
    return issue_token(
        SECRET, user_id=f"fz-{role}-{n}", name=f"F{n}", role=role, room="main", ttl_s=600
    )


def answer(ws: ClientConnection) -> tuple[str, Any]:
    """The server's answer to what was just sent: ('error', Error), ('close', (code, reason))
    or ('pong', None) when it let the frame pass without a word."""
    try:
        while True:
            data = ws.recv(timeout=10)
            if isinstance(data, str):
                continue
            message = codec.decode_server(data)
            if isinstance(message, Error):
                return "error", message
            if isinstance(message, Pong):
                return "pong", None
    except ConnectionClosed:
        return "close", (ws.close_code, ws.close_reason)


counter = iter(range(1, 10**9))


@settings(
    max_examples=int(os.environ.get("TOWNHALL_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=malformed(), role=st.sampled_from(ROLES), joined=st.booleans())
def test_malformed_frames_get_a_code_never_a_traceback(
    live: LiveServer, frame: bytes | str, role: str, joined: bool
) -> None:
    with connect(live.srv.ws_url, max_size=None, open_timeout=10, close_timeout=5) as ws:
        if joined:
            ws.send(codec.encode(Join(1, 1, token_for(role, next(counter)))))
            kind, first = answer_welcome(ws)
            assert kind == "welcome", first
        ws.send(frame)
        if joined:
            ws.send(codec.encode(Ping(1)))  # answered after the frame: a silent pass shows
        kind, got = answer(ws)
    if kind == "error":
        assert ErrorCode(got.code) in CODES, got
        assert got.reason
        if not joined:
            assert got.fatal
    elif kind == "close":
        code, reason = got
        assert code is not None and code not in (1006, 1011), got
        assert reason, got
    else:
        pytest.fail(f"the frame passed without an error: {frame!r:.200}")
    assert not live.tracebacks.records, [r.getMessage() for r in live.tracebacks.records]
    assert "Traceback" not in live.worker_output()
    assert live.srv.metrics.errors_sent.get("INTERNAL", 0) == 0


def answer_welcome(ws: ClientConnection) -> tuple[str, Any]:
    from townhall.protocol.messages import Welcome

    while True:
        data = ws.recv(timeout=10)
        message = codec.decode_server(data)  # type: ignore[arg-type]
        if isinstance(message, Welcome):
            return "welcome", message
        if isinstance(message, Error):
            return "error", message
