"""The spectator page (/watch) in a real Chromium against a real server with the clone.

The page is driven like a viewer would (keys and clicks); Python clients play the
moderator and the audience. Pixels are read from screenshots (decoded here, no imaging
library needed); the page's `townhallDebug` hooks say where the clone's head and mouth
are on screen and what the audio output and the mouth are doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import time
import zlib
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt
import psutil
import pytest
from playwright.async_api import Browser, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Draft,
    Hand,
    Moderate,
    QuestionChanged,
    Review,
    StageStart,
    Vote,
)
from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import issue_token

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import SECRET, TokenMaker, make_settings
from .test_clone_stage import Viewer, clone_settings, wait_answer
from .waiting import eventually

BUILT = ("dist/watch.html", "dist/assets/watch.js", "dist/assets/watch-playout-worklet.js")
CLEAR = np.array([0x10, 0x13, 0x1A])  # the hall's clear colour (hall.js CLEAR_COLOR)

Pixels = npt.NDArray[np.uint8]


@pytest.fixture(scope="session", autouse=True)
def built_watch_page() -> None:
    """Build the pages with npm when dist/ is missing or older than the sources."""
    ensure_built("watch", BUILT)


# ---------------------------------------------------------------------- helpers


def png_pixels(data: bytes) -> Pixels:
    """RGB pixels (H, W, 3) of an 8-bit, non-interlaced PNG such as Chromium's screenshots."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        row = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, line = row[0], np.frombuffer(row[1:], dtype=np.uint8).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        else:  # Sub, Average, Paeth depend on the left neighbour: decode byte by byte
            cur = np.zeros(stride, dtype=np.int32)
            for x in range(stride):
                a = cur[x - channels] if x >= channels else 0
                b = prev[x]
                c = prev[x - channels] if x >= channels else 0
                if kind == 1:
                    p = a
                elif kind == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(height, width, channels)[:, :, :3].astype(np.uint8)


async def shot(page: Page, rect: dict[str, float] | None = None) -> Pixels:
    clip = None
    if rect is not None:
        clip = {k: float(rect[k]) for k in ("x", "y", "width", "height")}
    data = await page.screenshot(clip=clip, animations="allow")
    # Decoding is slow pure Python: in a thread, so the server in this process keeps time.
    return await asyncio.to_thread(png_pixels, data)


# What the held picture shows, in one call (one round trip to the page).
STILL = """() => {
  return {
    mouth: townhallDebug.mouthOpen(),
    weights: townhallDebug.mouthExpressions(),
    yaw: townhallDebug.headAndGazeYaw(),
    rect: townhallDebug.mouthScreenRect(),
    peak: townhallDebug.audioPeak(),
    captions: townhallDebug.captions,
    frame: townhallDebug.framesRendered,
  };
}"""
MOUTH_COLOUR = np.array([0x3A, 0x0C, 0x12])  # the mouth's interior (avatar.js)


def mouth_pixels(crop: Pixels) -> int:
    """How many pixels show the inside of the mouth."""
    return int((np.abs(crop.astype(np.int32) - MOUTH_COLOUR).sum(axis=2) < 40).sum())


# Questions the sample persona answers from its statements: more speech for more stills.
MORE_ANSWERS = (
    "How do we think about remote work?",
    "What is our strategy for the next year?",
    "How do we pick what to build next?",
)


