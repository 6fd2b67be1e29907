"""The clone's body and the encoded frames: timing, determinism, blinks, gaze, nods, breathing.

Poses are checked from decoded wire frames with rotation matrices written
here, independently of the animator's own quaternion code.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from townhall.protocol.quant import (
    ANIMATION_FRAME_BYTES,
    decode_animation_frame,
    encode_animation_frame,
)
from townhall.protocol.skeleton import BONE_INDEX, EXPRESSION_INDEX, VISEME_INDEX
from townhall.scenes.geometry import forward
from townhall.server.clone.face.animator import Animator
from townhall.server.clone.face.encode import encode_frames
from townhall.server.clone.face.phonemes import parse_mnemonic
from townhall.server.clone.face.visemes import build_track, mouth_open_track
from townhall.server.clone.speech import PhonemeEvent, Utterance

MARK = (0.0, 1.1, -3.0)  # the default hall's clone mark, facing the audience (+Z)
HEAD_CHAIN = ("hips", "spine", "chest", "upperChest", "neck", "head")

# ---------------------------------------------------------------- helpers


def qmat(q: np.ndarray) -> np.ndarray:
    x, y, z, w = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rot_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def root_matrix(clone_yaw_deg: float) -> np.ndarray:
    """The documented root convention: R_y(yaw + 180), so the model's +Z is the mark's facing."""
    m = rot_y(clone_yaw_deg + 180.0)
    np.testing.assert_allclose(m @ [0, 0, 1], forward(clone_yaw_deg), atol=1e-12)
    return m


def world(frame, clone_yaw_deg: float, bones: tuple[str, ...]) -> np.ndarray:
    m = root_matrix(clone_yaw_deg)
    for bone in bones:
        m = m @ qmat(frame.rotations[BONE_INDEX[bone]])
    return m


def eye_forward(frame, clone_yaw_deg: float, eye: str = "leftEye") -> np.ndarray:
    return world(frame, clone_yaw_deg, (*HEAD_CHAIN, eye)) @ np.array([0.0, 0.0, 1.0])


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def rotation_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(2 * math.acos(min(1.0, abs(float(np.dot(a, b))))))


def local_pitch_deg(frame, bone: str) -> float:
    d = qmat(frame.rotations[BONE_INDEX[bone]]) @ np.array([0.0, 0.0, 1.0])
    return math.degrees(-math.asin(d[1]))  # positive: tipped down


def utterance(items: list[tuple[str, float]], start: float = 0.3, tail: float = 0.3) -> Utterance:
    """An utterance of silent audio with the given (mnemonic, duration) phonemes."""
    phonemes, t = [], start
    for name, dur in items:
        bare, stressed = parse_mnemonic(name)
        phonemes.append(PhonemeEvent(t, dur, bare, stressed))
        t += dur
    rate = 16000
    return Utterance(
        "test", "en", rate, np.zeros(int((t + tail) * rate), np.int16), tuple(phonemes)
    )


SENTENCE = [
    ("_", 0.1), ("h", 0.05), ("@", 0.05), ("l", 0.07), ("'oU", 0.2), ("_:", 0.25), ("D", 0.08),
    ("'e@", 0.25), ("_", 0.15), ("w", 0.06), ("i:", 0.1), ("m", 0.07), ("'E", 0.12), ("Z", 0.08),
    ("3", 0.1), ("T", 0.08), ("'O:", 0.2), ("t", 0.05), ("f", 0.08), ("@L", 0.1), ("'aa", 0.18),
    ("n", 0.07), ("s", 0.09), ("3", 0.1), ("z", 0.1), ("_:", 0.2),
]  # fmt: skip


def decode_all(frames: list[tuple[float, bytes]]):
    return [decode_animation_frame(b) for _, b in frames]


# ---------------------------------------------------------------- frames and timing


def test_frames_decode_and_sit_on_the_fps_grid() -> None:
    anim = Animator(fps=30, seed=1, clone_position=MARK)
    u = utterance(SENTENCE)
    frames = anim.frames_for(u, 12.345, None, (0.0, 1.2, 6.0))
    times = np.array([t for t, _ in frames])
    assert len(frames) == math.ceil((12.345 + u.duration_s) * 30) - math.ceil(12.345 * 30)
    assert times[0] >= 12.345 and times[-1] < 12.345 + u.duration_s
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=1e-9)
    np.testing.assert_allclose(times * 30, np.rint(times * 30), atol=1e-6)
    for _, data in frames:
        assert len(data) == ANIMATION_FRAME_BYTES
        f = decode_animation_frame(data)
        assert np.isfinite(f.rotations).all()
    # the next window continues the grid: no gap, no duplicate
    nxt = anim.frames_for(None, 12.345 + u.duration_s, 1.0)
    assert nxt[0][0] == pytest.approx(times[-1] + 1 / 30)


@pytest.mark.parametrize("fps", [30, 48, 60])
def test_fps_is_configurable_from_30(fps: int) -> None:
    frames = Animator(fps=fps).frames_for(None, 0.0, 1.0)
    assert len(frames) == fps
    with pytest.raises(ValueError):
        Animator(fps=25)
    with pytest.raises(ValueError):
        Animator().frames_for(None, 0.0)  # idle needs a duration


def test_bulk_encoder_matches_the_reference_encoder() -> None:
    rng = np.random.default_rng(5)
    n = 40
    hips = rng.uniform(-40, 40, (n, 3))  # includes clamping
    rot = rng.normal(size=(n, 23, 4))
    vis = rng.uniform(-0.2, 1.2, (n, 15))
    expr = rng.uniform(-0.2, 1.2, (n, 20))
    gaze = rng.uniform(-400, 400, (n, 3))
    ours = encode_frames(hips, rot, vis, expr, gaze)
    for i in range(n):
        assert ours[i] == encode_animation_frame(hips[i], rot[i], vis[i], expr[i], gaze[i])


def test_wire_visemes_follow_the_viseme_track() -> None:
    """What a viewer decodes is the track sampled at the frame's media time."""
    anim = Animator(fps=30, seed=2, clone_position=MARK)
    u = utterance(SENTENCE)
    start = 100.0
    frames = anim.frames_for(u, start, None, (0.0, 1.2, 6.0))
    times = np.array([t for t, _ in frames])
    wire = np.array([f.visemes for f in decode_all(frames)])
    expected = build_track(u.phonemes).at(times - start)
    assert np.abs(wire - expected).max() <= 0.5 / 255 + 1e-6
    assert np.abs(mouth_open_track(wire) - mouth_open_track(expected)).max() < 0.01


