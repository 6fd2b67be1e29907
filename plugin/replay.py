"""A recorded event played back as if it were the room: the headset's replay source.

``RecordingClient`` stands in for :class:`RoomClient`: instead of a WebSocket it fetches one
recording over HTTP (``/recordings/ID.json`` for the chapters, ``/recordings/ID.threc`` for
the entries, with the room token) and hands every recorded message to the same ``_handle``
the live connection uses, on its recorded media time, so ``RoomState`` (the board), the
``StagePlayer`` (voice, mouth, captions, label) and the renderer see what a live client saw.
Its clock maps local time onto the recording's media clock; ``next_chapter`` moves that
clock to the next answer (everything in between is delivered at once, so the board is
right). Nothing is sent: a replay has no room to talk to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from townhall.protocol import codec
from townhall.protocol.limits import PROTOCOL_VERSION
from townhall.protocol.messages import Message, Welcome
from townhall.server.store.recording import KEYFRAME, META, Entry, RecordingError, parse_entries

from .client import RoomClient, local_us

log = logging.getLogger("townhall.plugin")

LEAD_US = 500_000  # a chapter skip lands this far before the answer's first word
TAIL_US = 1_000_000  # after the last entry: let the voice and captions finish


class RecordingUnavailable(ConnectionError):
    """The recording could not be fetched: unknown id, a refused token, no server."""


@dataclass(frozen=True, slots=True)
class ChapterMark:
    question: int
    text: str
    start_us: int


class ReplayClock:
    """Local time -> the recording's media clock: held at its start until ``play()`` (the
    headset opens its session and loads the model first), then running in real time."""

    synced = True
    offset_us = 0.0

    def __init__(self, media_us: int) -> None:
        self.playing = False
        self.set(media_us)

    def set(self, media_us: float) -> None:
        self._media0, self._local0 = float(media_us), float(local_us())

    def play(self) -> None:
        if not self.playing:
            self.playing = True
            self._local0 = float(local_us())

    def to_server(self, local: float) -> float:
        if not self.playing:
            return self._media0
        return self._media0 + (local - self._local0)


def http_base(ws_url: str) -> str:
    u = urllib.parse.urlsplit(ws_url)
    return f"{'https' if u.scheme == 'wss' else 'http'}://{u.netloc}"


def _get(url: str, what: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as err:
        try:
            reason = json.loads(err.read()).get("reason", "")
        except ValueError:
            reason = ""
        if err.code == 404:
            raise RecordingUnavailable(f"no recording {what} on the server") from err
        if err.code in (401, 403):
            raise RecordingUnavailable(
                f"the server refused the token for recording {what}: {reason or err.reason}"
            ) from err
        raise RecordingUnavailable(f"recording {what}: HTTP {err.code} {reason}") from err
    except (OSError, ValueError) as err:
        why = getattr(err, "reason", None) or err
        raise RecordingUnavailable(f"cannot fetch recording {what}: {why}") from err


def fetch_recording(
    ws_url: str, recording_id: str, token: str, timeout_s: float = 30.0
) -> tuple[dict[str, Any], list[Entry]]:
    """Blocking (call it in a thread): the recording's index and its entries."""
    base = http_base(ws_url)
    quoted = urllib.parse.quote(recording_id, safe="")
    query = "?" + urllib.parse.urlencode({"token": token})
    info = json.loads(_get(f"{base}/recordings/{quoted}.json{query}", recording_id, timeout_s))
    data = _get(f"{base}/recordings/{quoted}.threc{query}", recording_id, timeout_s)
    try:
        entries = list(parse_entries(data))
    except RecordingError as err:
        raise RecordingUnavailable(f"recording {recording_id}: {err}") from err
    if not isinstance(info, dict):
        raise RecordingUnavailable(f"recording {recording_id}: the server sent no index")
    return info, entries


