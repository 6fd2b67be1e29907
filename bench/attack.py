"""An attack on a real `townhall serve`: malformed frames, forged tokens, hostile SDP, floods.

Starts the server in its own process (its log captured to a file) and reproduces the
findings of the reliability issues against it, from the outside only:

- frames: malformed frames (random, mutated, deeply nested, echo bait, text, oversized)
  from every role, before and after Join; a crash is an INTERNAL error, a close with 1006
  or 1011, or a traceback in the server's log;
- tokens: correctly signed tokens with unacceptable claims (string or huge ``exp``,
  missing ``nbf``, future ``iat``, month-long lifetime, invisible name) and badly signed
  ones; how many got in. Staff look-alike names: how many were shown unmarked;
- sdp: offers with foreign candidates (127.0.0.2-.9, outside the default allowed
  127.0.0.1/32, so each is a UDP socket of this script that counts what reaches it),
  plain and after each line break aioice's parser splits at; how many addresses the
  server sent anything to, and whether it bound the mDNS port;
- connections: 1.5 x ``server.max_connections`` handshakes that never join; how many over
  the limit were accepted, and how many were still open after the join timeout;
- origin: a handshake from another site's page; http: a NUL in a path, a POST;
- guests: 60 anonymous guests reconnecting from one address (named by X-Forwarded-For
  from loopback, a trusted proxy by default), each asking and voting for one question;
- store: an Ask while the database is locked (it must fail), then votes on the ids it
  could have had (none may be acknowledged: misattached_votes);
- tick lag while the clone speaks (bench/clone.py's measure);
- board: ``--board`` questions (10,000), then Ask->Ack p99 and tick lag (bench/board.py).

Reported as null: acknowledged_but_lost and stage_recovered_after_kill (kill -9 needs a
restart; tests/test_durability.py covers both) and mutes_and_bans_stick (another change).
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
import msgpack
import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

sys.path.insert(0, str(Path(__file__).parent))

from clone import speak_and_measure
from serve import serve

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.plugin.mic import MicSender, PcmSource
from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import POSE_BYTES
from townhall.protocol.messages import (
    CLIENT_MESSAGES,
    Ack,
    Ask,
    Error,
    Join,
    Message,
    Mic,
    MicAnswer,
    MicChanged,
    MicOffer,
    Pose,
    Vote,
    Welcome,
)

SECRET = "attack-secret-" + "x" * 32
ROLES = ("attendee", "spectator", "moderator", "operator", "")
MAX_CONNECTIONS = 200
JOIN_TIMEOUT_S = 2.0
SEPARATORS = {
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "U+0085": "\x85",
    "CR": "\r",
    "VT": "\x0b",
    "FF": "\x0c",
    "FS": "\x1c",
    "LF": "\n",
}


def log(text: str) -> None:
    print(f"[attack] {text}", file=sys.stderr, flush=True)


def token(user: str, role: str, name: str = "", **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": user,
        "name": name or user,
        "role": role,
        "room": "main",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    for key, value in claims.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return jwt.encode(body, SECRET, algorithm="HS256")


def start_server(tmp: Path, workers: int) -> tuple[subprocess.Popen[str], str, Path]:
    config = tmp / "townhall.toml"
    config.write_text(
        "\n".join(
            [
                "[server]",
                "port = 0",
                f"workers = {workers}",
                f"max_connections = {MAX_CONNECTIONS}",
                "[auth]",
                f'secret = "{SECRET}"',
                "[store]",
                f'path = "{tmp / "townhall.db"}"',
                "[limits]",
                f"join_timeout_s = {JOIN_TIMEOUT_S}",
                "max_rejects = 100000",
                "messages_per_s = 100000.0",
                "message_burst = 100000",
                # the fuzz opens a connection per batch, all from 127.0.0.1; the per-address
                # connection limit has its own test (tests/test_address_limits.py)
                "connects_per_address_per_min = 0",
                "[qa]",
                "questions_per_minute = 1000000",
                "votes_per_s = 100000",
                "max_questions = 12000",
                "[clone]",
                "pause_s = 0.05",
            ]
        )
    )
    server_log = tmp / "server.log"
    served = serve(tmp, config.read_text(), stderr=server_log)
    return served.proc, served.url, server_log


# ------------------------------------------------------------ frames


def malformed(rng: random.Random) -> bytes | str:
    cls = rng.choice(CLIENT_MESSAGES)
    n = len(cls.__struct_fields__)
    kind = rng.randrange(10)
    if kind == 0:
        return b"\x91" * rng.randint(100, 8000) + b"\x01"
    if kind == 1:  # a real type with a deeply nested field (staff messages included)
        return bytes((0x90 | min(15, n + 1), cls.TYPE)) + b"\x91" * rng.randint(50, 7000) + b"\xa1x"
    if kind == 2:
        whole = (
            codec.encode(Pose(1, bytes(POSE_BYTES), 6))
            if rng.random() < 0.5
            else (msgpack.packb([cls.TYPE, 1, b"\x00" * 30, 6, "t", 0]))
        )
        return whole[: rng.randrange(1, len(whole))]
    if kind == 3:
        junk = [None, True, 1.5, -1, 2**64 - 1, b"\x00", [], {}, "x" * 40]
        return msgpack.packb([cls.TYPE, *rng.choices(junk, k=n)])
    if kind == 4:
        bait = rng.choice(["Ω" * 60, "€" * 80, "\u202e" * 40])
        return msgpack.packb([cls.TYPE, 1, bait, bait, bait])
    if kind == 5:
        return "text frame"
    if kind == 6:
        return msgpack.packb([rng.choice([0, 7, 63, 64, 200, -5, 2**40]), 1, 2])
    if kind == 7:
        return b"\x91" + rng.randbytes(9000)
    if kind == 8:
        return rng.choice([b"\xdd\xff\xff\xff\xff", b"\xc1", b"\x9f"])
    return rng.randbytes(rng.randint(1, 64))


def is_valid(frame: bytes | str) -> bool:
    if isinstance(frame, str):
        return False
    try:
        codec.decode_client(frame, 1 << 20)
    except Exception:
        return False
    return True


async def fuzz(ws_url: str, frames: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    sent = crashes = answered = 0
    n = 0
    while sent < frames:
        n += 1
        role = rng.choice(ROLES)
        joined = rng.random() < 0.7
        try:
            async with connect(ws_url, max_size=None, open_timeout=10, close_timeout=5) as ws:
                if joined:
                    await ws.send(
                        codec.encode(Join(1, 1, token(f"f{seed}-{n}", role) if role else ""))
                    )
                    while not isinstance(codec.decode_server(await ws.recv()), Welcome):  # type: ignore[arg-type]
                        pass
                batch = rng.randint(1, 20) if joined else 1
                for _ in range(batch):
                    frame = malformed(rng)
                    while is_valid(frame):
                        frame = malformed(rng)
                    await ws.send(frame)
                    sent += 1
                    try:
                        while True:
                            reply = codec.decode_server(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
                            if isinstance(reply, Error):
                                answered += 1
                                crashes += reply.code == ErrorCode.INTERNAL
                                break
                    except ConnectionClosed:
                        crashes += ws.close_code in (1006, 1011, None)
                        answered += 1
                        break
        except (OSError, TimeoutError, InvalidStatus) as exc:
            log(f"fuzz connection failed: {exc!r}")
            crashes += 1
    return {"frames": sent, "answered": answered, "crashes": crashes}


# ------------------------------------------------------------ tokens and names


async def forged_tokens(ws_url: str) -> dict[str, Any]:
    now = int(time.time())
    forged = {
        "exp as a string": token("t1", "attendee", exp="9999999999"),
        "exp 1e300": token("t2", "attendee", exp=1e300),
        "exp true": token("t3", "attendee", exp=True),
        "no exp": token("t4", "attendee", exp=None),
        "no iat": token("t5", "attendee", iat=None),
        "no nbf": token("t6", "attendee", nbf=None),
        "iat in the future": token("t7", "attendee", iat=now + 86400),
        "nbf in the future": token("t8", "attendee", nbf=now + 86400),
        "a month long": token("t9", "attendee", iat=now - 10, exp=now + 30 * 86400),
        "invisible name": token("t10", "attendee", name="\u202e\u200b\u2066"),
        "unknown role": token("t11", "ceo"),
        "alg none": jwt.encode(
            {
                "sub": "t12",
                "name": "x",
                "role": "moderator",
                "room": "main",
                "iat": now,
                "nbf": now,
                "exp": now + 60,
            },
            None,
            algorithm="none",
        ),
        "wrong key": jwt.encode(
            {
                "sub": "t13",
                "name": "x",
                "role": "moderator",
                "room": "main",
                "iat": now,
                "nbf": now,
                "exp": now + 60,
            },
            "k" * 40,
            algorithm="HS256",
        ),
    }
    accepted = []
    for what, tok in forged.items():
        client = RoomClient(ws_url, tok)
        try:
            await asyncio.wait_for(client.connect(), 10)
            accepted.append(what)
            await client.close()
        except (JoinRejected, OSError, TimeoutError, ConnectionClosed):
            pass
    lookalikes = [
        "Moderator",
        "M0derator",
        "Mоderator",
        "CEO",
        "C.E.O.",
        "Адмін",
        "Модератор",
        "Dana Reyes",
        "Dаnа Rеуеs",
        "Admin\u202e",
    ]
    unmarked = []
    for i, name in enumerate(lookalikes):
        client = RoomClient(ws_url, token(f"look{i}", "attendee", name=name))
        welcome = await client.connect()
        if not welcome.name.endswith("(attendee)"):
            unmarked.append(name)
        await client.close()
    return {
        "forged_tokens": len(forged),
        "forged_tokens_accepted": len(accepted),
        "forged_accepted": accepted,
        "staff_lookalike_names": len(lookalikes),
        "staff_lookalikes_unmarked": len(unmarked),
    }


# ------------------------------------------------------------ hostile SDP


class Listener(asyncio.DatagramProtocol):
    def __init__(self, hits: dict[str, int], address: str) -> None:
        self.hits, self.address = hits, address

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.hits[self.address] = self.hits.get(self.address, 0) + 1


async def hostile_sdp(ws_url: str, server_pid: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    hits: dict[str, int] = {}
    listeners = []
    ports: dict[str, int] = {}
    for last in range(2, 10):
        address = f"127.0.0.{last}"
        transport, _ = await loop.create_datagram_endpoint(
            lambda a=address: Listener(hits, a), local_addr=(address, 0)
        )
        listeners.append(transport)
        ports[address] = transport.get_extra_info("sockname")[1]
    ann = RoomClient(ws_url, token("sdp-ann", "attendee", "Ann"))
    mod = RoomClient(ws_url, token("sdp-mod", "moderator", "Mo"))
    seen: list[Message] = []
    ann.listeners.append(seen.append)
    await ann.connect()
    await mod.connect()
    slot = ann.welcome.slot  # type: ignore[union-attr]
    results: dict[str, str] = {}
    addresses = iter(ports)
    cases = [("plain", "\r\n"), *SEPARATORS.items()]
    for ref, (name, sep) in enumerate(cases, start=1):
        address = next(addresses, "127.0.0.9")
        seen.clear()
        await mod.send(Mic(1000 + ref, "grant", slot))
        await until(lambda: any(isinstance(m, MicChanged) and m.state == "granted" for m in seen))
        sender = MicSender(ann, PcmSource(bytes(48000 * 2), 48000))  # type: ignore[arg-type]
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection(sender.policy.configuration())
        pc.addTrack(PcmSource(__import__("numpy").zeros(48000 * 5, "int16"), 48000))
        sender.policy.restrict(pc)
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        foreign = f"a=candidate:9 1 udp 2130706431 {address} {ports[address]} typ host"
        local = (
            "a=candidate:8 1 udp 2130706430 6a3f0e0c-1111-4222-8333-444455556666.local 9 typ host"
        )
        sdp = sdp.replace("\r\na=mid:0\r\n", f"\r\na=mid:0{sep}{foreign}{sep}{local}\r\n", 1)
        await ann.send(MicOffer(ref, sdp))
        await until(
            lambda r=ref: any(
                getattr(m, "ref", None) == r for m in seen if isinstance(m, (MicAnswer, Error))
            )
        )
        error = next((m for m in seen if isinstance(m, Error) and m.ref == ref), None)
        results[name] = ErrorCode(error.code).name if error else "answered"
        answer = next((m for m in seen if isinstance(m, MicAnswer)), None)
        if answer is not None:
            from aiortc import RTCSessionDescription

            await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            await asyncio.sleep(2.0)  # ICE checks go out within this
        await mod.send(Mic(2000 + ref, "revoke", slot))
        await pc.close()
        await asyncio.sleep(0.3)
    await asyncio.sleep(1.0)
    mdns_bound = any(
        c.laddr and c.laddr.port == 5353 for c in psutil.Process(server_pid).net_connections("udp")
    )
    for transport in listeners:
        transport.close()
    await ann.close()
    await mod.close()
    return {
        "sdp_offers": len(cases),
        "sdp_results": results,
        "foreign_addresses_offered": len(cases),
        "foreign_addresses_contacted": len(hits),
        "mdns_port_bound": mdns_bound,
    }


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------ connections, origin, HTTP


async def raw_upgrade(
    port: int, origin: str | None = None
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    )
    if origin:
        head += f"Origin: {origin}\r\n"
    writer.write((head + "\r\n").encode())
    status = int((await reader.readuntil(b"\r\n\r\n")).split(b" ")[1])
    return status, reader, writer


async def flood(port: int) -> dict[str, Any]:
    total = int(MAX_CONNECTIONS * 1.5)
    opened = []
    statuses = []
    for _ in range(total):
        status, reader, writer = await raw_upgrade(port)
        statuses.append(status)
        if status == 101:
            # Half of them send a frame whose error echoes 60 "Ω" (a 150-byte close reason).
            if len(opened) % 2:
                payload = msgpack.packb([10, 1, 1, "Ω" * 60])
                mask = os.urandom(4)
                body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                writer.write(
                    b"\x82" + bytes((0x80 | 126,)) + len(payload).to_bytes(2, "big") + mask + body
                )
            opened.append((reader, writer))
        else:
            writer.close()
    accepted = statuses.count(101)

    async def ended(reader: asyncio.StreamReader) -> bool:
        try:
            async with asyncio.timeout(JOIN_TIMEOUT_S + 10):
                while await reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    gone = await asyncio.gather(*(ended(r) for r, _ in opened))
    for _, writer in opened:
        writer.transport.abort()
    return {
        "connection_limit": MAX_CONNECTIONS,
        "connections_tried": total,
        "connections_over_limit_accepted": max(0, accepted - MAX_CONNECTIONS),
        "refused_503": statuses.count(503),
        "never_joining_still_open": gone.count(False),
    }


async def http_and_origin(port: int) -> dict[str, Any]:
    async def raw(request: bytes) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        line = await reader.readline()
        writer.close()
        return int(line.split(b" ")[1]) if line else 0

    nul = await raw(b"GET /assets/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n")
    post = await raw(b"POST /watch HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, writer = await raw_upgrade(port, "https://evil.example")
    writer.close()
    return {"nul_path_status": nul, "post_page_status": post, "foreign_origin_status": status}


# ------------------------------------------------------------ the board and the store


async def guest_limits(ws_url: str) -> dict[str, Any]:
    """60 anonymous guests from one address (as a trusted proxy names it), reconnecting:
    each asks and votes for one question; how many of them got through."""
    from board import Client as BoardClient

    owner = await BoardClient.join(ws_url, "guest-target", SECRET)
    target = await owner.request(lambda ref: Ask(ref, "What is the plan for the guest wifi?"))
    assert isinstance(target, Ack), target
    asked = voted = 0
    for n in range(60):
        async with connect(ws_url, additional_headers={"X-Forwarded-For": "198.51.100.7"}) as ws:
            await ws.send(codec.encode(Join(1, 1, "")))
            replies: dict[int, Message] = {}
            await ws.send(codec.encode(Ask(1, f"Guest question {n} about thing{n}")))
            await ws.send(codec.encode(Vote(2, target.id)))
            try:
                async with asyncio.timeout(3):
                    while len(replies) < 2:
                        m = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
                        if isinstance(m, Ack | Error) and m.ref in (1, 2):
                            replies[m.ref] = m
            except TimeoutError:
                pass  # a rate-limit notice is sent once a second: silence is a refusal too
            asked += isinstance(replies.get(1), Ack)
            voted += isinstance(replies.get(2), Ack)
    await owner.close()
    return {"guest_questions_acked_of_60": asked, "guest_votes_acked_of_60": voted}


async def locked_store(ws_url: str, db: Path) -> dict[str, Any]:
    """An Ask while the database is locked fails; then nothing of it may be voted on."""
    import sqlite3

    from board import Client as BoardClient

    ann = await BoardClient.join(ws_url, "lock-ann", SECRET)
    first = await ann.request(lambda ref: Ask(ref, "Where will the autumn offsite be held?"))
    assert isinstance(first, Ack), first
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        refused = await ann.request(lambda ref: Ask(ref, "Will the canteen reopen this year?"))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    bob = await BoardClient.join(ws_url, "lock-bob", SECRET)
    misattached = 0
    for qid in range(first.id + 1, first.id + 4):  # the ids the refused one could have had
        reply = await bob.request(lambda ref, q=qid: Vote(ref, q))
        misattached += isinstance(reply, Ack)
    await ann.close()
    await bob.close()
    return {
        "ask_while_locked": "error" if isinstance(refused, Error) else "acked",
        "misattached_votes": misattached,
    }


def tracebacks(server_log: Path) -> int:
    return sum(
        1
        for line in server_log.read_text(errors="replace").splitlines()
        if '"exc"' in line or "Traceback" in line
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="townhall-attack-") as tmpdir:
        proc, url, server_log = start_server(Path(tmpdir), args.workers)
        port = int(url.rsplit(":", 1)[1])
        ws_url = url.replace("http://", "ws://") + "/ws"
        try:
            log("fuzzing")
            results = await asyncio.gather(*(fuzz(ws_url, args.frames // 4, s) for s in range(4)))
            out["frames_fuzzed"] = sum(r["frames"] for r in results)
            out["frames_unanswered"] = out["frames_fuzzed"] - sum(r["answered"] for r in results)
            out["crashes"] = sum(r["crashes"] for r in results)
            log("tokens")
            out.update(await forged_tokens(ws_url))
            log("hostile SDP")
            out.update(await hostile_sdp(ws_url, proc.pid))
            log("connection flood")
            out.update(await flood(port))
            out.update(await http_and_origin(port))
            log("guests from one address")
            out.update(await guest_limits(ws_url))
            log("a locked database")
            out.update(await locked_store(ws_url, Path(tmpdir) / "townhall.db"))
            log("tick lag while the clone speaks")
            viewer = RoomClient(ws_url, token("viewer", "spectator"))
            seen: list[Message] = []
            viewer.listeners.append(seen.append)
            await viewer.connect()
            speaking = await speak_and_measure(
                url,
                viewer,
                seen,
                [
                    "What is the plan for the Lisbon office?",
                    "How are we using AI tools in our daily work?",
                ],
            )
            await viewer.close()
            out["tick_lag_speaking_p99_ms"] = speaking["tick_lag_speaking_p99_ms"]
            out["ping_speaking_p99_ms"] = speaking["ping_speaking_p99_ms"]
            if args.board:
                log(f"{args.board} questions on the board")
                out.update(await big_board(ws_url, url, args.board))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        out["tracebacks_in_server_log"] = tracebacks(server_log)
    out["guest_limits_enforced"] = (
        out["guest_questions_acked_of_60"] <= 6 and out["guest_votes_acked_of_60"] <= 1
    )
    out.update(
        {
            # Not measured here: kill -9 recovery and lost acks are tests/test_durability.py
            # (a kill mid-answer, a kill mid-traffic); mutes and bans another change's.
            "acknowledged_but_lost": None,
            "stage_recovered_after_kill": None,
            "mutes_and_bans_stick": None,
        }
    )
    return out


async def big_board(ws_url: str, url: str, size: int) -> dict[str, Any]:
    """bench/board.py's fill and window: Ask->Ack and tick lag with ``size`` questions."""
    from board import Client as BoardClient
    from board import fill, measure

    askers = [await BoardClient.join(ws_url, f"board-asker{n}", SECRET) for n in range(100)]
    voters = [await BoardClient.join(ws_url, f"board-voter{n}", SECRET) for n in range(5)]
    await fill(askers, 0, size)
    window = await measure(ws_url, url, voters, size, 0, probes=100, secret=SECRET)
    for c in [*askers, *voters]:
        await c.close()
    return {
        f"ask_ack_p99_ms_at_{size}_questions": window["ask_ack_p99_ms"],
        f"tick_lag_p99_ms_at_{size}_questions": window["tick_lag_p99_ms"],
        "board_keyframe_bytes": window["keyframe_bytes_max"],
        "board_load_average_1m": window["load_average_1m"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=4000, help="malformed frames (default 4000)")
    parser.add_argument("--workers", type=int, default=0, help="fan-out workers of the server")
    parser.add_argument(
        "--board", type=int, default=10000, help="questions to fill the board with (0: skip)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