def test_deterministic_per_seed() -> None:
    def run(seed: int) -> list[tuple[float, bytes]]:
        anim = Animator(seed=seed, clone_position=MARK)
        out = anim.frames_for(None, 0.0, 3.0)
        out += anim.frames_for(utterance(SENTENCE), 3.0, None, (2.0, 1.2, 5.0))
        out += anim.frames_for(None, 3.0 + utterance(SENTENCE).duration_s, 6.0)
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_frames_do_not_depend_on_how_time_is_split() -> None:
    u = utterance(SENTENCE)
    whole = Animator(seed=3, clone_position=MARK)
    one = whole.frames_for(None, 0.0, 8.0)
    one += whole.frames_for(u, 8.0, 4.0, (1.0, 1.2, 4.0))
    one += whole.frames_for(None, 12.0, 10.0)
    sliced = Animator(seed=3, clone_position=MARK)
    many: list[tuple[float, bytes]] = []
    for k in range(200):
        many += sliced.frames_for(None, k * 0.04, 0.04)
    many += sliced.frames_for(u, 8.0, 4.0, (1.0, 1.2, 4.0))
    for k in range(250):
        many += sliced.frames_for(None, 12.0 + k * 0.04, 0.04)
    assert [t for t, _ in one] == pytest.approx([t for t, _ in many])
    assert [b for _, b in one] == [b for _, b in many]


def test_joins_between_calls_are_smooth() -> None:
    """Utterance, idle, utterance: no bone or weight jumps at the seams."""
    anim = Animator(seed=4, clone_position=MARK)
    u = utterance(SENTENCE)
    frames = anim.frames_for(None, 0.0, 1.0)
    frames += anim.frames_for(u, 1.0, None, (-3.0, 1.5, 5.0))
    frames += anim.frames_for(None, 1.0 + u.duration_s, 0.5)
    frames += anim.frames_for(u, 1.5 + u.duration_s, None, (3.0, 1.0, 8.0))
    decoded = decode_all(frames)
    for a, b in itertools.pairwise(decoded):
        for bone in ("hips", "spine", "chest", "neck", "head", "leftUpperArm", "rightLowerArm"):
            i = BONE_INDEX[bone]
            assert rotation_between_deg(a.rotations[i], b.rotations[i]) < 6.0, bone


# ---------------------------------------------------------------- blinks


