"""protocol/SPEC.md stays true: its vectors decode as stated, its tables match the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest

from townhall.protocol import codec
from townhall.protocol.errors import FATAL_CODES, ErrorCode
from townhall.protocol.messages import BY_TYPE, CLIENT_MESSAGES, SERVER_MESSAGES

SPEC = Path(__file__).parent.parent / "protocol" / "SPEC.md"


def vector_blocks(kind: str) -> list[dict[str, str]]:
    blocks = re.findall(r"```vector\n(.*?)```", SPEC.read_text(), re.S)
    parsed = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.strip().splitlines())
        if fields.get("kind") == kind:
            parsed.append(fields)
    return parsed


MESSAGE_VECTORS = vector_blocks("message")


def from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def test_spec_has_a_vector_for_every_message() -> None:
    named = {v["message"] for v in MESSAGE_VECTORS}
    assert named == {c.__name__ for c in CLIENT_MESSAGES + SERVER_MESSAGES}


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=lambda v: v["name"])
def test_message_vector(vector: dict[str, str]) -> None:
    data = bytes.fromhex(vector["hex"])
    # An independent msgpack implementation reads the bytes as the array the spec shows.
    assert msgpack.unpackb(data) == from_json(json.loads(vector["array"]))
    kind = data[1] if data[0] in (0xDC, 0xDD) else msgpack.unpackb(data)[0]
    decode = codec.decode_client if kind < 64 else codec.decode_server
    message = decode(data)
    assert type(message).__name__ == vector["message"]
    assert codec.encode(message) == data


def test_error_table_matches_codes() -> None:
    text = SPEC.read_text()
    for code in ErrorCode:
        fatal = "yes" if code in FATAL_CODES else "no"
        row = re.search(rf"^\| {int(code)} \| {code.name} \| (\w+)", text, re.M)
        assert row, f"SPEC.md lacks error {code.name}"
        assert row.group(1) == fatal or code is ErrorCode.NOT_JOINED, code.name


def test_message_tables_match_catalog() -> None:
    text = SPEC.read_text()
    for type_code, cls in BY_TYPE.items():
        assert re.search(rf"^\| {type_code} \| {cls.__name__} \|", text, re.M), cls.__name__
        for name in cls.__struct_fields__:
            assert f"`{name} " in text, f"{cls.__name__}.{name} undocumented"
