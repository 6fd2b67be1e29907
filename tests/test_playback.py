"""Stage playback (plugin/playback.py) on a simulated network: loss, jitter, reordering.

Virtual time, no sockets: a server makes 8 s of stage packets (Opus clicks every 400 ms,
animation at 30 fps whose gaze x encodes its own media time), the network delays each by
15 ms plus up to 50 ms of jitter and loses 5%, a headset renders at 90 Hz and a sound device
with a drifting clock pulls 10 ms of audio at a time. The picture must stay within one
animation frame (33 ms) of the sound that is heard, and never stall.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from townhall.plugin.client import RoomClient, local_us
from townhall.plugin.playback import BASE_DELAY_US, StagePlayer
from townhall.protocol import ClockSync, quant
from townhall.protocol.messages import (
    Ask,
    Caption,
    CrowdNear,
    Message,
    StageEnd,
    StagePacket,
    StageStart,
)
from townhall.protocol.skeleton import EXPRESSIONS, SKELETON_BONES, VISEMES
from townhall.server.app import TownhallServer
from townhall.server.clone.voice.opus import OpusEncoder

from .conftest import TokenMaker, make_settings
from .waiting import eventually

M0 = 10_000_000  # media time of the answer's start
OFFSET = 3_000_000  # media minus local
SECONDS = 8
CLICK_EVERY_US = 400_000
FRAME_US = 33_333
ONE_FRAME_US = 33_334


@dataclass
class Clock:
    offset: float = OFFSET

    def to_server(self, local_us: float) -> float:
        return local_us + self.offset


def anim_frame(t_us: int) -> bytes:
    """A frame whose gaze x is its own media time since M0, in centimetres = milliseconds."""
    rot = np.zeros((len(SKELETON_BONES), 4))
    rot[:, 3] = 1.0
    angle = (t_us - M0) / 1e6  # the head turns slowly, so interpolation is visible
    rot[5] = [0.0, np.sin(angle / 2), 0.0, np.cos(angle / 2)]
    vis = np.zeros(len(VISEMES))
    vis[10] = 0.5
    gaze = [(t_us - M0) / 1e5, 1.6, 4.0]
    return quant.encode_animation_frame([0, 0.95, 0], rot, vis, np.zeros(len(EXPRESSIONS)), gaze)


def make_packets() -> list[StagePacket]:
    n = SECONDS * 48000
    pcm = np.zeros(n, np.int16)
    burst = (np.sin(np.arange(240) * 2 * np.pi * 3000 / 48000) * 20000).astype(np.int16)
    for k in range(0, SECONDS * 1_000_000, CLICK_EVERY_US):
        start = k * 48000 // 1_000_000
        pcm[start : start + 240] = burst
    frames = OpusEncoder().encode(pcm, 48000)
    packets = []
    for p in range(SECONDS * 25):
        t0 = M0 + p * 40_000
        times = [t for t in range(M0, M0 + SECONDS * 1_000_000, FRAME_US) if t0 <= t < t0 + 40_000]
        packets.append(
            StagePacket(
                answer=1,
                index=p,
                media_time_us=t0,
                duration_us=40_000,
                label="approved",
                opus=[f.data for f in frames[2 * p : 2 * p + 2]],
                anim_times_us=[t - t0 for t in times],
                anim=b"".join(anim_frame(t) for t in times),
                captions=[Caption(t0, 40_000, f"w{p}")] if p % 10 == 0 else [],
            )
        )
    return packets


def simulate(loss: float, jitter_us: int, seed: int = 7) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    player = StagePlayer(Clock())
    player.stage_event(
        StageStart(1, 1, 1, "q?", "approved", [], "en", "AI clone", -1, M0 - 200_000)
    )
    events: list[tuple[float, int, str, object]] = []
    order = 0
    for packet in make_packets():
        if rng.random() < loss:
            continue
        sent_local = packet.media_time_us - OFFSET  # sent as its media time comes
        arrival = sent_local + 15_000 + rng.uniform(0, jitter_us)
        heapq.heappush(events, (arrival, order := order + 1, "packet", packet))
        if rng.random() < 0.02:  # now and then a duplicate (e.g. a retransmit)
            heapq.heappush(events, (arrival + 30_000, order := order + 1, "packet", packet))
    start = M0 - OFFSET - 100_000
    end = M0 - OFFSET + SECONDS * 1_000_000 + BASE_DELAY_US
    for k in range(int((end - start) / 11_111)):
        heapq.heappush(events, (start + k * 11_111, order := order + 1, "render", None))
    drift = 1.002  # the sound card's clock runs 0.2% fast
    t = start
    while t < end:
        heapq.heappush(events, (t, order := order + 1, "audio", None))
        t += 10_000 / drift
    frames, chunks = [], []
    while events:
        now, _, kind, item = heapq.heappop(events)
        if kind == "packet":
            assert isinstance(item, StagePacket)
            player.push(item, now)
        elif kind == "render":
            display = now + 22_222  # predicted display time: two frames ahead
            frames.append((display, player.frame(display)))
        else:
            play_at = now + 30_000  # output latency
            pcm = player.read_audio(480, play_at)
            clock = player.audio_clock_us()
            assert clock is not None and len(pcm) == 480
            chunks.append((play_at, clock - 480 * 1e6 / 48000, pcm))
    return {"player": player, "frames": frames, "chunks": chunks}


def audio_media_at(chunks: list[tuple[float, float, np.ndarray]], local: float) -> float:
    """The media time of the sample the device plays at local time ``local``."""
    starts = [c[0] for c in chunks]
    i = int(np.searchsorted(starts, local, side="right")) - 1
    play_at, media, _ = chunks[i]
    return media + (local - play_at)


def test_animation_stays_within_a_frame_of_the_audio_under_loss_and_jitter() -> None:
    run = simulate(loss=0.05, jitter_us=50_000)
    player: StagePlayer = run["player"]  # type: ignore[assignment]
    frames = run["frames"]
    chunks = run["chunks"]
    assert isinstance(frames, list) and isinstance(chunks, list)
    stats = player.stats
    assert stats.reordered > 0 and stats.duplicates > 0 and stats.lost_frames > 0
    assert stats.late == 0

    on_stage = [
        (d, f) for d, f in frames if M0 + 50_000 <= f.media_time_us <= M0 + (SECONDS - 0.1) * 1e6
    ]
    assert len(on_stage) > 80 * (SECONDS - 0.2)
    worst = 0.0
    previous = -1.0
    for display, f in on_stage:
        # never stalls: every frame on stage is a live, interpolated pose, time moves on
        assert f.avatar.source == "live", (f.media_time_us, f.avatar.source)
        assert f.media_time_us > previous
        previous = f.media_time_us
        # the pose shown is the one for this media time (gaze x carries its time stamp)
        shown = M0 + float(f.avatar.gaze[0]) * 1e5
        assert abs(shown - f.media_time_us) < 2_000
        # ...and the sound heard at that moment is within one frame of it
        lag = abs(audio_media_at(chunks, display) - f.media_time_us)
        worst = max(worst, lag)
    assert worst <= ONE_FRAME_US, worst
    assert on_stage[-1][1].label == "approved"

    # The heard clicks, found in the device's output, line up with the picture at that time.
    # A click is 5 ms of loud tone; a frame decoded after a lost one can blip for a moment
    # (Opus' prediction state), which is not a click: ask for 60 loud samples in 5 ms.
    pcm = np.concatenate([c[2] for c in chunks])
    when = np.concatenate([c[0] + np.arange(len(c[2])) * 1e6 / 48000 for c in chunks])
    loud = np.abs(pcm.astype(np.int32)) > 6000
    clicks: list[float] = []
    for j in np.flatnonzero(loud):
        if (not clicks or when[j] - clicks[-1] > 200_000) and loud[j : j + 240].sum() >= 60:
            clicks.append(float(when[j]))
    errors = []
    for local in clicks:
        m = player.media_time(local)  # the picture's media time at that moment
        nearest = M0 + round((m - M0) / CLICK_EVERY_US) * CLICK_EVERY_US
        errors.append(abs(m - nearest))
    expected = SECONDS * 1_000_000 // CLICK_EVERY_US
    assert len(clicks) >= 0.8 * expected, (len(clicks), expected)
    assert max(errors) <= ONE_FRAME_US, max(errors)


def test_without_loss_every_audio_frame_plays_and_captions_show() -> None:
    run = simulate(loss=0.0, jitter_us=50_000)
    player: StagePlayer = run["player"]  # type: ignore[assignment]
    assert player.stats.lost_frames == 0 and player.stats.late == 0
    assert player.stats.played_frames == SECONDS * 50
    frames = run["frames"]
    assert isinstance(frames, list)
    words = {c.text for _, f in frames for c in f.captions}
    assert words == {f"w{p}" for p in range(0, SECONDS * 25, 10)}


def test_late_packets_give_up_their_audio_and_grow_the_delay() -> None:
    player = StagePlayer(Clock())
    packets = make_packets()[:20]
    for p in packets[:5]:
        player.push(p, p.media_time_us - OFFSET + 10_000)
    local = packets[4].media_time_us - OFFSET + BASE_DELAY_US
    player.read_audio(48000 * 2 // 10, local)  # 200 ms played: through packet 4's audio
    late = packets[2]
    player.push(StagePacket(**{f: getattr(late, f) for f in late.__struct_fields__}), local)
    assert player.stats.duplicates == 1  # same (answer, index) as before: ignored
    stale = packets[6]
    player.push(stale, stale.media_time_us - OFFSET + 300_000)  # 300 ms late
    assert player.stats.late == 1
    assert player.delay_us >= 300_000 + 40_000
    assert player.stats.delay_changes == 1


def test_idle_without_packets_and_hold_then_rest_after_the_last() -> None:
    player = StagePlayer(Clock())
    f = player.frame(0)
    assert f.avatar.source == "idle" and f.label == "" and f.attendees == {}
    # Never the T-pose: at rest the upper arms hang down (about 73 degrees from it).
    from townhall.protocol.skeleton import BONE_INDEX

    for arm in ("leftUpperArm", "rightUpperArm"):
        w = float(f.avatar.rotations[BONE_INDEX[arm], 3])
        assert 2 * np.degrees(np.arccos(min(1.0, abs(w)))) > 60, arm
    for p in make_packets()[:5]:
        player.push(p, p.media_time_us - OFFSET)
    last = M0 + 4 * 40_000 + 33_333
    at = last - OFFSET + BASE_DELAY_US
    assert player.frame(at - 20_000).avatar.source == "live"
    assert player.frame(at + 100_000).avatar.source == "hold"
    assert player.frame(at + 2_000_000).avatar.source == "idle"


def test_crowd_poses_are_interpolated_between_frames() -> None:
    player = StagePlayer(Clock())
    rot = np.tile([0.0, 0.0, 0.0, 1.0], (1, 3, 1))
    pos_a = np.array([[[0.0, 1.2, 0.0], [-0.2, 0.6, -0.3], [0.2, 0.6, -0.3]]])
    pos_b = pos_a + np.array([[[0.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.4, 0.0]]])
    flags = int(quant.PoseFlag.LEFT_TRACKED | quant.PoseFlag.RIGHT_TRACKED)
    player.crowd(CrowdNear(M0, quant.encode_crowd([5], [flags], pos_a, rot)))
    player.crowd(CrowdNear(M0 + 100_000, quant.encode_crowd([5], [flags], pos_b, rot)))
    from townhall.plugin.playback import CROWD_DELAY_US

    f = player.frame(M0 + 50_000 + CROWD_DELAY_US - OFFSET)
    a = f.attendees[5]
    assert a.pos is not None and abs(a.pos[0, 0] - 0.05) < 0.002
    assert abs(a.hand_height_m - 0.8) < 0.002
    player.forget(5)
    assert 5 not in player.frame(M0).attendees


def test_a_stopped_answer_goes_silent_at_once_though_more_was_sent_ahead() -> None:
    """Sent 500 ms ahead (fan-out workers), then stopped: nothing after the stop plays."""
    player = StagePlayer(Clock(), adaptive=False)
    packets = make_packets()[:50]  # two seconds, all delivered up front
    for p in packets:
        player.push(p, M0 - OFFSET - 500_000)
    start_local = M0 - OFFSET + BASE_DELAY_US
    heard = player.read_audio(48000 // 2, start_local)  # the first 500 ms
    assert np.abs(heard.astype(np.int32)).max() > 5000  # clicks at 0 and 400 ms
    stop_local = start_local + 500_000
    player.on_message(StageEnd(9, 1, "stopped", "", "approved", []), stop_local)
    after = player.read_audio(48000, stop_local)  # the next second: clicks at 800, 1200 ms...
    assert np.abs(after.astype(np.int32)).max() < 500
    f = player.frame(stop_local + 300_000)
    assert f.avatar.source != "live" and not f.captions
    # Without the stop, that second would have had its clicks.
    fresh = StagePlayer(Clock(), adaptive=False)
    for p in packets:
        fresh.push(p, M0 - OFFSET - 500_000)
    fresh.read_audio(48000 // 2, start_local)
    assert np.abs(fresh.read_audio(48000, stop_local).astype(np.int32)).max() > 5000


def test_before_the_first_clock_sample_it_shows_rest_and_plays_silence() -> None:
    """Joined mid-answer: the replayed speech (and even its stop) arrive before any Pong."""
    clock = ClockSync()
    player = StagePlayer(clock)
    for p in make_packets()[:30]:
        player.on_message(p, 1_000)
    f = player.frame(1_000)
    assert f.avatar.source == "idle" and not f.captions and f.line == ""
    assert not player.read_audio(960, 1_000).any()
    player.on_message(StageEnd(9, 1, "stopped", "", "approved", []), 1_000)
    assert player.frame(2_000).avatar.source == "idle"
    # Once a Pong maps the clocks, what is left plays on the media clock as usual.
    fresh = StagePlayer(clock)
    for p in make_packets()[:30]:
        fresh.on_message(p, 1_000)
    clock.add(0, OFFSET, OFFSET, 0)  # server = local + OFFSET
    local = M0 - OFFSET + BASE_DELAY_US + 200_000
    assert fresh.frame(local).avatar.source == "live"
    assert np.abs(fresh.read_audio(48000 // 2, local).astype(np.int32)).max() > 5000
    # The stopped one kept nothing to play.
    assert player.frame(local).avatar.source != "live"
    assert np.abs(player.read_audio(48000 // 2, local).astype(np.int32)).max() < 500


async def test_a_client_joining_while_the_clone_speaks(tmp_path: Path, token: TokenMaker) -> None:
    """A headset joins mid-answer and draws and plays from its first message, as an engine
    does: the replay comes before its first Pong, and nothing may fail on it."""
    settings = make_settings(tmp_path, clone={"enabled": True, "pause_s": 0.1})
    async with TownhallServer(settings) as srv:
        asker = RoomClient(srv.ws_url, token("ann", "spectator", "Ann"))
        heard: list[StagePacket] = []
        asker.listeners.append(lambda m: heard.append(m) if isinstance(m, StagePacket) else None)
        await asker.connect()
        await asker.send(Ask(1, "How do we think about remote work?"))
        await eventually(lambda: len(heard) >= 25, 60, "the clone speaking for a second")
        failures: list[BaseException] = []
        before_sync: list[StagePacket] = []
        holder: list[StagePlayer] = []

        def render(message: Message) -> None:
            player = holder[0]
            if isinstance(message, StagePacket) and not client.clock.synced:
                before_sync.append(message)
            try:
                player.on_message(message, local_us())
                player.frame(local_us())
                player.read_audio(960, local_us())
            except Exception as exc:  # the reader would die of it: the client goes deaf
                failures.append(exc)

        client = RoomClient(srv.ws_url, token("hs", "attendee", "Hedy"), on_message=render)
        holder.append(StagePlayer(client.clock))
        await client.connect()
        await client.sync_clock()
        assert before_sync, "the test needs the replay to come before the first Pong"
        assert not failures, failures
        player = holder[0]
        await eventually(
            lambda: player.frame(local_us()).avatar.source == "live", 20, "the answer playing"
        )
        assert not failures, failures
        await client.close()
        await asker.close()


def test_the_label_shown_is_that_of_the_packet_playing_not_the_last_received() -> None:
    """A label changes mid-answer (generated, then escalated when a sentence is cut): the
    packets ahead carry the new label while the old one is still heard, so the headset
    must show the label of the packet at the media time it plays."""
    player = StagePlayer(Clock())
    player.stage_event(
        StageStart(1, 1, 1, "q?", "generated", [], "en", "AI clone", -1, M0 - 200_000)
    )
    packets = make_packets()[:50]
    relabelled = [
        StagePacket(
            **{
                f: (
                    ("escalated" if p.index >= 25 else "generated")
                    if f == "label"
                    else getattr(p, f)
                )
                for f in p.__struct_fields__
            }
        )
        for p in packets
    ]
    arrival = M0 - OFFSET - 100_000  # all of it arrives ahead, before any of it plays
    for p in relabelled:
        player.push(p, arrival)
    early = M0 + 10 * 40_000 - OFFSET + BASE_DELAY_US  # packet 10 plays: still "generated"
    late = M0 + 30 * 40_000 - OFFSET + BASE_DELAY_US  # packet 30 plays: now "escalated"
    assert player.frame(early).label == "generated"
    assert player.frame(late).label == "escalated"
    # A packet of another answer (one that ended) never lends its label to this one.
    player.stage_event(StageEnd(2, 1, "done", "text", "escalated", []))
    assert player.frame(late).label == ""
