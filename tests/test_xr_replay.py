"""The headset plays a recording: `townhall xr --recording ID` against the test runtime.

A real server on 127.0.0.1 records two answers; then a real `townhall xr` process under
Xvfb (Mesa) with the test OpenXR runtime fetches that recording over HTTP and plays it
through the live headset's own state, StagePlayer and renderer: Tesseract reads the
recorded words on the stage panel, the label's chip is there, the voice is in the headset
audio, the raise button skips to the second answer, and the app ends with the recording.
An unknown recording or a refused token is one line and exit 2.
"""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from xr import SessionState

from townhall.plugin.xr import panels, render
from townhall.protocol.messages import StagePacket
from townhall.server.app import TownhallServer
from townhall.server.store.recording import index

from .conftest import TokenMaker
from .recorded import record_two_answers, recording_settings
from .test_clone_stage import Viewer
from .test_xr_render import looking, ocr, save, words
from .waiting import eventually
from .xr_helpers import (  # noqa: F401 (the fixtures)
    FrameLog,
    display_fixture,
    fresh_runtime,
    runtime_fixture,
)
from .xr_runtime import BUTTON_RIGHT_A, Displayed, TestRuntime

# The wearer's left controller put down (untracked): no question board held up between
# the eyes and the stage panel whose words are read (it covered half a line of them, and
# each picture OCR could not read cost seconds of Tesseract and of the app rendering on).
NO_LEFT_HAND = 0b1101  # tracked bits: head, right hand, gaze


async def frames_from(runtime: TestRuntime, n: int) -> None:
    """This process's session has ended ``n`` frames (the runtime's counter restarts with
    each instance; its last picture may still be the previous process's)."""
    await eventually(
        lambda: runtime.observed().instance_alive and runtime.observed().frames >= n, 90
    )


def said_in(viewer: Viewer, answer: int) -> set[str]:
    packets = [m for m in viewer.of(StagePacket) if m.answer == answer]
    return set(words(" ".join(c.text for p in packets for c in p.captions)))