def test_blinks_use_both_eyes_at_plausible_intervals() -> None:
    anim = Animator(fps=30, seed=11, clone_position=MARK)
    frames: list[tuple[float, bytes]] = []
    for k in range(60):  # a fixed gaze target: no blinks brought on by gaze shifts
        frames += anim.frames_for(None, float(k), 1.0, (1.0, 1.2, 6.0))
    times = np.array([t for t, _ in frames])
    expr = np.array([f.expressions for f in decode_all(frames)])
    left, right = expr[:, EXPRESSION_INDEX["blinkLeft"]], expr[:, EXPRESSION_INDEX["blinkRight"]]
    np.testing.assert_array_equal(left, right)
    shut = left > 0.5
    onsets = times[1:][shut[1:] & ~shut[:-1]]
    assert 60 / 6 - 1 <= len(onsets) <= 60 / 2 + 1
    gaps = np.diff(onsets)
    assert gaps.min() >= 2.0 - 1 / 30 and gaps.max() <= 6.0 + 1 / 30
    # each blink closes fully and lasts about 100-200 ms above half closure
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, shut.astype(int), 0])))[::2]
    assert runs.min() >= 2 and runs.max() <= 6  # frames at 30 fps
    for onset in onsets:
        near = (times >= onset - 0.1) & (times <= onset + 0.2)
        assert left[near].max() > 0.99
    assert left[~shut].max() < 0.5 and np.median(left) == 0.0


def test_big_gaze_shifts_bring_a_blink() -> None:
    anim = Animator(fps=30, seed=12, clone_position=MARK)
    anim.frames_for(None, 0.0, 3.0, (-6.0, 1.2, 5.0))
    frames = anim.frames_for(None, 3.0, 0.5, (6.0, 1.2, 5.0))  # about 70 degrees to the other side
    blink = np.array([f.expressions[EXPRESSION_INDEX["blinkLeft"]] for f in decode_all(frames)])
    assert blink.max() > 0.99


# ---------------------------------------------------------------- gaze


@pytest.mark.parametrize("clone_yaw", [180.0, 0.0, 90.0, -135.0])
@pytest.mark.parametrize(
    "target_offset",
    [(0.0, 0.0, 6.0), (-4.0, -0.5, 7.0), (5.0, 1.0, 4.0), (1.0, 3.0, 12.0), (-2.0, -1.5, 3.0)],
)
def test_gaze_converges_on_the_target(
    clone_yaw: float, target_offset: tuple[float, float, float]
) -> None:
    anim = Animator(fps=30, seed=21, clone_position=MARK, clone_yaw_deg=clone_yaw)
    # the offset is given facing +Z; turn it with the clone so the target is in front
    target = anim.eye_position + rot_y(clone_yaw + 180.0) @ np.array(target_offset)
    frames = anim.frames_for(None, 0.0, 2.0, tuple(target))
    frames += anim.frames_for(utterance(SENTENCE), 2.0, None, tuple(target))
    decoded = decode_all(frames)
    times = np.array([t for t, _ in frames])
    to_target = target - anim.eye_position
    settled = [f for t, f in zip(times, decoded, strict=True) if t >= 1.0]
    for f in settled:  # while nodding and gesturing too
        assert angle_deg(eye_forward(f, clone_yaw, "leftEye"), to_target) < 2.0
        assert angle_deg(eye_forward(f, clone_yaw, "rightEye"), to_target) < 2.0
        np.testing.assert_allclose(f.gaze, target, atol=0.006)
        # the head does most of the turning, the eyes the rest
        head = world(f, clone_yaw, HEAD_CHAIN) @ np.array([0.0, 0.0, 1.0])
        assert angle_deg(head, to_target) < 0.35 * angle_deg(forward(clone_yaw), to_target) + 6.0


@pytest.mark.parametrize("side", [1.6, 3.0])  # 30 and 53 degrees apart
def test_gaze_moves_in_a_saccade_and_the_head_follows(side: float) -> None:
    anim = Animator(fps=60, seed=22, clone_position=MARK)
    a = anim.eye_position + np.array([-side, 0.0, 6.0])
    b = anim.eye_position + np.array([side, 0.0, 6.0])
    anim.frames_for(None, 0.0, 2.0, tuple(a))
    frames = anim.frames_for(None, 2.0, 1.5, tuple(b))
    decoded = decode_all(frames)
    times = np.array([t for t, _ in frames]) - 2.0
    eyes = np.array([angle_deg(eye_forward(f, 180.0), b - anim.eye_position) for f in decoded])
    head = np.array(
        [angle_deg(world(f, 180.0, HEAD_CHAIN) @ [0, 0, 1], b - anim.eye_position) for f in decoded]
    )
    if side < 2:  # within the eyes' range the saccade lands at once, in well under 150 ms
        assert eyes[times >= 0.15].max() < 2.0
    else:  # beyond it the eyes wait at their limit, and the turning head brings them on
        assert eyes[(times >= 0.15) & (times < 0.2)].min() > 5.0
    assert eyes[times >= 1.0].max() < 2.0
    assert head[(times > 0.04) & (times < 0.2)].min() > 15.0  # the head is still on its way
    assert head[times >= 1.0].max() < 15.0  # and gets there
    assert np.all(np.diff(head[times > 0.05]) <= 0.5)  # without going back