class MouthStills:
    """Still pictures of the clone's mouth with the opening the page says it shows: the
    count of mouth-interior pixels must follow the opening (head turns alone do not do that).

    Each still is taken when the page's mouth is open or shut (waited on in the page, which
    holds that frame), so a busy machine makes fewer frames, not wrong samples; each is a
    frame rendered after the last still (one frame held and counted twice is one sample).
    A busy machine may still end an answer before enough stills: the test asks for more.
    """

    def __init__(self) -> None:
        self.opened: list[int] = []  # mouth-interior pixels with the mouth open
        self.shut: list[int] = []  # ... and shut
        self.vowels: list[float] = []  # the VRM's own mouth expressions, as three-vrm sets them
        self.turns: list[dict[str, float]] = []  # head and gaze yaws when looking aside
        self.stills: list[tuple[float, int, float]] = []  # when taken, its frame, opening
        self.peak = 0.0
        self.saved = False
        self._frame = -1
        self._began = time.monotonic()

    @property
    def enough(self) -> bool:
        """What the test's asserts need to judge the mouth."""
        return self._has(3, 1) and max(self.vowels) > 0.5 and min(self.vowels) < 0.2

    def _full(self) -> bool:
        return self._has(5, 3)

    def _has(self, each: int, turns: int) -> bool:
        """``each`` stills open and shut, ``turns`` looking aside, a saved picture, a voice."""
        return (
            len(self.opened) >= each
            and len(self.shut) >= each
            and len(self.turns) >= turns
            and self.saved
            and self.peak > 0.05
        )

    async def take(self, page: Page) -> None:
        """Stills through the answer being spoken, until it ends or there are plenty."""
        for _ in range(40):
            if self._full():
                return
            # Whichever of the openings still wanted the page shows first, held in the page
            # the frame it shows it (no round trip between).
            wanted = [
                c for c, n in (("m > 0.3", self.opened), ("m < 0.06", self.shut)) if len(n) < 5
            ]
            shows = " || ".join(wanted) or "true"
            try:
                await page.wait_for_function(
                    "() => { const m = townhallDebug.mouthOpen();"
                    f" return townhallDebug.framesRendered > {self._frame} && ({shows})"
                    " && (townhallDebug.pause(true), true); }",
                    timeout=20_000,
                )
            except PlaywrightTimeout:  # the answer is over
                return
            held = await page.evaluate(STILL)
            dark = mouth_pixels(await shot(page, held["rect"]))
            mouth, self._frame = held["mouth"], held["frame"]
            self.stills.append(
                (round(time.monotonic() - self._began, 1), self._frame, round(mouth, 2))
            )
            if not self.saved and mouth > 0.2 and held["captions"]:
                await page.screenshot(path=str(artifact("watch.png")))
                self.saved = True
            await page.evaluate("townhallDebug.pause(false)")
            self.vowels.append(max(held["weights"].values()))
            self.peak = max(self.peak, held["peak"])
            if abs(held["yaw"]["gaze"]) > 12:
                self.turns.append(held["yaw"])
            if mouth > 0.3:
                self.opened.append(dark)
            elif mouth < 0.06:
                self.shut.append(dark)


def differs(a: Pixels, b: Pixels) -> float:
    """Mean absolute difference per channel (0..255)."""
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


async def frames_later(page: Page, n: int = 2) -> None:
    """Wait until the page has rendered n more frames (the render loop is throttled on
    software GL)."""
    start = await page.evaluate("townhallDebug.framesRendered")
    await page.wait_for_function(
        f"() => townhallDebug.framesRendered >= {start + n}", timeout=60_000
    )


# A browser without WebGL or WebCodecs: the page keeps captions and the board, and draws
# nothing (so a test that loads it this way is light: it runs in the "pages" group).
NO_WEBGL = """
delete window.AudioDecoder;
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
  return /webgl/.test(kind) ? null : getContext.call(this, kind, ...rest);
};
"""


async def open_watch(
    chromium: Browser, url: str, token: str | None, avatar: str = "", webgl: bool = True
) -> tuple[Page, list[str]]:
    """A /watch page; returns it and a list collecting its script errors and any request
    that would leave this server (the page must load nothing from anywhere else)."""
    context = await chromium.new_context(viewport={"width": 1280, "height": 760})
    if not webgl:
        await context.add_init_script(NO_WEBGL)
    page = await context.new_page()
    errors: list[str] = []
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((url, url.replace("http", "ws", 1), "data:", "blob:"))
            else errors.append(f"request to {r.url}")
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    query = urlencode(
        {k: v for k, v in (("token", token), ("avatar", avatar)) if v is not None and v != ""}
    )
    await page.goto(f"{url}/watch" + (f"?{query}" if query else ""))
    return page, errors


# ---------------------------------------------------------------------- tests