async def xr(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "townhall.server.ops.cli", "xr", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.timeout(600)  # software GL on a busy machine
async def test_the_headset_plays_a_recording_with_chapters(
    display: str, runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
    wav = tmp_path / "voice.wav"
    async with TownhallServer(recording_settings(tmp_path)) as srv:
        # The headset plays the second answer through: the shorter statement of the two.
        rec = await record_two_answers(
            srv, token, ("How are we using AI tools?", "What is our plan for the office?")
        )
        rec_id, spectator, path = rec.id, rec.spectator, rec.path
        start1, start2 = rec.starts
        # The answers' own words: not the panel's other texts (disclosures, questions).
        shown_anyway = set(words(render.DEFAULT_DISCLOSURE))
        for st in (start1, start2):
            shown_anyway |= set(words(st.disclosure)) | set(words(st.question_text))
        said1 = said_in(spectator, start1.answer) - shown_anyway
        said2 = said_in(spectator, start2.answer) - shown_anyway
        await rec.close()
        viewer_token = token("hmd", role="spectator", name="Hema")

        # Mistakes: one line each, exit 2, before any headset is needed.
        for rid, tok, says in (
            ("no-such", viewer_token, "no recording no-such"),
            (rec_id, "nonsense", "refused the token"),
        ):
            bad = await xr(env, "--recording", rid, "--url", srv.ws_url, "--token", tok)
            _out, err = await asyncio.wait_for(bad.communicate(), 60)
            assert bad.returncode == 2 and says in err.decode(), err.decode()
            assert len(err.decode().strip().splitlines()) == 1, err.decode()

        args = ("--recording", rec_id, "--url", srv.ws_url, "--token", viewer_token)
        scene = srv.scene
        seat = render.seat_matrix(scene, -1).astype(np.float64)  # a replay has no seat
        pm = np.asarray(render.HallRenderer.stage_panel_pose(scene), np.float64)
        centre = pm[:3, 3]
        read: set[str] = set()

        def chip_px(shown: Displayed, label: str) -> int:
            _name, colour = panels.label_text(label)
            return int((np.abs(shown.eyes[0][..., :3].astype(int) - colour).max(axis=2) < 24).sum())

        def panel_reads(
            said: set[str], name: str, after: int = -1, label: str = ""
        ) -> Callable[[Displayed], bool]:
            """A picture with at least four of ``said`` on the panel (and ``label``'s chip:
            once the answer has ended its last words stay a moment, its label does not)."""

            def reads(shown: Displayed) -> bool:
                if shown.frame <= after or (label and chip_px(shown, label) <= 50):
                    return False
                read.clear()
                enough = lambda t: len(set(words(t)) & said) >= 4  # noqa: E731
                read.update(words(ocr(shown.eyes[0], name, enough=enough)))
                save(name, shown.eyes[0])
                return len(read & said) >= 4

            return reads

        # Chapters: the raise button, pressed twice at once, skips to the first answer and
        # on to the second; the voice is in the headset; it ends with the recording.
        runtime.pose("head", looking(seat, centre + np.array([0, 0.7, 3.2]), centre))
        runtime.tracked(NO_LEFT_HAND)
        proc = await xr(env, *args, "--audio-wav", str(wav))
        log = FrameLog(runtime)
        try:
            assert proc.stdout is not None
            await frames_from(runtime, 3)
            log.start()
            # Once to the first answer, again to the second (the recording may have
            # reached the first already when the first frame was shown: then once).
            heard: list[str] = []
            while start2.question_text not in heard:
                runtime.buttons(BUTTON_RIGHT_A)
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                heard.append(line.decode().strip().removeprefix("chapter: "))
                assert heard[-1] in (start1.question_text, start2.question_text), heard
                runtime.buttons(0)
                await frames_from(runtime, runtime.observed().frames + 3)  # released
            assert len(heard) <= 2, heard
            skipped_at = runtime.observed().frames
            # Read while it plays, and after it has ended from the pictures kept meanwhile.
            running = lambda: proc.returncode is None  # noqa: E731
            reads = panel_reads(said2 - said1, "xr-replay-chapter2.png", after=skipped_at)
            assert await log.first(reads, running), ("the second answer is not shown", read)
            # Seen; the rest of the answer is for the ears. The runtime stops asking for
            # pictures (the session synchronized, not visible: the headset is off the head)
            # and the app draws none to the end of the recording, its voice going on.
            runtime.target_state(SessionState.SYNCHRONIZED)
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            await log.stop()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-2000:]
        assert stdout.startswith(b"frames "), stdout
        voice_run = stdout.decode()  # the run that wrote the headset's audio
        seen = runtime.observed()
        assert not seen.instance_alive and seen.layer_error == 0

        # Played from the start: the first answer's words and label, as they were shown.
        runtime.reset()
        runtime.pose("head", looking(seat, centre + np.array([0, 0.7, 3.2]), centre))
        runtime.tracked(NO_LEFT_HAND)
        proc = await xr(env, *args)
        log = FrameLog(runtime)
        try:
            await frames_from(runtime, 3)
            log.start()
            running = lambda: proc.returncode is None  # noqa: E731
            reads = panel_reads(said1 - said2, "xr-replay-panel.png", label=start1.label)
            shown = await log.first(reads, running)
            assert shown is not None, ("no recorded words with the label chip on the panel", read)
            assert chip_px(shown, start1.label) > 50, "no label chip on the panel"
            runtime.request_exit()  # or it has ended with the recording already
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            await log.stop()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-2000:]

        # The desktop mirror plays it too (the same client, player and renderer).
        shot = tmp_path / "mirror.png"
        win = await xr(
            env, *args, "--window", "--frames", "20", "--screenshot", str(shot),
            "--width", "640", "--height", "360",
        )  # fmt: skip
        out, err = await asyncio.wait_for(win.communicate(), 120)
        assert win.returncode == 0 and out.startswith(b"frames 20 "), err.decode()[-2000:]
        assert shot.stat().st_size > 10_000

    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 48000
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2).astype(float)
    size = 24000
    n = len(pcm) // size
    rms = np.sqrt((pcm[: n * size].reshape(n, size, 2) ** 2).mean(axis=1))
    voiced = rms.max(axis=1) > 300
    # A second of voice at least; how much of the answer plays in time depends on how busy
    # the machine is: a packet received after its audio was due is given up, as in a live
    # headset (SPEC §5). On a machine too busy for the stream (the app says how many it
    # gave up: "late N"), half a second of voice is enough to show it reaches the ears.
    late = int(voice_run.split(" late ")[1].split()[0])
    enough = 1 if late else 2
    assert voiced.sum() >= enough, (
        "no recorded voice in the headset",
        late,
        voiced.astype(int).tolist(),
    )
    # The first answer was skipped: the headset played seconds less than the recording.
    assert len(pcm) / 48000 < index(path).duration_s - 5, (len(pcm) / 48000, index(path))
