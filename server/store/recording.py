"""The event's recording on disk: everything the room sent on stage and to the board, as sent.

One append-only file per server run, ``<folder>/<id>.threc``: a magic line, then entries,
each a big-endian u32 length and a msgpack array ``[kind, at_us, payload]``. ``at_us`` is the
room's media clock when the room shipped the payload (stage packets go out a stage lead
ahead of their own media time, as they did to every client). The first entry is the meta
(a map), the second the room's Keyframe when recording began; then sequenced events
(``EVENT``: the board's history, StageStart and StageEnd), the clone's stage packets
(``STAGE``) and live mics' packets (``LIVE``), all as the exact bytes clients got.

Nothing is rewritten, so a kill -9 loses at most what was not yet flushed, and a reader
stops at a torn last entry. A restart starts a new recording (the media clock restarts).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from townhall.protocol import codec
from townhall.protocol.messages import StageEnd, StagePacket, StageStart

MAGIC = b"townhall-recording 1\n"
SUFFIX = ".threc"
META, KEYFRAME, EVENT, STAGE, LIVE = 0, 1, 2, 3, 4
KINDS = (META, KEYFRAME, EVENT, STAGE, LIVE)
_LEN = struct.Struct(">I")
MAX_ENTRY = 1 << 24
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class RecordingError(ValueError):
    """No such recording, or a file that is not one."""


@dataclass(frozen=True, slots=True)
class Entry:
    kind: int
    at_us: int
    payload: bytes


@dataclass(frozen=True)
class Chapter:
    """One answer on stage: the question it answered and where it sits on the media clock."""

    answer: int
    question: int
    text: str
    label: str
    start_us: int
    end_us: int
    outcome: str = ""


@dataclass
class RecordingIndex:
    """What a player or a listing needs without reading the payloads twice."""

    id: str
    room: str
    started: float  # wall clock, seconds since the epoch
    start_us: int
    end_us: int
    bytes: int
    chapters: list[Chapter] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_us - self.start_us) / 1e6

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        return data


def valid_id(recording_id: str) -> bool:
    return bool(ID_PATTERN.match(recording_id))


def path_of(folder: str | Path, recording_id: str) -> Path:
    if not valid_id(recording_id):
        raise RecordingError(f"not a recording id: {recording_id!r}")
    return Path(folder) / f"{recording_id}{SUFFIX}"


class RecordingWriter:
    """Appends entries to one recording file; ``flush()`` hands them to the OS."""

    def __init__(self, folder: str | Path, recording_id: str, meta: dict[str, Any]) -> None:
        self.path = path_of(folder, recording_id)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raise RecordingError(f"recording {recording_id} exists already")
        self._file: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 (kept open)
        self._file.write(MAGIC)
        self.write(META, 0, json.dumps(meta).encode())
        self.flush()

    def write(self, kind: int, at_us: int, payload: bytes) -> None:
        if self._file is None:
            return
        body = _encoder.encode((kind, at_us, payload))
        self._file.write(_LEN.pack(len(body)) + body)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.flush()
            finally:
                file.close()

    @property
    def closed(self) -> bool:
        return self._file is None


def read_entries(path: str | Path) -> Iterator[Entry]:
    """Every whole entry of a recording, in order; a torn last entry (a kill -9) ends it."""
    with open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise RecordingError(f"{path}: not a townhall recording")
        while True:
            head = fh.read(_LEN.size)
            if len(head) < _LEN.size:
                return
            (size,) = _LEN.unpack(head)
            if size > MAX_ENTRY:
                return
            body = fh.read(size)
            if len(body) < size:
                return
            try:
                kind, at_us, payload = _decoder.decode(body)
            except (msgspec.MsgspecError, ValueError, TypeError):
                return
            yield Entry(int(kind), int(at_us), bytes(payload))


def parse_entries(data: bytes) -> Iterator[Entry]:
    """Every whole entry of a recording's bytes (as served at /recordings/ID.threc)."""
    if not data.startswith(MAGIC):
        raise RecordingError("not a townhall recording")
    pos = len(MAGIC)
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        if size > MAX_ENTRY or pos + _LEN.size + size > len(data):
            return
        body = data[pos + _LEN.size : pos + _LEN.size + size]
        pos += _LEN.size + size
        try:
            kind, at_us, payload = _decoder.decode(body)
        except (msgspec.MsgspecError, ValueError, TypeError):
            return
        yield Entry(int(kind), int(at_us), bytes(payload))


def whole_bytes(path: str | Path) -> bytes:
    """The file up to its last whole entry (what a player may parse)."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise RecordingError(f"{path}: not a townhall recording")
    end = pos = len(MAGIC)
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        if size > MAX_ENTRY or pos + _LEN.size + size > len(data):
            break
        pos += _LEN.size + size
        end = pos
    return data[:end]


def meta_of(path: str | Path) -> dict[str, Any]:
    for entry in read_entries(path):
        if entry.kind == META:
            meta: dict[str, Any] = json.loads(entry.payload)
            return meta
        break
    raise RecordingError(f"{path}: no meta entry")


def index(path: str | Path) -> RecordingIndex:
    """The recording's extent and its chapters (one per answer that went on stage)."""
    path = Path(path)
    meta = meta_of(path)
    start_us: int | None = None
    end_us = 0
    chapters: dict[int, Chapter] = {}
    for entry in read_entries(path):
        if entry.kind in (META, KEYFRAME):
            if entry.kind == KEYFRAME and start_us is None:
                start_us = entry.at_us
            continue
        if start_us is None:
            start_us = entry.at_us
        end_us = max(end_us, entry.at_us)
        if entry.kind in (STAGE, LIVE):
            packet = codec.decode_server(entry.payload)
            if isinstance(packet, StagePacket):
                end_us = max(end_us, packet.media_time_us + packet.duration_us)
                chapter = chapters.get(packet.answer)
                if chapter is not None and packet.speaker_slot < 0:
                    chapters[packet.answer] = _extend(chapter, packet)
            continue
        message = codec.decode_server(entry.payload)
        if isinstance(message, StageStart):
            chapters[message.answer] = Chapter(
                message.answer,
                message.question,
                message.question_text,
                message.label,
                message.media_start_us,
                message.media_start_us,
            )
        elif isinstance(message, StageEnd) and message.answer in chapters:
            old = chapters[message.answer]
            chapters[message.answer] = Chapter(
                old.answer,
                old.question,
                old.text,
                message.label,
                old.start_us,
                max(old.end_us, entry.at_us if message.outcome != "done" else old.end_us),
                message.outcome,
            )
    first = start_us if start_us is not None else 0
    return RecordingIndex(
        path.name.removesuffix(SUFFIX),
        str(meta.get("room", "")),
        float(meta.get("started", 0.0)),
        first,
        max(end_us, first),
        path.stat().st_size,
        sorted(chapters.values(), key=lambda c: c.start_us),
    )


def _extend(chapter: Chapter, packet: StagePacket) -> Chapter:
    end = packet.media_time_us + packet.duration_us
    if end <= chapter.end_us:
        return chapter
    return Chapter(
        chapter.answer,
        chapter.question,
        chapter.text,
        chapter.label,
        chapter.start_us,
        end,
        chapter.outcome,
    )


def list_recordings(folder: str | Path) -> list[RecordingIndex]:
    """Every readable recording in ``folder``, oldest first."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob(f"*{SUFFIX}")):
        try:
            found.append(index(path))
        except (RecordingError, OSError, msgspec.MsgspecError, ValueError):
            continue
    return sorted(found, key=lambda r: (r.started, r.id))