def test_without_a_target_the_clone_looks_around_the_audience() -> None:
    anim = Animator(fps=30, seed=23, clone_position=MARK)
    frames = anim.frames_for(None, 0.0, 30.0)
    gaze = np.array([f.gaze for f in decode_all(frames)])
    distinct = np.unique(np.round(gaze[::15], 1), axis=0)
    assert len(distinct) >= 5
    facing = np.array(forward(180.0))
    assert ((gaze - anim.eye_position) @ facing > 3.0).all()  # always out in front


def test_audience_points_can_come_from_the_hall() -> None:
    seats = [(-5.0, 1.2, 8.0), (5.0, 1.2, 8.0), (0.0, 3.0, 15.0)]
    anim = Animator(fps=30, seed=24, clone_position=MARK, audience=seats)
    frames = anim.frames_for(None, 0.0, 20.0)
    gaze = np.array([f.gaze for f in decode_all(frames)])
    near_a_seat = np.min(np.linalg.norm(gaze[:, None, :] - np.array(seats)[None], axis=2), axis=1)
    moving = np.r_[np.linalg.norm(np.diff(gaze, axis=0), axis=1) > 1e-3, False]
    assert (near_a_seat[~moving] < 0.01).mean() > 0.9


def test_bad_gaze_target_is_ignored() -> None:
    anim = Animator(seed=25, clone_position=MARK)
    for bad in [
        (math.nan, 1.0, 2.0),
        (1.0, math.inf, 0.0),
        ("a", "b", "c"),
        (1.0, 2.0),
        (1e300, 0, 0),
    ]:
        frames = anim.frames_for(None, 0.0, 0.2, bad)  # type: ignore[arg-type]
        assert len(frames) == 6


# ---------------------------------------------------------------- body


def test_rest_pose_stands_with_arms_down() -> None:
    f = decode_all(Animator(seed=31, clone_position=MARK).frames_for(None, 0.0, 0.1))[0]
    for side, out in (("left", 1.0), ("right", -1.0)):
        arm = world(
            f, 180.0, ("hips", "spine", "chest", "upperChest", f"{side}Shoulder", f"{side}UpperArm")
        )
        along = arm @ np.array([out, 0.0, 0.0])  # the T-pose arm points out sideways
        assert along[1] < -0.9  # now it hangs down
        for bone in (f"{side}UpperLeg", f"{side}LowerLeg", f"{side}Foot"):
            assert abs(f.rotations[BONE_INDEX[bone]][3]) > 0.9999  # legs straight
    np.testing.assert_allclose(f.hips_pos, [0.0, 0.95, 0.0], atol=0.001)