class RecordingClient(RoomClient):
    """A RoomClient whose room is a recording: same state, same callbacks, no socket."""

    live = False

    def __init__(self, url: str, token: str, recording_id: str, **kwargs: Any) -> None:
        super().__init__(url, token, client_info="townhall-xr-replay/0.1", **kwargs)
        self.recording_id = recording_id
        self.entries: list[Entry] = []
        self.chapters: list[ChapterMark] = []
        self.end_us = 0
        self.replay_clock = ReplayClock(0)
        self.clock = self.replay_clock  # type: ignore[assignment]
        self.ended = False
        self.chapter_skips: list[ChapterMark] = []
        self.on_chapter: Callable[[ChapterMark], None] | None = None  # e.g. the terminal
        self._next = 0  # index of the next entry to deliver
        self._wake = asyncio.Event()
        self._feeder: asyncio.Task[None] | None = None

    async def connect(self, resume: bool = False) -> Welcome:
        info, self.entries = await asyncio.to_thread(
            fetch_recording, self.url, self.recording_id, self.token
        )
        self.chapters = [
            ChapterMark(int(c["question"]), str(c["text"]), int(c["start_us"]))
            for c in info.get("chapters", [])
        ]
        self.end_us = int(info.get("end_us", 0))
        start = int(info.get("start_us", 0))
        self.replay_clock.set(start)
        self._closed.clear()
        welcome = Welcome(
            PROTOCOL_VERSION, str(info.get("room", "")), 65535, "replay", "Replay", "spectator",
            -1, "", start, 0, 10,
        )  # fmt: skip
        self.welcome = welcome
        self._handle(welcome)
        self._feeder = asyncio.create_task(self._feed(), name="recording-feeder")
        return welcome

    def play(self) -> None:
        """Start the recording's clock (the first frame is about to be shown)."""
        self.replay_clock.play()
        self._wake.set()

    def _deliver(self, entry: Entry) -> None:
        if entry.kind == META:
            return
        try:
            message: Message = codec.decode_server(entry.payload)
        except Exception:  # a damaged entry: the rest still plays
            log.warning("skipping an unreadable entry at %d us", entry.at_us)
            return
        self._handle(message)

    async def _feed(self) -> None:
        """Every entry when the replay clock reaches its recorded time; then the tail."""
        try:
            while self._next < len(self.entries):
                now = self.replay_clock.to_server(local_us())
                entry = self.entries[self._next]
                if entry.at_us <= now or entry.kind == KEYFRAME:
                    self._next += 1
                    self._deliver(entry)
                    continue
                self._wake.clear()
                wait = (entry.at_us - now) / 1e6 if self.replay_clock.playing else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            last = max([self.end_us, *(e.at_us for e in self.entries[-1:])])
            while not self.replay_clock.playing or self.media_now() < last + TAIL_US:
                self._wake.clear()
                wait = (last + TAIL_US - self.media_now()) / 1e6
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), max(0.0, wait) if self.replay_clock.playing else None
                    )
            self.ended = True
        finally:
            self._closed.set()

    def media_now(self) -> float:
        return self.replay_clock.to_server(local_us())

    def next_chapter(self) -> ChapterMark | None:
        """Jump to the next answer's start (a little before it); None after the last."""
        now = self.media_now()
        for chapter in self.chapters:
            if chapter.start_us - LEAD_US > now + 1_000:
                self.replay_clock.set(chapter.start_us - LEAD_US)
                self.replay_clock.play()
                self.chapter_skips.append(chapter)
                if self.on_chapter is not None:
                    self.on_chapter(chapter)
                self._wake.set()
                return chapter
        return None

    # ---------------------------------------------------------------- nothing to send
    async def sync_clock(
        self, samples: int = 5, interval_s: float = 0.02, timeout_s: float = 0.0
    ) -> float:
        return 0.0

    async def send(self, message: Message) -> None:
        """A replay has no room to send to: votes and poses go nowhere."""

    async def send_pose(self, pose: bytes, flags: int = 0) -> None:
        pass

    async def raise_hand(self, raised: bool = True) -> None:
        """The raise button (A on the right controller) skips to the next chapter."""
        self.next_chapter()

    async def close(self) -> None:
        if self._feeder is not None and not self._feeder.done():
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder
        self._closed.set()

    async def leave(self) -> None:
        await self.close()
