"""The JS protocol library (server/web/src/protocol) agrees with the Python one and SPEC.md.

Node runs the library (server/web/test/protocol_check.mjs, connection_check.mjs) and prints
JSON; these tests compare it with SPEC.md's vectors, the Python catalog and decoders, and a
real server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import random
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from townhall.protocol import codec, quant, skeleton
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import BY_TYPE, SEQUENCED, Message
from townhall.server.app import TownhallServer
from townhall.server.core.qa import QaQueue
from townhall.server.gateway.tokens import issue_token

from .conftest import SECRET, TokenMaker, make_settings

ROOT = Path(__file__).parent.parent
WEB = ROOT / "server" / "web"
SPEC = ROOT / "protocol" / "SPEC.md"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def node(*args: str, stdin: Any = None, flags: tuple[str, ...] = ()) -> Any:
    proc = subprocess.run(
        [str(NODE), *flags, *args],
        cwd=WEB,
        input=None if stdin is None else json.dumps(stdin),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def run(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return node("test/protocol_check.mjs", "run", stdin=tasks)  # type: ignore[no-any-return]


@functools.cache
def js_vectors() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in node("test/protocol_check.mjs", "vectors", str(SPEC))}


def spec_vectors() -> list[dict[str, str]]:
    blocks = re.findall(r"```vector\n(.*?)```", SPEC.read_text(), re.S)
    return [dict(line.split(": ", 1) for line in b.strip().splitlines()) for b in blocks]


MESSAGE_VECTORS = [v for v in spec_vectors() if v["kind"] == "message"]
QUANT_VECTORS = [v for v in spec_vectors() if v["kind"] != "message"]


def plain(value: Any) -> Any:
    """A Python message as the JS library shows it: objects with `type`, bytes as {"hex"}."""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        if isinstance(value, Message):
            out["type"] = type(value).__name__
        for name in value.__struct_fields__:
            out[name] = plain(getattr(value, name))
        return out
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def decode_any(data: bytes) -> Message:
    return (
        codec.decode_client(data)
        if msgspec.msgpack.decode(data)[0] < 64
        else codec.decode_server(data)
    )


# ---------------------------------------------------------------- messages


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=lambda v: v["name"])
def test_message_vector(vector: dict[str, str]) -> None:
    got = js_vectors()[vector["name"]]
    assert "error" not in got, got["error"]
    result = got["result"]
    # The documented array, field for field, and the exact bytes back.
    assert result["array"] == json.loads(vector["array"])
    assert result["reencoded"] == vector["hex"]
    # Field names and nesting as the Python catalog decodes the same bytes.
    expected = plain(decode_any(bytes.fromhex(vector["hex"])))
    assert result["decoded"] == expected
    assert result["decoded"]["type"] == vector["message"]


def test_spec_vectors_cover_every_message() -> None:
    named = {v["message"] for v in MESSAGE_VECTORS}
    assert named == {cls.__name__ for cls in BY_TYPE.values()}


def test_catalog_matches_python() -> None:
    cat = node("test/protocol_check.mjs", "catalog")
    js = {m["name"]: m for m in cat["messages"]}
    assert set(js) == {cls.__name__ for cls in BY_TYPE.values()}
    for code, cls in BY_TYPE.items():
        m = js[cls.__name__]
        assert m["type"] == code, cls.__name__
        fields = msgspec.structs.fields(cls)
        assert [f["name"] for f in m["fields"]] == [f.name for f in fields], cls.__name__
        for jf, pf in zip(m["fields"], fields, strict=True):
            assert jf["optional"] == (not pf.required), f"{cls.__name__}.{pf.name}"
            if not pf.required:
                default = [] if pf.default_factory is list else pf.default
                assert jf.get("default") == default, f"{cls.__name__}.{pf.name}"
    assert set(cat["sequenced"]) == {cls.__name__ for cls in SEQUENCED}
    assert {int(k): v for k, v in cat["error_codes"].items()} == {
        c.value: c.name for c in ErrorCode
    }
    assert cat["skeleton_bones"] == list(skeleton.SKELETON_BONES)
    assert cat["visemes"] == list(skeleton.VISEMES)
    assert cat["expressions"] == list(skeleton.EXPRESSIONS)
    assert cat["vrm_vowels"] == list(skeleton.VRM_VOWELS)
    assert cat["viseme_to_vrm"] == [list(row) for row in skeleton.VISEME_TO_VRM]
    assert cat["sizes"] == {
        "quat": quant.QUAT_BYTES,
        "pose": quant.POSE_BYTES,
        "crowd": quant.CROWD_RECORD_BYTES,
        "coarse": quant.COARSE_RECORD_BYTES,
        "skeleton": quant.SKELETON_BYTES,
        "animation": quant.ANIMATION_FRAME_BYTES,
    }


def sample_messages(rng: random.Random) -> list[Message]:
    """One message of every type with varied (valid) values, built from the Python catalog."""
    from townhall.protocol import messages as m

    def word(n: int = 8) -> str:
        return "".join(rng.choice("abcdefghij йїє") for _ in range(rng.randint(0, n)))

    participant = m.Participant(rng.randint(0, 65535), word(), word(), "attendee", -1, 5)
    question = m.QuestionInfo(2**32 - 1, word(40), "uk", "approved", 3, -1, word(), True, 1, 0, 9)
    stage = m.StageStart(2**40, 5, 6, word(30), "generated", ["S1", "S2"], "en", word(), 17, -5)
    anim = quant.encode_animation_frame(
        [0, 1, 0], [[0, 0, 0, 1]] * 23, [0.5] * 15, [0.25] * 20, [1, 2, 3]
    )
    return [
        m.Join(1, 3, "t" * 300, "r", 2**53 - 1, "web"),
        m.Ping(-(2**40)),
        m.Pose(123, bytes(range(30)), 255),
        m.Hand(False),
        m.Leave(),
        m.KeyframeRequest(),
        m.Ask(2**32 - 1, word(400), "uk"),
        m.Vote(1, 2, False),
        m.Moderate(3, "edit", 4, word(), 0),
        m.Review(5, 6, "skip", ""),
        m.Control(7, "review", "on"),
        m.People(8, "ban", 65535),
        m.Welcome(1, "main", 3, "u", "n", "moderator", -1, "res", 10**12, 2**40, 20, True),
        m.Error(22, "kicked", 0, True, 0),
        m.Pong(1, -2, 3),
        m.Keyframe(
            9, 10, [participant], bytes(12), [question], stage, "moderated", True, "doors", 17650332
        ),
        m.Joined(1, participant),
        m.Left(2, 65535),
        m.HandChanged(3, 0, True),
        m.CrowdNear(4, bytes(66)),
        m.CrowdFar(5, b""),
        m.Ack(6, 7, True),
        m.QuestionChanged(8, question),
        stage,
        m.StageEnd(10, 11, "stopped", word(3000), "escalated", []),
        m.StagePacket(
            1, 2, 3, 40000, "approved", [b"\x01" * 60, b""], [0, 33333], anim + anim,
            [m.Caption(3, 300000, "слово"), m.Caption(4, 1, "")],
        ),
        m.Draft(1, 2, word(), word(100), "approved", ["A"], "en"),
        m.RoomMode(3, "auto", False),
        m.EventState(4, "hold", 1765033200),
        m.ParticipantChanged(4, participant),
        m.Mic(9, "ask", 12, word(100)),
        m.MicOffer(10, "v=0\r\n" + word(2000)),
        m.MicRelease(11),
        m.BoardRequest(12, 2**32 - 1, 100),
        m.Board(12, 50, 2**32 - 1, [question, question]),
        m.MicChanged(5, 12, "ended", "time_limit", 0),
        m.MicAnswer(10, "v=0\r\n" + word(1000)),
        m.StagePacket(0, 9, 5, 40000, "live", [b"\x02" * 40], [], b"", [], 12),
        m.StudioList(13, "statements", word(20)),
        m.StatementSave(14, "S01", 3, "remote", word(1000), "uk", ["a", word(5)], "2027-01-31",
                        ["U1"], True),
        m.InboxAnswer(15, 2**32 - 1, "decline", word(100)),
        m.AnswerReview(16, 4, "retract", word(100), "x", True),
        m.StudioItems(
            13, "inbox",
            [m.InboxItem(1, word(), "no_material", word(), "u", word(), "uk", 1.5, word(), 1,
                         "post", word(), 7)],
            [m.StatementInfo("S1", 2, "t", word(), "en", "2026-01-01", ["a"], "Ann", 2.25, "",
                             ["U1"], "answer:3", False, True)],
            [m.AnswerInfo(3, 1, word(), word(), "leader", ["L1"], "en", 3.5, "done", "endorsed")],
            [m.AuditEntry(4.75, word(), "operator", "studio:endorse", 1, word())],
        ),
        m.FollowUp(6, 1, "correction", word(100), "leader", word()),
    ]  # fmt: skip


def test_every_message_round_trips_through_js() -> None:
    msgs = sample_messages(random.Random(7))
    assert {type(x) for x in msgs} == set(BY_TYPE.values())
    results = run([{"op": "decode", "hex": codec.encode(x).hex()} for x in msgs])
    for message, got in zip(msgs, results, strict=True):
        assert "error" not in got, (message, got)
        assert got["result"]["decoded"] == plain(message)
        assert got["result"]["reencoded"] == codec.encode(message).hex()


def test_encode_fills_trailing_defaults_and_checks_input() -> None:
    vectors = {v["name"]: v["hex"] for v in MESSAGE_VECTORS}
    ask = {"type": "Ask", "ref": 17, "text": "What is our plan for Lviv?"}
    merge = {"type": "Moderate", "ref": 19, "action": "merge", "question": 3, "target": 2}
    results = run(
        [
            {"op": "encode", "message": ask},
            {"op": "encode", "message": merge},
            {"op": "encode", "message": {"type": "Leave"}},
            {"op": "encode", "message": {"type": "Nope"}},
            {"op": "encode", "message": {"type": "Ask", "text": "no ref"}},
            {"op": "encode", "message": {"type": "Vote", "ref": -1, "question": 2}},
            {"op": "encode", "message": {"type": "Hand", "raised": 1}},
            {"op": "decode", "hex": "9163"},  # [99]
            {"op": "decode", "hex": "c1"},  # not msgpack
            {"op": "decodeArray", "array": [73, 5]},  # trailing defaults omitted
            {"op": "decodeArray", "array": [73, 5, 0, False, 1]},  # an extra element
            {"op": "decodeArray", "array": [69, 5]},  # Left without its slot
            {"op": "decodeArray", "array": [69, 5, "x"]},
            {"op": "decodeArray", "array": [64, 1, "main"]},
        ]
    )  # fmt: skip
    assert results[0]["result"] == vectors["msg-ask"]
    assert results[1]["result"] == vectors["msg-moderate-merge"]
    assert results[2]["result"] == vectors["msg-leave"]
    assert "unknown message type" in results[3]["error"] and "Nope" in results[3]["error"]
    assert "missing field ref" in results[4]["error"]
    assert "Vote.ref" in results[5]["error"]
    assert "Hand.raised" in results[6]["error"]
    assert "unknown message type 99" in results[7]["error"]
    assert "not a msgpack value" in results[8]["error"]
    assert results[9]["result"] == {"type": "Ack", "ref": 5, "id": 0, "merged": False}
    assert "at most 3" in results[10]["error"]
    assert "missing field slot" in results[11]["error"]
    assert "Left.slot" in results[12]["error"]
    assert "missing field" in results[13]["error"]


# ---------------------------------------------------------------- binary records

ROT_DEG, POS_M, GAZE_M, WEIGHT = 0.16, 0.0005, 0.005, 1 / 510
YAW_DEG, PITCH_DEG, HAND_M = 0.703, 0.5, 0.005


def angle_deg(q: Any, p: Any) -> float:
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    dot = abs(float(np.dot(q / np.linalg.norm(q), p / np.linalg.norm(p))))
    return math.degrees(2 * math.acos(min(1.0, dot)))


def close(a: Any, b: Any, tol: float) -> bool:
    # 1e-6: decoders return float32 (SPEC §9), which adds its own rounding to the bound.
    return bool(np.all(np.abs(np.asarray(a, float) - np.asarray(b, float)) <= tol + 1e-6))


def check_device(dev: dict[str, Any], pos: Any, rot: Any) -> None:
    assert close(dev["pos"], pos, POS_M), (dev, pos)
    assert angle_deg(dev["rot"], rot) <= ROT_DEG, (dev, rot)


def check_skeleton(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert close(got["hipsPos"], want["hips_pos"], POS_M)
    rot = np.asarray(got["rotations"]).reshape(-1, 4)
    assert len(rot) == len(skeleton.SKELETON_BONES)
    for g, w in zip(rot, want["rotations"], strict=True):
        assert angle_deg(g, w) <= ROT_DEG


@pytest.mark.parametrize("vector", QUANT_VECTORS, ids=lambda v: v["name"])
def test_quant_vector(vector: dict[str, str]) -> None:
    got = js_vectors()[vector["name"]]
    assert "error" not in got, got["error"]
    out = got["result"]
    want = json.loads(vector.get("decoded") or vector["input"])
    kind = vector["kind"]
    devices = ("head", "left", "right")
    if kind == "quat":
        assert angle_deg(out, want) <= ROT_DEG
        assert abs(np.linalg.norm(out) - 1) < 1e-6
    elif kind == "pose":
        for i, d in enumerate(devices):
            check_device(out[d], want["pos"][i], want["rot"][i])
    elif kind == "crowd":
        assert [r["slot"] for r in out] == want["slots"]
        assert [r["flags"] for r in out] == want["flags"]
        for n, rec in enumerate(out):
            for i, d in enumerate(devices):
                check_device(rec[d], want["pos"][n][i], want["rot"][n][i])
    elif kind == "coarse":
        assert [r["slot"] for r in out] == want["slots"]
        assert [r["flags"] for r in out] == want["flags"]
        for r, yaw, pitch, hand in zip(
            out, want["yaw_deg"], want["pitch_deg"], want["hand_height_m"], strict=True
        ):
            assert abs((r["yawDeg"] - yaw + 180) % 360 - 180) <= YAW_DEG
            assert -180 <= r["yawDeg"] < 180
            assert abs(r["pitchDeg"] - pitch) <= PITCH_DEG
            assert abs(r["handHeightM"] - hand) <= HAND_M
    elif kind == "skeleton":
        check_skeleton(out, want)
    elif kind == "weights":
        assert close(out, want, WEIGHT)
    elif kind == "animation":
        check_skeleton(out, want)
        assert close(out["visemes"], want["visemes"], WEIGHT)
        assert close(out["expressions"], want["expressions"], WEIGHT)
        assert close(out["gaze"], want["gaze"], GAZE_M)
    else:
        pytest.fail(f"no check for vector kind {kind}")


def test_records_decode_like_python() -> None:
    rng = np.random.default_rng(3)
    n = 40
    q = rng.normal(size=(n, 3, 4))
    pos = rng.uniform(-3, 3, size=(n, 3, 3))
    slots = rng.integers(0, 65536, n)
    flags = rng.integers(0, 16, n)
    crowd = quant.encode_crowd(slots, flags, pos, q)
    coarse = quant.encode_coarse(
        slots, flags, rng.uniform(-400, 400, n), rng.uniform(-90, 90, n), rng.uniform(0, 2.5, n)
    )
    frames = [
        quant.encode_animation_frame(
            rng.uniform(-1, 1, 3),
            rng.normal(size=(23, 4)),
            rng.uniform(0, 1, 15),
            rng.uniform(0, 1, 20),
            rng.uniform(-300, 300, 3),
        )
        for _ in range(3)
    ]
    codes = [int(c) for c in quant.encode_quats(rng.normal(size=(200, 4)))]
    results = run(
        [
            {"op": "quant", "kind": "crowd", "hex": crowd.hex()},
            {"op": "quant", "kind": "coarse", "hex": coarse.hex()},
            {"op": "quant", "kind": "animations", "hex": b"".join(frames).hex()},
            *({"op": "quatCode", "code": c} for c in codes),
        ]
    )
    for r in results:
        assert "error" not in r, r
    py = quant.decode_crowd(crowd)
    for i, rec in enumerate(results[0]["result"]):
        assert (rec["slot"], rec["flags"]) == (py.slots[i], py.flags[i])
        for j, d in enumerate(("head", "left", "right")):
            assert close(rec[d]["pos"], py.pos[i, j], 1e-6)
            assert close(rec[d]["rot"], py.rot[i, j], 1e-6)
    pc = quant.decode_coarse(coarse)
    got = results[1]["result"]
    assert [r["slot"] for r in got] == pc.slots.tolist()
    assert close([r["yawDeg"] for r in got], pc.yaw_deg, 1e-4)
    assert close([r["pitchDeg"] for r in got], pc.pitch_deg, 1e-6)
    assert close([r["handHeightM"] for r in got], pc.hand_height_m, 1e-6)
    for frame, js in zip(frames, results[2]["result"], strict=True):
        pf = quant.decode_animation_frame(frame)
        assert close(js["hipsPos"], pf.hips_pos, 1e-6)
        assert close(js["rotations"], pf.rotations.reshape(-1), 1e-6)
        assert close(js["visemes"], pf.visemes, 1e-6)
        assert close(js["expressions"], pf.expressions, 1e-6)
        assert close(js["gaze"], pf.gaze, 1e-4)
    for code, r in zip(codes, results[3:], strict=True):
        assert close(r["result"], quant.decode_quats(np.uint32(code)), 1e-6)


def test_bad_records_are_rejected() -> None:
    frame = quant.encode_animation_frame(
        [0, 1, 0], [[0, 0, 0, 1]] * 23, [0] * 15, [0] * 20, [0] * 3
    )
    bad_code = bytearray(frame)
    bad_code[6 + 4 * 5 : 6 + 4 * 6] = (0x200 << 20).to_bytes(4, "little")  # head: k = -512
    results = run(
        [
            {"op": "quatCode", "code": 0x200 << 20},
            {"op": "quatCode", "code": (511 << 20) | (511 << 10) | 511},
            {"op": "quant", "kind": "animation", "hex": frame[:-1].hex()},
            {"op": "quant", "kind": "animation", "hex": bytes(bad_code).hex()},
            {"op": "quant", "kind": "crowd", "hex": "00" * 34},
            {"op": "quant", "kind": "coarse", "hex": "0000005b0000"},  # pitch 91
        ]
    )
    assert "reserved" in results[0]["error"]
    assert "longer than a unit quaternion" in results[1]["error"]
    assert "expected 139 bytes" in results[2]["error"]
    assert "head" in results[3]["error"] and "reserved" in results[3]["error"]
    assert "multiple of the 33-byte record" in results[4]["error"]
    assert "pitch" in results[5]["error"]


def test_visemes_to_vrm_matches_python() -> None:
    v = [0.1 * (i % 7) for i in range(15)]
    (r,) = run([{"op": "visemesToVrm", "visemes": v}])
    assert close(r["result"], skeleton.visemes_to_vrm(np.asarray(v)), 1e-6)


# ---------------------------------------------------------------- clock, order, state


def test_clock_sync_keeps_16_samples_and_the_best_rtt() -> None:
    # t0 local, t1/t2 server, t3 local; true offset 1,000,000 us.
    samples = [[0, 1_000_500 + 900, 1_000_500 + 950, 2000]]  # rtt 1950
    samples += [
        [i * 10_000, i * 10_000 + 1_000_000 + 300, i * 10_000 + 1_000_000 + 310, i * 10_000 + 700]
        for i in range(1, 20)
    ]
    samples[5][3] -= 300  # a fast one (rtt 100) that stays in the window
    (r,) = run([{"op": "clock", "samples": samples, "media": 5_000_000}])
    res = r["result"]
    assert res["count"] == 16
    t0, t1, t2, t3 = samples[5]
    assert res["rttUs"] == (t3 - t0) - (t2 - t1)
    assert res["offsetUs"] == ((t1 - t0) + (t2 - t3)) / 2
    assert res["localMs"] == pytest.approx((5_000_000 - res["offsetUs"]) / 1000)
    # Once the fast sample leaves the window, the next best takes over.
    (r,) = run([{"op": "clock", "samples": samples + samples[6:12], "media": 0}])
    assert r["result"]["rttUs"] == 700 - 10


@pytest.mark.parametrize("mode", ["auto", "moderated"])
def test_question_order_matches_the_server(mode: str) -> None:
    rng = random.Random(11)
    queue = QaQueue(mode=mode)  # type: ignore[arg-type]
    for i in range(30):
        q, _ = queue.submit(
            f"question number {i} about topic{i}", asker_id=f"u{i}", asker_name="x", now=i
        )
        q.voters |= {f"v{j}" for j in range(rng.randint(0, 4))}
        q.pinned = rng.random() < 0.15
        q.state = rng.choice(["submitted", "approved", "approved", "answered", "rejected"])
    for i in rng.sample(range(1, 31), 6):
        if queue.questions[i].state in ("submitted", "approved"):
            queue.move(i, rng.randint(1, 5))
    infos = [plain(q.info()) for q in queue.questions.values()]
    rng.shuffle(infos)
    (r,) = run([{"op": "order", "questions": infos, "mode": mode}])
    assert r["result"] == [q.id for q in queue.ordered()]


def test_room_state_applies_keyframes_and_events() -> None:
    def p(slot: int, flags: int = 0) -> list[Any]:
        return [slot, f"u{slot}", f"N{slot}", "attendee", slot, flags]

    def q(i: int, state: str = "approved", votes: int = 0) -> list[Any]:
        return [i, f"q{i}", "en", state, votes, -1, "a", False, 0, 0, 0]

    stage = [75, 3, 7, 1, "q1", "approved", [], "en", "AI", -1, 0]
    msgs = [
        [67, 2, 0, [p(1, 1), p(2), p(3, 1)], {"hex": ""},
         [q(1, "answering"), q(2), q(3, "submitted", 5)], None, "moderated", True],
        [78, 7, 1, "q1", "draft", "approved", [], "en"],
        [78, 8, 2, "q2", "draft", "approved", [], "en"],
        stage,
        [70, 4, 2, True],
        [70, 5, 1, False],
        [70, 6, 1, True],
        [68, 7, p(4, 1)],
        [69, 8, 3],
        [74, 8, q(2, "rejected")],  # a duplicate seq: ignored
        [74, 9, q(3, "approved", 5)],
        [76, 10, 7, "done", "text", "approved", []],
        [74, 11, q(1, "answered")],
    ]  # fmt: skip
    (r,) = run([{"op": "state", "messages": msgs}])
    s = r["result"]
    assert s["seq"] == 11
    assert s["participants"] == [1, 2, 4]
    assert s["raised"] == [2, 1, 4]  # in the order hands went up
    assert s["open"] == [3, 2]  # moderated, nobody placed: then votes; the duplicate was ignored
    assert s["next"] == 3
    assert s["done"] == [1]
    assert s["stage"] is None and s["drafts"] == [8]
    assert (s["mode"], s["review"]) == ("moderated", True)


# ---------------------------------------------------------------- the connection, for real


async def test_connection_against_a_real_server(tmp_path: Path, token: TokenMaker) -> None:
    settings = make_settings(tmp_path, qa={"mode": "moderated"})
    async with TownhallServer(settings) as srv:
        now = time.time()
        config = {
            "url": srv.ws_url,
            "spectator": token("spec", role="spectator", name="Sam"),
            "moderator": token("mod", role="moderator", name="Mo"),
            "bad": "not-a-token",
            "expired": issue_token(
                SECRET, user_id="old", name="Old", role="moderator", room="main",
                ttl_s=60, now=now - 3600,
            ),
            "wrongRoom": token("w", role="moderator", room="elsewhere"),
        }  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            str(NODE),
            "--experimental-websocket",
            "--no-warnings",
            "test/connection_check.mjs",
            cwd=WEB,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(config).encode()), 60)
        assert proc.returncode == 0, err.decode()
        report = json.loads(out)
        qid = report["ask"]["ack"]["id"]
        assert srv.authority.qa.questions[qid].text == "How do we think about remote work?"
    assert report["welcome"]["role"] == "spectator" and report["welcome"]["name"] == "Sam"
    assert report["clock"]["synced"] and report["clock"]["samples"] >= 5
    # The media clock tracks Welcome's stamp: a wrong clock is off by seconds or more; how
    # closely it tracks depends on how busy the machine is (bench/, not a test).
    assert abs(report["clock"]["driftUs"]) < 1_000_000
    assert report["ask"]["ok"] is True
    assert report["questionSeen"] is True
    assert report["notAllowed"]["ok"] is False
    assert report["notAllowed"]["error"]["code"] == ErrorCode.NOT_ALLOWED
    # A dropped connection comes back by itself, resumed, with what it missed.
    assert report["resume"]["states"][:2] == ["reconnecting", "open"]
    assert report["resume"]["resumed"] is True
    assert report["resume"]["pinnedSeen"] is True
    assert report["resume"]["lastSeqAfter"] > report["resume"]["lastSeqBefore"]
    # Join failures reject with the server's code and reason and do not reconnect.
    for key, code in (("bad", 7), ("expired", 8), ("wrongRoom", 9)):
        assert report[key]["code"] == code, report[key]
        assert report[key]["reason"] and report[key]["state"] == "closed"
    # A kicked spectator is closed for good with KICKED.
    assert report["kick"]["ok"] is True
    assert report["kick"]["closedWith"] == ErrorCode.KICKED
    assert report["kick"]["stateLater"] == "closed"
    assert report["afterClose"] == {
        "ok": False,
        "ref": report["afterClose"]["ref"],
        "error": {"code": 0, "reason": "not connected"},
    }
    # Sequencing and request plumbing against a scripted socket.
    fake = report["fake"]
    assert fake["delivered"] == ["Welcome", "Keyframe", "Joined", "Keyframe", "RoomMode"]
    assert fake["sent"].count("KeyframeRequest") == 1
    assert fake["lastSeq"] == 10
    assert fake["ack"] == {"ok": True, "id": 42}
    assert fake["error"] == {"ok": False, "code": 6}
    assert fake["timeout"] == {"ok": False, "error": {"code": 0, "reason": "no answer"}}