def test_forearms_come_up_while_speaking() -> None:
    anim = Animator(seed=32, clone_position=MARK)
    u = utterance(SENTENCE)
    idle = decode_all(anim.frames_for(None, 0.0, 1.0))[-1]
    talking = decode_all(anim.frames_for(u, 1.0, None, (0.0, 1.2, 6.0)))
    chain = (
        "hips",
        "spine",
        "chest",
        "upperChest",
        "rightShoulder",
        "rightUpperArm",
        "rightLowerArm",
    )
    fore_idle = world(idle, 180.0, chain) @ np.array([-1.0, 0.0, 0.0])
    fore_talk = world(talking[len(talking) // 2], 180.0, chain) @ np.array([-1.0, 0.0, 0.0])
    assert fore_idle[1] < -0.8  # hanging
    assert fore_talk[2] > 0.5  # pointing forward, hands in front of the waist


def test_breathing_moves_the_chest_at_a_quarter_hertz() -> None:
    anim = Animator(fps=30, seed=33, clone_position=MARK)
    decoded = decode_all(anim.frames_for(None, 0.0, 40.0, (0.0, 1.2, 6.0)))
    pitch = np.array([local_pitch_deg(f, "chest") for f in decoded])
    assert 0.5 < pitch.max() - pitch.min() < 4.0
    spectrum = np.abs(np.fft.rfft(pitch - pitch.mean()))
    freqs = np.fft.rfftfreq(len(pitch), 1 / 30)
    assert freqs[int(np.argmax(spectrum))] == pytest.approx(0.25, abs=0.03)


def test_head_nods_on_stressed_syllables() -> None:
    """The same speech with and without stress: the difference in head pitch is the nod."""
    items = [("_", 0.3), ("m", 0.08), ("aa", 0.2), ("m", 0.08), ("aa", 0.2), ("_", 0.3),
             ("m", 0.08), ("aa", 0.2), ("m", 0.08), ("aa", 0.2), ("_", 0.3)]  # fmt: skip
    stressed = list(items)
    stressed[2] = ("'aa", 0.2)  # first phrase: one stressed syllable
    stressed[7] = ("'aa", 0.2)  # second phrase: one as well
    target = (0.0, 1.2, 6.0)

    def head_pitch(u: Utterance) -> tuple[np.ndarray, np.ndarray, list]:
        anim = Animator(fps=60, seed=34, clone_position=MARK)
        anim.frames_for(None, 0.0, 2.0, target)
        frames = anim.frames_for(u, 2.0, None, target)
        decoded = decode_all(frames)
        return (
            np.array([t for t, _ in frames]) - 2.0,
            np.array([local_pitch_deg(f, "head") for f in decoded]),
            decoded,
        )

    t, flat, flat_frames = head_pitch(utterance(items, start=0.0))
    _, nodding, nod_frames = head_pitch(utterance(stressed, start=0.0))
    nod = nodding - flat
    assert abs(nod).max() > 2.0
    for k in (2, 7):
        centre = sum(d for _, d in items[:k]) + 0.1
        near = np.abs(t - centre) < 0.1
        assert nod[near].max() > 2.0  # tipped down by a few degrees around the syllable
        assert int(np.argmax(np.where(np.abs(t - centre) < 0.3, nod, -1))) == pytest.approx(
            int(np.argmin(np.abs(t - centre))), abs=4
        )
    quiet = np.abs(t - (sum(d for _, d in items[:4]) + 0.1)) < 0.05  # unstressed syllable
    assert abs(nod[quiet]).max() < 1.0
    # an emphasised syllable also gets a hand beat and a brow raise
    brow = np.array([f.expressions[EXPRESSION_INDEX["browInnerUp"]] for f in nod_frames])
    assert brow.max() > 0.3
    assert max(f.expressions[EXPRESSION_INDEX["browInnerUp"]] for f in flat_frames) == 0.0
    beat = max(
        rotation_between_deg(a.rotations[BONE_INDEX[hand]], b.rotations[BONE_INDEX[hand]])
        for a, b in zip(flat_frames, nod_frames, strict=True)
        for hand in ("leftLowerArm", "rightLowerArm")
    )
    assert beat > 5.0


def test_mouth_is_shut_between_answers() -> None:
    anim = Animator(seed=35, clone_position=MARK)
    u = utterance(SENTENCE)
    anim.frames_for(u, 0.0, None)
    later = decode_all(anim.frames_for(None, u.duration_s + 0.5, 2.0))
    for f in later:
        assert f.visemes[VISEME_INDEX["sil"]] == 1.0
        assert f.expressions[EXPRESSION_INDEX["jawOpen"]] == 0.0


def test_speech_without_phoneme_timing_still_moves_the_mouth() -> None:
    rate = 16000
    t = np.arange(int(2.0 * rate)) / rate
    pcm = np.where((t > 0.8) & (t < 1.2), 8000 * np.sin(2 * np.pi * 220 * t), 0).astype(np.int16)
    u = Utterance("?", "en", rate, pcm, ())
    frames = Animator(seed=36, clone_position=MARK).frames_for(u, 5.0, None)
    times = np.array([t for t, _ in frames]) - 5.0
    mouth = mouth_open_track(np.array([f.visemes for f in decode_all(frames)]))
    assert mouth[(times > 0.9) & (times < 1.1)].min() > 0.85
    assert mouth[(times < 0.7) | (times > 1.3)].max() < 0.05


def test_bad_placement_is_refused() -> None:
    with pytest.raises(ValueError):
        Animator(clone_position=(math.nan, 0.0, 0.0))
    with pytest.raises(ValueError):
        Animator(clone_yaw_deg=math.inf)
    with pytest.raises(ValueError):
        Animator(audience=[(0.0, 1.0, 5.0), (1e9, 0.0, 0.0)])