async def test_watch_shows_the_hall_the_clone_speaking_and_the_board(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    async with TownhallServer(clone_settings(tmp_path)) as srv:
        moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Mo"))
        attendee = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        await moderator.connect()
        await attendee.connect()
        await attendee.client.send(Hand(True))
        other = await attendee.request(lambda ref: Ask(ref, "Will we open an office in Lisbon?"))
        assert isinstance(other, Ack)

        page, errors = await open_watch(
            browser, srv.url, token("spec", role="spectator", name="Sam")
        )
        await expect(page.locator("#status")).to_have_text("Live", timeout=15_000)
        await page.wait_for_function("() => townhallDebug.framesRendered > 2", timeout=20_000)
        assert await page.evaluate("townhallDebug.has3d && townhallDebug.hasAudio")
        # The clone is the server's VRM model (built from the persona), loaded by three-vrm.
        await page.wait_for_function("() => (townhallDebug.avatarKind === 'vrm')", timeout=20_000)
        assert await page.locator("#notices").inner_text() == ""
        await expect(page.locator("#disclosure")).to_contain_text("AI")
        # The audience: the attendee sits in the hall with a hand up.
        await page.wait_for_function(
            "() => townhallDebug.audience && townhallDebug.audience.present === 1 "
            "&& townhallDebug.audience.arms === 1",
            timeout=10_000,
        )

        # Seats are laid out as the server numbers them (seat numbers on the wire index them).
        placed = np.asarray(await page.evaluate("townhallDebug.seats()"))
        expected = np.asarray([(*s.position, s.yaw_deg) for s in srv.scene.seats])
        assert placed.shape == expected.shape
        assert np.abs(placed[:, :3] - expected[:, :3]).max() < 1e-3
        assert np.abs((placed[:, 3] - expected[:, 3] + 180) % 360 - 180).max() < 0.01

        # --- the canvas renders the hall and the clone
        await page.evaluate("townhallDebug.setCloseup(false)")
        await frames_later(page)
        canvas_box = await page.locator("#canvas").bounding_box()
        assert canvas_box
        hall = await shot(page, canvas_box)
        background = np.all(np.abs(hall.astype(np.int32) - CLEAR) <= 3, axis=2).mean()
        assert background < 0.5, f"{background:.0%} of the view is the clear colour"
        body = await page.evaluate("townhallDebug.headScreenRect('hall')")
        # The whole clone in the hall view: a box from above the head down to the feet.
        figure = {
            "x": body["x"] - body["width"],
            "y": body["y"],
            "width": body["width"] * 3,
            "height": body["height"] * 8,
        }
        assert figure["width"] >= 3, figure
        with_clone = await shot(page, figure)
        await page.evaluate("townhallDebug.setCloseup(true)")
        await frames_later(page)
        head = await page.evaluate("townhallDebug.headScreenRect()")
        assert head["view"] == "closeup" and head["width"] > 40, head
        head_shot = await shot(page, head)
        # Sizing a canvas clears it (the view gets shorter as the transcript grows): the page
        # draws again at once, so a held picture stays on screen rather than going blank.
        await page.evaluate("townhallDebug.pause(true)")
        tall = await page.evaluate("document.querySelector('#canvas').height")
        await page.set_viewport_size({"width": 1280, "height": 700})
        await page.wait_for_function(
            f"() => document.querySelector('#canvas').height < {tall}", timeout=10_000
        )
        held_head = await shot(page, await page.evaluate("townhallDebug.headScreenRect()"))
        blank = np.all(np.abs(held_head.astype(np.int32) - CLEAR) <= 3, axis=2).mean()
        await page.set_viewport_size({"width": 1280, "height": 760})
        await page.evaluate("townhallDebug.pause(false)")
        assert blank < 0.5, f"{blank:.0%} of the held close-up is blank after a resize"
        await page.evaluate("townhallDebug.setAvatarVisible(false)")
        await frames_later(page)
        head_hidden = await shot(page, head)
        await page.evaluate("townhallDebug.setCloseup(false)")
        await frames_later(page)
        without_clone = await shot(page, figure)
        await page.evaluate("townhallDebug.setAvatarVisible(true); townhallDebug.setCloseup(true)")
        assert differs(head_shot, head_hidden) > 20, "the close-up shows no clone"
        assert differs(with_clone, without_clone) > 5, "the hall view shows no clone on stage"

        # --- ask from the page (Enter submits) and vote for the attendee's question
        await page.fill("#ask-input", "What is our plan for remote work?")
        await page.press("#ask-input", "Enter")
        await expect(page.locator("#ask-status")).to_contain_text("Thanks", timeout=10_000)
        await expect(page.locator("#ask-input")).to_have_value("")
        mine = page.locator("#questions li", has_text="remote work")
        await expect(mine.locator("button.vote")).to_have_attribute("aria-pressed", "true")
        # Someone else's question waiting for approval is not on this viewer's board.
        await expect(page.locator("#questions li", has_text="Lisbon")).to_have_count(0)
        qid = next(
            m.question.id
            for m in moderator.of(QuestionChanged)
            if m.question.text == "What is our plan for remote work?"
        )

        # --- the attendee's question first: they are highlighted in the audience as the
        # asker, and the page shows that answer's label
        approved = await moderator.request(lambda ref: Moderate(ref, "approve", other.id))
        assert isinstance(approved, Ack), approved
        await eventually(lambda: any(s.question == other.id for s in moderator.of(StageStart)))
        first = next(s for s in moderator.of(StageStart) if s.question == other.id)
        assert attendee.client.welcome and first.asker_slot == attendee.client.welcome.slot
        await page.wait_for_function(
            f"() => townhallDebug.audience.asker === {first.asker_slot}", timeout=10_000
        )
        titles = {"approved": "Approved answer", "generated": "AI-generated"}
        await expect(page.locator("#label")).to_have_text(
            titles.get(first.label, "Escalated to the leader")
        )
        await expect(page.locator("#question-now")).to_contain_text("Lisbon")

        # --- then the page's question; the clone answers it on stage
        approved = await moderator.request(lambda ref: Moderate(ref, "approve", qid))
        assert isinstance(approved, Ack), approved
        await eventually(lambda: any(s.question == qid for s in moderator.of(StageStart)), 30)
        await page.wait_for_function(
            "() => townhallDebug.audience.asker === -1 && townhallDebug.lastLabel === 'approved'",
            timeout=10_000,
        )
        await page.wait_for_function("() => townhallDebug.mouthOpen() > 0.05", timeout=20_000)
        # Still pictures of the mouth, through this answer (and more answers on a busy
        # machine, below, until there are enough).
        stills = MouthStills()
        await stills.take(page)
        await expect(page.locator("#label")).to_have_text("Approved answer")
        await expect(page.locator("#label-detail")).to_contain_text(re.compile(r"[A-Z]+\d+"))
        assert await page.evaluate("townhallDebug.lastLabel") == "approved"
        await expect(page.locator("#question-now")).to_contain_text("remote work")

        # --- captions: word by word on the media clock, whole sentences for screen readers
        _, end = await wait_answer(moderator, qid)
        assert end.outcome == "done"
        spoken = re.findall(r"\w+", end.text.lower())
        # The last words play a little behind the server: wait until the page shows them.
        await page.wait_for_function(
            "(last) => (townhallDebug.captionsAll.toLowerCase().match(/[\\p{L}\\p{N}_]+/gu)"
            " || []).at(-1) === last",
            arg=spoken[-1],
            timeout=20_000,
        )
        shown = await page.evaluate("townhallDebug.captionsAll")
        seen = re.findall(r"\w+", shown.lower())
        assert seen[-len(spoken) :] == spoken, (shown, end.text)
        # The sentences for screen readers follow the captions: wait for them, then compare.
        with contextlib.suppress(PlaywrightTimeout):
            await page.wait_for_function(
                "(last) => (document.querySelector('#transcript').innerText.toLowerCase()"
                ".match(/[\\p{L}\\p{N}_]+/gu) || []).slice(-5).join(' ') === last",
                arg=" ".join(spoken[-5:]),
                timeout=20_000,
            )
        transcript = await page.locator("#transcript").inner_text()
        assert re.findall(r"\w+", transcript.lower())[-5:] == spoken[-5:]
        assert await page.locator("#transcript").get_attribute("aria-live") == "polite"
        # A busy machine renders few frames in one answer: more answers until the stills
        # are enough (each answer is a few seconds of speech, whatever the frame rate).
        for text in MORE_ANSWERS:
            if stills.enough:
                break
            ack = await attendee.request(lambda ref, text=text: Ask(ref, text))
            assert isinstance(ack, Ack) and not ack.merged, ack
            approved = await moderator.request(lambda ref, q=ack.id: Moderate(ref, "approve", q))
            assert isinstance(approved, Ack), approved
            await eventually(
                lambda q=ack.id: any(s.question == q for s in moderator.of(StageStart)), 30
            )
            await page.wait_for_function("() => townhallDebug.mouthOpen() > 0.05", timeout=20_000)
            await stills.take(page)
        opened, shut, vowels, turns = stills.opened, stills.shut, stills.vowels, stills.turns
        shown_stills = stills.stills
        heard = await page.evaluate("townhallDebug.audioStats")
        assert stills.peak > 0.05, ("the voice is silent at the output", stills.peak, heard)
        assert max(vowels) > 0.5 and min(vowels) < 0.2, (
            "the VRM's mouth does not move",
            vowels,
            shown_stills,
        )
        assert stills.saved, "no moment with the mouth open and captions showing"
        assert len(opened) >= 3 and len(shut) >= 3, (
            "the mouth never opened and shut",
            opened,
            shut,
            shown_stills,
        )
        # Medians: one still caught mid-blend (or mid-turn) must not decide the verdict.
        assert np.median(opened) >= 12, ("the mouth does not open", opened, shut, shown_stills)
        # Software WebGL shades closed lips a little differently frame to frame (10-15
        # mouth-interior pixels at rest, 25-60 open): an open mouth shows clearly more.
        assert np.median(opened) >= np.median(shut) + 10, (
            "the mouth does not open",
            opened,
            shut,
            shown_stills,
        )
        # The frames' bone rotations turn the head toward the gaze target (the same side).
        assert turns, "the clone never looked away from straight ahead"
        for yaw in turns:
            assert yaw["head"] * yaw["gaze"] > 0, yaw
            assert abs(yaw["head"] - yaw["gaze"]) < abs(yaw["gaze"]), yaw
        stats = await page.evaluate("townhallDebug.audioStats")
        # The voice decodes and plays. How many frames come late, and how closely the mouth
        # follows the voice, depend on how busy the machine is: bench/watch.py measures them.
        assert stats["errors"] == 0, stats
        assert stats["frames"] > 0 and stats["played"] > 0, stats
        assert not errors, errors
        for v in (moderator, attendee):
            await v.client.close()


async def test_watch_screens_beside_the_stage_show_the_close_up(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    """The screens either side of the stage magnify the clone, as at a real town hall:
    they show the close-up camera's picture, so hiding the clone changes them."""
    async with TownhallServer(make_settings(tmp_path, clone={"enabled": True})) as srv:
        page, errors = await open_watch(
            browser, srv.url, token("spec", role="spectator", name="Sam")
        )
        await page.wait_for_function("() => (townhallDebug.avatarKind === 'vrm')", timeout=20_000)
        await page.evaluate("townhallDebug.setCloseup(false)")  # the inset would cover one
        rects = await page.evaluate("townhallDebug.hallScreenRects()")
        assert len(rects) == 2, rects
        assert all(r["width"] > 60 and r["height"] > 30 for r in rects), rects
        await frames_later(page, 8)  # software GL redraws the screens every sixth frame
        shown = [await shot(page, r) for r in rects]
        await page.evaluate("townhallDebug.setAvatarVisible(false)")
        await frames_later(page, 8)
        empty = [await shot(page, r) for r in rects]
        for rect, a, b in zip(rects, shown, empty, strict=True):
            assert differs(a, b) > 4, ("the screen does not show the clone", rect, differs(a, b))
        assert not [e for e in errors if "favicon" not in e], errors
        await page.close()


async def test_watch_clone_stands_at_rest_and_shifts_its_weight_between_answers(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    """Before any answer the VRM is not in its T-pose: the arms hang by the sides, and it
    moves (weight from one leg to the other) rather than standing frozen."""
    async with TownhallServer(make_settings(tmp_path, clone={"enabled": True})) as srv:
        page, errors = await open_watch(
            browser, srv.url, token("spec", role="spectator", name="Sam")
        )
        await page.wait_for_function("() => (townhallDebug.avatarKind === 'vrm')", timeout=20_000)
        await frames_later(page)

        async def bone(name: str) -> np.ndarray:
            return np.asarray(await page.evaluate(f"townhallDebug.boneWorld('{name}')"))

        for side in ("left", "right"):
            shoulder, hand = await bone(f"{side}UpperArm"), await bone(f"{side}Hand")
            assert shoulder[1] - hand[1] > 0.4, (side, "the arm is not down", shoulder, hand)
            assert abs(shoulder[0] - hand[0]) < 0.25, (side, "the hand is out to the side")
        start = float((await bone("hips"))[0])
        await page.wait_for_function(
            f"() => Math.abs(townhallDebug.boneWorld('hips')[0] - {start}) > 0.015",
            timeout=20_000,
        )
        assert not [e for e in errors if "favicon" not in e], errors
        await page.close()


def _gpu_cpu_seconds() -> float:
    """CPU seconds so far of the GPU processes of the Chromium this test process drives (the
    shared one is a descendant of this process; SwiftShader runs there)."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "--type=gpu-process" in proc.cmdline():
                times = proc.cpu_times()
                total += times.user + times.system
    return total


async def test_watch_keeps_a_software_renderer_at_most_half_busy(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    """On a software renderer (SwiftShader here) a frame of the hall and the clone keeps the
    GPU process busy for a large part of a second, on every core (SwiftShader spreads a frame
    over them); the page spaces its frames by what they cost there (a WebGL2 fence per
    frame), so the GPU process takes at most about half the machine and the audio and the
    network keep the rest. Timing only the render call, the page saw 3 ms and kept that
    process busy on every core it could get."""
    async with TownhallServer(make_settings(tmp_path, clone={"enabled": True})) as srv:
        page, errors = await open_watch(
            browser, srv.url, token("spec", role="spectator", name="Sam")
        )
        await page.wait_for_function("() => (townhallDebug.avatarKind === 'vrm')", timeout=20_000)
        await frames_later(page, 3)
        frames0, cpu0, wall0 = (
            await page.evaluate("townhallDebug.framesRendered"),
            _gpu_cpu_seconds(),
            time.monotonic(),
        )
        # Until the page has drawn a number of frames, however long that takes here.
        await page.wait_for_function(
            f"() => townhallDebug.framesRendered >= {frames0 + 8}", timeout=60_000
        )
        cores = (_gpu_cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        share = cores / (psutil.cpu_count() or 1)
        cost_ms = await page.evaluate("townhallDebug.renderCostMs")
        # Half for the frames, plus the compositor's own work on the page around them.
        assert share < 0.6, (
            f"the GPU process took {share:.0%} of the machine ({cores:.2f} cores; "
            f"a frame costs {cost_ms:.0f} ms)"
        )
        assert cost_ms > 0
        assert not [e for e in errors if "favicon" not in e], errors
        await page.close()


@pytest.mark.light
async def test_watch_says_why_a_link_does_not_work(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    expired = issue_token(
        SECRET,
        user_id="late",
        name="Late",
        role="spectator",
        room="main",
        ttl_s=60,
        now=time.time() - 3600,
    )
    async with TownhallServer(make_settings(tmp_path)) as srv:
        cases = [
            (expired, "This link has expired"),
            ("not-a-token", "This link is not valid"),
            (token("elsewhere", role="spectator", room="other"), "different town hall"),
        ]
        for bad, text in cases:
            page, _ = await open_watch(browser, srv.url, bad, webgl=False)
            alert = page.locator("#alert[role=alert]")
            await expect(alert).to_be_visible(timeout=10_000)
            await expect(alert).to_contain_text(text)
            await expect(page.locator("#status")).not_to_have_text("Live")
            await page.context.close()


async def test_watch_says_why_a_model_link_does_not_load(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        # A model link must be on this server (nothing is fetched elsewhere); one that does
        # not load leaves the default clone on stage.
        for avatar, text in [
            ("https://example.com/clone.vrm", "must be on this server"),
            ("/assets/no-such-model.vrm", "could not be loaded"),
        ]:
            page, errors = await open_watch(browser, srv.url, None, avatar=avatar)
            await expect(page.locator("#notices")).to_contain_text(text, timeout=10_000)
            await expect(page.locator("#status")).to_have_text("Live", timeout=10_000)
            assert await page.evaluate("townhallDebug.has3d")
            assert not [e for e in errors if "request to" in e or "Error" in e], errors
            await page.context.close()


@pytest.mark.light
async def test_watch_without_webgl_or_webcodecs_keeps_captions_and_board(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    # An anonymous spectator: the guests of its address may ask 3 questions together.
    settings = make_settings(tmp_path, qa={"mode": "moderated", "guest_questions_per_minute": 3.0})
    async with TownhallServer(settings) as srv:
        errors: list[str] = []
        context = await browser.new_context(viewport={"width": 1000, "height": 700})
        await context.add_init_script(NO_WEBGL)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{srv.url}/watch")  # no token: an anonymous spectator
        await expect(page.locator("#status")).to_have_text("Live", timeout=15_000)
        await expect(page.locator("#no3d")).to_contain_text("No 3D view")
        await expect(page.locator("#notices")).to_contain_text("No sound")
        assert not await page.evaluate("townhallDebug.has3d || townhallDebug.hasAudio")
        # Asking still works; the rate limit is reported in plain words.
        for i, expected in enumerate(["Thanks", "Thanks", "Thanks", "Slow down"]):
            await page.fill("#ask-input", f"Question number {i} about the roadmap for {i * 7}?")
            await page.press("#ask-input", "Enter")
            await expect(page.locator("#ask-status")).to_contain_text(expected)
        await expect(page.locator("#ask-status")).to_have_attribute("data-kind", "error")
        await expect(page.locator("#questions li")).to_have_count(3)
        assert not errors, errors
        await context.close()


async def test_watch_by_keyboard_alone_and_reconnecting(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    async with TownhallServer(make_settings(tmp_path, qa={"mode": "auto"})) as srv:
        other = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        await other.connect()
        asked = await other.request(lambda ref: Ask(ref, "How do we pick what to build next?"))
        assert isinstance(asked, Ack)
        page, errors = await open_watch(browser, srv.url, token("kb", role="spectator"))
        await expect(page.locator("#status")).to_have_text("Live", timeout=15_000)
        await expect(page.locator("#questions li")).to_have_count(1)
        # Tab from the top reaches the question box; Enter asks.
        for _ in range(12):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "ask-input":
                break
        else:
            raise AssertionError("Tab never reached the question box")
        assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in (
            "none",
            "",
        ), "the focused field shows no focus ring"
        await page.keyboard.type("Can we get more time for learning?")
        await page.keyboard.press("Enter")
        await expect(page.locator("#ask-status")).to_contain_text("Thanks")
        await expect(page.locator("#questions li")).to_have_count(2)
        # Onward with Tab to the other question's vote button; Space votes.
        target = page.locator("#questions li", has_text="build next").locator("button.vote")
        for _ in range(8):
            await page.keyboard.press("Tab")
            if await target.evaluate("b => b === document.activeElement"):
                break
        else:
            raise AssertionError("Tab never reached the vote button")
        await page.keyboard.press("Space")
        await expect(target).to_have_attribute("aria-pressed", "true")
        await expect(target).to_contain_text("2")
        assert await target.evaluate("b => b === document.activeElement"), "voting lost focus"
        await eventually(
            lambda: any(
                m.question.id == asked.id and m.question.votes == 2
                for m in other.of(QuestionChanged)
            ),
            timeout=10,
        )
        # A dropped connection comes back by itself, and says so meanwhile.
        await page.evaluate("townhallDebug.dropConnection()")
        await expect(page.locator("#status")).to_contain_text("reconnecting")
        await expect(page.locator("#status")).to_have_text("Live", timeout=15_000)
        again = await other.request(lambda ref: Vote(ref, asked.id, False))
        assert isinstance(again, Ack)
        await expect(target).to_contain_text("1")
        assert not errors, errors
        await other.client.close()


async def test_watch_drops_speech_sent_ahead_when_the_answer_is_stopped(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    """With fan-out workers and a stage lead of 500 ms the page holds speech not yet heard;
    a moderator's stop empties that queue within 100 ms of the StageEnd arriving, and the
    page goes silent: no voice, the mouth shut, no further caption words."""
    settings = make_settings(
        tmp_path,
        server={"workers": 2},
        room={"tick_hz": 10, "crowd_hz": 10, "spectator_hz": 2.5},
        clone={"enabled": True, "pause_s": 1.0},
        qa={"mode": "auto"},
    )
    assert settings.room.stage_lead_us == 500_000
    async with TownhallServer(settings) as srv:
        moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Mo"))
        await moderator.connect()
        page, errors = await open_watch(
            browser, srv.url, token("spec", role="spectator", name="Sam")
        )
        await expect(page.locator("#status")).to_have_text("Live", timeout=15_000)
        await page.wait_for_function(
            "() => (townhallDebug.hasAudio && townhallDebug.clockSynced())"
        )
        await page.evaluate("townhallDebug.startSyncProbe()")
        asker = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        await asker.connect()
        questions = [
            "How do we think about remote work?",
            "What is on the product roadmap this year?",
            "What is our strategy for the next year?",
        ]
        for attempt, question in enumerate(questions, 1):
            asked = await asker.request(lambda ref, q=question: Ask(ref, q))
            assert isinstance(asked, Ack)
            # Speech is heard on the page with more than 300 ms of it queued behind what
            # plays; then the moderator stops the answer mid-sentence.
            await page.wait_for_function(
                "() => (townhallDebug.audioPeak() > 0.05 && townhallDebug.queuedSpeechMs > 300)",
                timeout=30_000,
            )
            stopped = await moderator.request(lambda ref: Control(ref, "stop"))
            assert isinstance(stopped, Ack)
            await page.wait_for_function(
                f"() => (townhallDebug.audioStats.cuts === {attempt})", timeout=10_000
            )
            at_ms = await page.evaluate("townhallDebug.stopped.atMs")
            # The audio thread answers the stop with its queue emptied, within 100 ms.
            await page.wait_for_function("() => townhallDebug.queuedAfterStop", timeout=10_000)
            left = await page.evaluate("townhallDebug.queuedAfterStop")
            assert left["ms"] < 20, f"{left['ms']:.0f} ms of speech still queued after the stop"
            late = left["atMs"] - at_ms
            assert late < 100, f"the queue emptied {late:.0f} ms after the stop arrived"
            # The StageEnd reaches a spectator up to a write period (400 ms) after the stop;
            # a page stalled by a busy machine may have played the lead out by then: that
            # stop proves nothing, so ask again.
            cut_ms = (await page.evaluate("townhallDebug.audioStats"))["cutMs"]
            if cut_ms > 150:
                break
        else:
            raise AssertionError(f"no stop arrived with speech still queued ({cut_ms:.0f} ms)")
        # Let the probe cover a second after the stop (what the lead would have played).
        await page.wait_for_function(f"() => (performance.now() > {at_ms + 1000})")
        probe = await page.evaluate("townhallDebug.stopSyncProbe()")
        stats = await page.evaluate("townhallDebug.audioStats")
        heard = [(t, v) for t, v in probe["audio"] if v > 0.01]
        assert heard and min(t for t, _ in heard) < at_ms, "nothing was heard before the stop"
        after = [round(t - at_ms) for t, _ in heard if t > at_ms + 100]
        assert not after, f"speech heard {after[:5]} ms after the stop arrived"
        assert stats["cutMs"] > 150, stats  # there was speech to drop
        assert await page.evaluate("townhallDebug.queuedSpeechMs") < 20, "speech queued again"
        mouth = [(round(t - at_ms), v) for t, v in probe["mouth"] if t > at_ms + 100]
        assert mouth and max(v for _, v in mouth) < 0.05, ("the mouth moves on", mouth[:10])
        words = await page.evaluate("townhallDebug.stopped.words")
        shown = (await page.evaluate("townhallDebug.captionsAll")).split()
        assert words and len(shown) == words, ("captions went on after the stop", shown[words:])
        assert not [e for e in errors if "favicon" not in e], errors
        await page.close()


async def test_watch_labels_words_a_moderator_wrote_as_theirs(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    """An escalated draft spoken in a moderator's words: the page says "Written by the
    moderators" while the clone speaks them, never "Escalated" or "Approved"."""
    async with TownhallServer(clone_settings(tmp_path, review=True)) as srv:
        moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Mo"))
        asker = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        await moderator.connect()
        await asker.connect()
        page, errors = await open_watch(
            browser, srv.url, token("spec", role="spectator", name="Sam")
        )
        await expect(page.locator("#status")).to_have_text("Live", timeout=15_000)
        asked = await asker.request(lambda ref: Ask(ref, "Will there be layoffs this year?"))
        assert isinstance(asked, Ack)
        approved = await moderator.request(lambda ref: Moderate(ref, "approve", asked.id))
        assert isinstance(approved, Ack)
        await eventually(lambda: any(d.question == asked.id for d in moderator.of(Draft)), 30)
        draft = next(d for d in moderator.of(Draft) if d.question == asked.id)
        assert draft.label == "escalated"
        written = "We will share the plan for next year with everyone at the all-hands on Friday."
        edit = await moderator.request(lambda ref: Review(ref, draft.answer, "edit", written))
        assert isinstance(edit, Ack)
        label = page.locator("#label")
        await expect(label).to_have_text("Written by the moderators", timeout=20_000)
        await expect(label).to_have_attribute("data-label", "moderator")
        await expect(page.locator("#label-detail")).to_contain_text("a moderator wrote")
        # While the clone is still speaking the moderator's words.
        await expect(page.locator("#caption-line")).to_contain_text("Friday", timeout=20_000)
        start = next(s for s in moderator.of(StageStart) if s.question == asked.id)
        assert start.label == "moderator"
        assert await label.inner_text() == "Written by the moderators"
        await page.screenshot(path=str(artifact("watch-moderator-label.png")))
        assert not errors, errors
        await page.context.close()
        await moderator.client.close()
        await asker.client.close()
