"""The clone's avatar, built from the persona's appearance: a valid VRM 1.0 file (checked by
the Khronos glTF-Validator and read back with pygltflib), shaped like the person described,
with expressions that move the right parts of the face, the same bytes every build, served
by the server and written by `townhall avatar build`."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from townhall.protocol.skeleton import SKELETON_BONES
from townhall.server.app import TownhallServer
from townhall.server.clone.avatar.appearance import Appearance
from townhall.server.clone.avatar.build import build_avatar
from townhall.server.clone.avatar.mesh import interp_profile
from townhall.server.clone.avatar.vrm import vrm_json
from townhall.server.clone.persona import check_persona, load_persona, sample_persona_path

from .conftest import http_get, make_settings

WEB = Path(__file__).resolve().parent.parent / "server" / "web"
REQUIRED_BONES = {
    "hips",
    "spine",
    "head",
    "leftUpperArm",
    "leftLowerArm",
    "leftHand",
    "rightUpperArm",
    "rightLowerArm",
    "rightHand",
    "leftUpperLeg",
    "leftLowerLeg",
    "leftFoot",
    "rightUpperLeg",
    "rightLowerLeg",
    "rightFoot",
}
MOUTH = ("aa", "ih", "ou", "ee", "oh")


@pytest.fixture(scope="module")
def dana() -> bytes:
    persona = load_persona(sample_persona_path())
    return build_avatar(persona.appearance, persona.name)


def validate(paths: list[Path]) -> list[dict[str, object]]:
    """The Khronos glTF-Validator's report of each file (npm gltf-validator, via node)."""
    assert (WEB / "node_modules" / "gltf-validator").is_dir(), "run `make setup` (npm ci)"
    proc = subprocess.run(
        ["node", "test/validate_gltf.mjs", *map(str, paths)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(paths), proc.stderr
    return reports


def accessor_array(g: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """An accessor's data as floats, sparse accessors applied (tests read what they check)."""
    a = g.accessors[index]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a.type]
    dtype = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}[a.componentType]
    out = np.zeros((a.count, width))
    if a.bufferView is not None:
        v = g.bufferViews[a.bufferView]
        start = v.byteOffset + (a.byteOffset or 0)
        out = np.frombuffer(blob, dtype, a.count * width, start).reshape(a.count, width)
        out = out.astype(np.float64)
    if a.sparse is not None and a.sparse.count:
        iv = g.bufferViews[a.sparse.indices.bufferView]
        idx = np.frombuffer(blob, np.uint32, a.sparse.count, iv.byteOffset)
        vv = g.bufferViews[a.sparse.values.bufferView]
        out = out.copy()
        out[idx] = np.frombuffer(blob, np.float32, a.sparse.count * width, vv.byteOffset).reshape(
            -1, width
        )
    return out


def test_the_sample_personas_avatar_is_a_valid_vrm(dana: bytes, tmp_path: Path) -> None:
    path = tmp_path / "dana.vrm"
    path.write_bytes(dana)
    (report,) = validate([path])
    assert report["errors"] == 0, report["messages"]
    # The only warning allowed: the validator does not know VRMC_vrm (three-vrm checks it).
    warnings = [m for m in report["messages"] if m.startswith("1 ")]  # type: ignore[union-attr]
    assert warnings == [], warnings
    info = report["info"]
    assert info["hasSkins"] and info["hasMorphTargets"], info  # type: ignore[index]
    assert info["totalTriangleCount"] > 30_000, info  # type: ignore[index]

    doc = vrm_json(dana)
    vrm = doc["extensions"]["VRMC_vrm"]  # type: ignore[index]
    assert vrm["specVersion"] == "1.0"
    bones = vrm["humanoid"]["humanBones"]
    assert set(bones) >= REQUIRED_BONES and set(bones) == set(SKELETON_BONES)
    assert vrm["meta"]["name"] == "Dana Reyes" and vrm["meta"]["licenseUrl"]
    assert vrm["lookAt"]["type"] == "bone"
    preset = vrm["expressions"]["preset"]
    for name in (*MOUTH, "blink", "blinkLeft", "blinkRight", "happy", "sad", "surprised"):
        assert preset[name]["morphTargetBinds"], name


def test_the_avatar_reads_back_as_a_person_whose_face_moves(dana: bytes) -> None:
    g = pygltflib.GLTF2.load_from_bytes(dana)
    blob = g.binary_blob()
    nodes = {n.name: i for i, n in enumerate(g.nodes)}
    # The rest pose is the protocol's: translations only (no node rotations), T-pose.
    for name in SKELETON_BONES:
        assert not g.nodes[nodes[name]].rotation, name
    skin = g.skins[0]
    assert [g.nodes[j].name for j in skin.joints] == list(SKELETON_BONES)

    def world(name: str) -> np.ndarray:
        total = np.zeros(3)
        parents = {c: i for i, n in enumerate(g.nodes) for c in (n.children or [])}
        i = nodes[name]
        while i in parents or i == nodes[name]:
            total += g.nodes[i].translation or 0
            if i not in parents:
                break
            i = parents[i]
        return total

    # Her proportions: 1.68 m tall, arms out along +-X, head on top, facing +Z.
    positions = []
    for mesh in g.meshes:
        for prim in mesh.primitives:
            positions.append(accessor_array(g, blob, prim.attributes.POSITION))
    allp = np.concatenate(positions)
    height = allp[:, 1].max() - allp[:, 1].min()
    assert 1.62 < height < 1.74, height
    assert allp[:, 1].min() > -0.01
    span = allp[:, 0].max() - allp[:, 0].min()
    assert 1.45 < span < 1.85, span  # fingertip to fingertip in the T-pose
    assert world("head")[1] > 1.4 and world("leftHand")[0] > 0.5 > -0.5 > world("rightHand")[0]
    assert world("leftEye")[2] > world("head")[2] + 0.05  # eyes in the face, in front

    # The face mesh: each mouth shape opens the mouth (lower lip down), blinks close lids.
    face = next(m for m in g.meshes if m.name == "Face")
    names = face.extras["targetNames"]
    drops = {}
    for name in (*MOUTH, "blink"):
        k = names.index(name)
        moved = []
        for prim in face.primitives:
            d = accessor_array(g, blob, prim.targets[k]["POSITION"])
            p = accessor_array(g, blob, prim.attributes.POSITION)
            moved.append(np.concatenate([p, d], axis=1))
        both = np.concatenate(moved)
        front = both[both[:, 2] > world("leftEye")[2] - 0.02]
        mouth_region = front[front[:, 1] < world("leftEye")[1] - 0.05]
        drops[name] = -mouth_region[:, 4].min()
        if name == "blink":
            eyes = front[np.abs(front[:, 1] - world("leftEye")[1]) < 0.02]
            assert -eyes[:, 4].min() > 0.006, "the lids do not come down"
    assert drops["aa"] > 0.012, drops  # a wide open jaw
    assert drops["aa"] > drops["oh"] > drops["ih"] > 0.003, drops


def test_profiles_pass_through_their_keys_and_never_overshoot() -> None:
    keys = [(0.0, 1.0, 0.0), (1.0, 3.0, 10.0), (2.0, 2.0, 20.0), (4.0, 2.5, 30.0)]
    t = np.linspace(0.0, 4.0, 81)
    out = interp_profile(keys, t)
    for x, *ys in keys:
        assert np.allclose(out[t == x][0], ys), x  # through every key, each in its own span
    assert np.allclose(out[:, 1][t <= 1.0], 10.0 * t[t <= 1.0])  # between equal slopes, a line
    first = out[:, 0]
    assert np.all(np.diff(first[t <= 1.0]) >= 0) and np.all(np.diff(first[t >= 2.0]) >= 0)
    assert first.max() <= 3.0 + 1e-9 and first[(t > 1) & (t < 2)].min() >= 2.0 - 1e-9


def test_the_body_has_her_proportions(dana: bytes) -> None:
    """Hips, waist and chest as wide as a person's, in that order (not the neck's width)."""
    g = pygltflib.GLTF2.load_from_bytes(dana)
    blob = g.binary_blob()
    allp = np.concatenate(
        [accessor_array(g, blob, p.attributes.POSITION) for m in g.meshes for p in m.primitives]
    )
    height = allp[:, 1].max()

    def width(fraction: float) -> float:
        band = allp[np.abs(allp[:, 1] - fraction * height) < 0.008]
        return float(band[:, 0].max() - band[:, 0].min())

    hips, waist, chest = width(0.5), width(0.615), width(0.72)
    assert 0.3 < hips < 0.42 and 0.2 < waist < 0.3 and 0.26 < chest < 0.36, (hips, waist, chest)
    assert waist < hips and waist < chest, (hips, waist, chest)


def test_the_same_appearance_builds_the_same_bytes(dana: bytes) -> None:
    persona = load_persona(sample_persona_path())
    assert build_avatar(persona.appearance, persona.name) == dana


def test_appearances_differ_where_they_should(tmp_path: Path) -> None:
    variants = {
        "suit": Appearance(
            body="masculine",
            height_m=1.85,
            hair_style="short",
            clothing="suit",
            glasses="rectangular",
            skin_tone="dark",
        ),
        "skirt": Appearance(lower="skirt", hair_style="bun", glasses="round", height_m=1.55),
        "bald": Appearance(hair_style="bald", clothing="sweater", build="broad"),
        "long": Appearance(hair_style="long", clothing="shirt", build="slim"),
    }
    paths = []
    for name, ap in variants.items():
        data = build_avatar(ap, name)
        (tmp_path / f"{name}.vrm").write_bytes(data)
        paths.append(tmp_path / f"{name}.vrm")
        mats = {m["name"] for m in vrm_json(data)["materials"]}  # type: ignore[attr-defined]
        assert ("glasses" in mats) == (ap.glasses != "none"), (name, mats)
        assert ("hair" in mats) == (ap.hair_style != "bald"), (name, mats)
        assert ("tie" in mats) == (ap.clothing == "suit"), (name, mats)
    for report in validate(paths):
        assert report["errors"] == 0, report


def test_persona_check_reports_bad_appearance(tmp_path: Path) -> None:
    persona = tmp_path / "p"
    shutil.copytree(sample_persona_path(), persona)
    text = (persona / "persona.toml").read_text()
    text = text.replace('hair_style = "bob"', 'hair_style = "mohawk"')
    text = text.replace("height_m = 1.68", "height_m = 3.5")
    text = text.replace('clothing_colour = "navy"', 'clothing_colour = "plaid"')
    (persona / "persona.toml").write_text(text)
    ok, report = check_persona(persona)
    assert not ok
    for field in ("appearance.hair_style", "appearance.height_m", "appearance.clothing_colour"):
        assert field in report, report


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "townhall.server.ops.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_townhall_avatar_build_writes_the_file(dana: bytes, tmp_path: Path) -> None:
    out = tmp_path / "dana.vrm"
    proc = run_cli("avatar", "build", str(sample_persona_path()), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == dana
    assert "Dana Reyes" in proc.stdout
    bad = run_cli("avatar", "build", str(tmp_path / "nowhere"))
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("townhall: persona "), bad.stderr


async def test_the_server_serves_the_built_avatar(dana: bytes, tmp_path: Path) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, _, body = await asyncio.to_thread(http_get, srv.url + "/avatar.json")
        assert status == 200
        info = json.loads(body)
        assert info == {"vrm": "/avatar.vrm", "source": "built", "name": "Dana Reyes"}
        got = await asyncio.to_thread(_get_bytes, srv.url + "/avatar.vrm")
        assert got == dana


def _get_bytes(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return io.BytesIO(resp.read()).getvalue()
