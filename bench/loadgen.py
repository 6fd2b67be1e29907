"""Lean load generator: many raw-asyncio WebSocket clients in one process.

Each client is a bare ``asyncio.Protocol``: a hand-rolled client handshake,
masked frames up, and a minimal parser for the server's unmasked frames that
reads only the type code and ``server_time_us`` of crowd frames. That keeps the
per-message cost of the generator a small fraction of the server's, so on one
machine the measurement is of the server, not of the clients.

Run by ``bench/fanout.py`` with ``--control``: it then reads commands, one per
line on stdin (``start``, ``stop``, ``quit``), and answers with one JSON object
per line on stdout. Without ``--control`` it ramps, measures ``--seconds`` and
prints the stats itself, e.g. against a server you started by hand::

    python bench/loadgen.py --port 8765 --secret S --attendees 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import os
import random
import sys
import time
from array import array
from typing import Any, cast

import numpy as np

from townhall.protocol import ClockSample, codec, quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
from townhall.protocol.messages import Error, Join, Ping, Pong, Pose, Welcome

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
T_WELCOME, T_ERROR, T_PONG = Welcome.TYPE, Error.TYPE, Pong.TYPE
T_NEAR, T_FAR = 71, 72  # CrowdNear, CrowdFar
OP_CONT, OP_BINARY, OP_CLOSE, OP_PING = 0x0, 0x2, 0x8, 0x9
MAX_LATENCY_SAMPLES = 50_000_000
_monotonic_ns = time.monotonic_ns


def local_us() -> int:
    return _monotonic_ns() // 1000


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame (masked, as RFC 6455 requires of clients)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    key = random.getrandbits(32).to_bytes(4, "big")
    if not n:
        return head + key
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return head + key + body


def read_msgpack_int(b: bytes, i: int) -> int:
    """The msgpack integer at ``b[i]`` (only ints: it is where server_time_us sits)."""
    t = b[i]
    if t < 0x80:
        return t
    if t >= 0xE0:
        return t - 0x100
    if t == 0xCC:
        return b[i + 1]
    if t == 0xCD:
        return int.from_bytes(b[i + 1 : i + 3], "big")
    if t == 0xCE:
        return int.from_bytes(b[i + 1 : i + 5], "big")
    if t == 0xCF:
        return int.from_bytes(b[i + 1 : i + 9], "big")
    if 0xD0 <= t <= 0xD3:
        size = 1 << (t - 0xD0)
        return int.from_bytes(b[i + 1 : i + 1 + size], "big", signed=True)
    raise ValueError(f"not a msgpack integer: 0x{t:02x}")


def make_poses(count: int, seed: int) -> list[bytes]:
    """A few plausible 30-byte poses (head and hands near the seat) to cycle through."""
    rng = random.Random(seed)
    pos, rot = [], []
    for _ in range(count):
        pos.append(
            [
                [rng.uniform(-0.05, 0.05), rng.uniform(1.17, 1.23), rng.uniform(-0.05, 0.05)],
                [-0.2 + rng.uniform(-0.1, 0.1), 0.6 + rng.uniform(0, 0.5), -0.25],
                [0.2 + rng.uniform(-0.1, 0.1), 0.6 + rng.uniform(0, 0.5), -0.25],
            ]
        )
        yaw = rng.uniform(-0.3, 0.3)
        rot.append([[0.0, yaw, 0.0, 1.0]] * 3)
    records = quant.encode_poses(pos, rot)
    return [records[i : i + 1].tobytes() for i in range(count)]


class Client(asyncio.Protocol):
    """One bench participant on a raw transport."""

    def __init__(self, gen: LoadGen, index: int, role: str, token: str) -> None:
        self.gen = gen
        self.index = index
        self.role = role
        self.is_attendee = role == "attendee"
        self.token = token
        self.transport: asyncio.Transport | None = None
        self.key = base64.b64encode(os.urandom(16))
        self.upgraded = False
        self.hbuf = b""
        self.buf = b""
        self.joined = False
        self.closed = False
        self.close_code: int | None = None
        self.error_code: int | None = None
        self.done: asyncio.Future[bool] = gen.loop.create_future()
        self.win_bytes = 0
        self.pose_i = index

    # ------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        host = f"{self.gen.host}:{self.gen.port}"
        req = (
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\nUser-Agent: townhall-bench\r\n\r\n"
        )
        self.transport.write(req.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gen.on_lost(self)
        if not self.done.done():
            self.done.set_result(False)

    def data_received(self, data: bytes) -> None:
        now = _monotonic_ns() // 1000
        gen = self.gen
        if gen.measuring:
            n = len(data)
            self.win_bytes += n
            if self.is_attendee:
                gen.att_bytes += n
            else:
                gen.spec_bytes += n
        if not self.upgraded:
            data = self._upgrade(data)
            if not data:
                return
        if self.buf:
            data = self.buf + data
            self.buf = b""
        size = len(data)
        pos = 0
        frames = 0
        lat = gen.lat_raw if gen.measuring else None
        while size - pos >= 2:
            b0 = data[pos]
            ln = data[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if size - pos < 4:
                    break
                ln = (data[pos + 2] << 8) | data[pos + 3]
                hdr = 4
            elif ln == 127:
                if size - pos < 10:
                    break
                ln = int.from_bytes(data[pos + 2 : pos + 10], "big")
                hdr = 10
            start = pos + hdr
            end = start + ln
            if end > size:
                break
            op = b0 & 0x0F
            if op == OP_BINARY and ln >= 3:
                frames += 1
                kind = data[start + 1]
                if kind in (T_NEAR, T_FAR):
                    if lat is not None:
                        lat.append(now - read_msgpack_int(data, start + 2))
                        gen.crowd_frames += 1
                elif kind in (T_WELCOME, T_ERROR, T_PONG):
                    self._control_message(data[start:end], now)
            elif op == OP_PING:
                self._send(mask_frame(0xA, data[start:end]))
            elif op == OP_CLOSE:
                payload = data[start:end]
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._send(mask_frame(OP_CLOSE, payload[:2]))
                if self.transport is not None:
                    self.transport.close()
                break
            elif op == OP_BINARY:
                frames += 1
            pos = end
        if pos < size:
            self.buf = data[pos:]
        if frames and gen.measuring:
            if self.is_attendee:
                gen.att_msgs += frames
            else:
                gen.spec_msgs += frames

    # ------------------------------------------------------------ helpers

    def _upgrade(self, data: bytes) -> bytes:
        self.hbuf += data
        end = self.hbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.hbuf) > 16384 and self.transport is not None:
                self.transport.close()
            return b""
        head, rest = self.hbuf[:end].decode("latin-1"), self.hbuf[end + 4 :]
        self.hbuf = b""
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        lines = head.split("\r\n")
        pairs = (ln.partition(":") for ln in lines[1:])
        headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
        if " 101 " not in lines[0] + " " or headers.get("sec-websocket-accept") != accept:
            self.gen.note_error(f"handshake: {lines[0]}")
            if self.transport is not None:
                self.transport.close()
            return b""
        self.upgraded = True
        self._send(mask_frame(OP_BINARY, self.gen.join_payload(self.token)))
        return rest

    def _control_message(self, payload: bytes, now: int) -> None:
        msg = codec.decode_server(payload)
        if isinstance(msg, Welcome):
            self.joined = True
            if not self.done.done():
                self.done.set_result(True)
        elif isinstance(msg, Pong):
            self.gen.on_pong(msg, now)
        elif isinstance(msg, Error):
            self.gen.on_error(self, msg)

    def _send(self, frame: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(frame)

    def send_pose(self, now: int) -> None:
        poses = self.gen.poses
        self.pose_i += 1
        pose = poses[self.pose_i % len(poses)]
        self._send(mask_frame(OP_BINARY, codec.encode(Pose(now, pose, 6))))

    def send_ping(self) -> None:
        self._send(mask_frame(OP_BINARY, codec.encode(Ping(local_us()))))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.upgraded:
                self.transport.write(mask_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()


class LoadGen:
    """The clients of one process, their counters, clock sync and pose timer."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.host: str = args.host
        self.port: int = args.port
        self.poses = make_poses(16, args.seed)
        self.clients: list[Client] = []
        self.tag = f"[loadgen {args.proc_id}]"
        self.measuring = False
        self.window_start = 0.0
        self.att_bytes = self.spec_bytes = self.att_msgs = self.spec_msgs = 0
        self.crowd_frames = 0
        self.lat_raw: array[int] = array("q")
        self.best: ClockSample | None = None
        self.clock_samples = 0
        self.errors: dict[str, int] = {}
        self.window_errors: dict[str, int] = {}
        self.close_codes: dict[str, int] = {}
        self.closed_after_join = 0
        self.poses_sent = 0
        self.stopping = False
        self._ping_rr = 0
        self._cpu_start = 0.0

    # ------------------------------------------------------------ setup

    def tokens(self) -> list[tuple[str, str]]:
        from townhall.server.gateway.tokens import issue_token

        a = self.args
        out: list[tuple[str, str]] = []
        ttl = 6 * 3600

        def mint(role: str, i: int) -> str:
            user = f"bench-{a.proc_id}-{role[0]}{i}"
            return issue_token(a.secret, user_id=user, name=user, role=role, room=a.room, ttl_s=ttl)

        # Spectators first: the ramp is quicker while nobody is sending poses yet.
        for i in range(a.spectators):
            anonymous = a.spectator_auth == "anonymous"
            out.append(("spectator", "" if anonymous else mint("spectator", i)))
        for i in range(a.attendees):
            out.append(("attendee", mint("attendee", i)))
        return out

    def join_payload(self, token: str) -> bytes:
        join = Join(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, token, client="townhall-bench/1")
        return codec.encode(join)

    def log(self, text: str) -> None:
        print(f"{self.tag} {text}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------ events from clients

    def note_error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1
        if self.measuring:
            self.window_errors[what] = self.window_errors.get(what, 0) + 1

    def on_error(self, client: Client, msg: Error) -> None:
        try:
            name = ErrorCode(msg.code).name
        except ValueError:
            name = str(msg.code)
        client.error_code = msg.code
        self.note_error(name)

    def on_lost(self, client: Client) -> None:
        if client.joined and not self.stopping:
            self.closed_after_join += 1
            code = str(client.close_code or "no close frame")
            self.close_codes[code] = self.close_codes.get(code, 0) + 1

    def on_pong(self, msg: Pong, now: int) -> None:
        sample = ClockSample.from_times(
            msg.client_time_us, msg.server_recv_us, msg.server_send_us, now
        )
        self.clock_samples += 1
        if self.best is None or sample.rtt_us < self.best.rtt_us:
            self.best = sample

    # ------------------------------------------------------------ phases

    async def ramp(self) -> tuple[int, int]:
        """Connect and join in batches; returns (joined, failed)."""
        a = self.args
        plan = self.tokens()
        started = time.monotonic()
        deadline = started + a.ramp_timeout
        last_log = 0.0
        for first in range(0, len(plan), a.batch):
            if time.monotonic() > deadline:
                self.log("ramp deadline passed; not opening more connections")
                break
            batch: list[Client] = []
            for j, (role, token) in enumerate(plan[first : first + a.batch]):
                batch.append(Client(self, first + j, role, token))
            self.clients.extend(batch)
            results = await asyncio.gather(
                *(self._connect(c) for c in batch), return_exceptions=True
            )
            for c, r in zip(batch, results, strict=True):
                if isinstance(r, BaseException):
                    self.note_error(f"connect: {type(r).__name__}")
                    if not c.done.done():
                        c.done.set_result(False)
            remaining = max(0.1, min(a.join_timeout, deadline - time.monotonic()))
            await asyncio.wait([c.done for c in batch], timeout=remaining)
            if first == 0:
                await self.sync_clock(5)
            now = time.monotonic()
            if now - last_log > 3.0:
                last_log = now
                self.log(f"ramping: {self.joined_count()}/{len(plan)} joined")
        for c in self.clients:
            if not c.done.done():
                c.done.set_result(False)
                c.close()
        joined = self.joined_count()
        took = time.monotonic() - started
        errors = f"; errors {self.errors}" if self.errors else ""
        self.log(f"ramp done: {joined}/{len(plan)} joined in {took:.1f}s{errors}")
        return joined, len(plan) - joined

    async def _connect(self, c: Client) -> None:
        await self.loop.create_connection(lambda: c, self.host, self.port)

    def joined_count(self) -> int:
        return sum(1 for c in self.clients if c.joined)

    async def sync_clock(self, pings: int, interval: float = 0.02) -> None:
        live = [c for c in self.clients if c.joined and not c.closed]
        for i in range(pings):
            if not live:
                return
            live[(self._ping_rr + i) % len(live)].send_ping()
            await asyncio.sleep(interval)
        self._ping_rr += pings

    async def pose_loop(self) -> None:
        """Attendees send Pose at pose_hz, spread over the period in groups."""
        groups = 5
        step = 1.0 / self.args.pose_hz / groups
        g = 0
        next_t = self.loop.time()
        while not self.stopping:
            next_t += step
            now = local_us()
            for c in self.clients[g::groups]:
                if c.is_attendee and c.joined and not c.closed:
                    c.send_pose(now)
                    self.poses_sent += 1
            g = (g + 1) % groups
            delay = next_t - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -5 * step:
                next_t = self.loop.time()  # fell behind: skip rather than burst
            else:
                await asyncio.sleep(0)

    async def clock_loop(self) -> None:
        """Keep pinging now and then so a low-RTT sample turns up (min-RTT is kept)."""
        while not self.stopping:
            await asyncio.sleep(self.args.ping_interval)
            await self.sync_clock(1)

    def start_window(self) -> None:
        for c in self.clients:
            c.win_bytes = 0
        self.att_bytes = self.spec_bytes = self.att_msgs = self.spec_msgs = 0
        self.crowd_frames = self.poses_sent = 0
        self.window_errors = {}
        self.lat_raw = array("q")
        self.window_start = time.monotonic()
        self._cpu_start = time.process_time()
        self.measuring = True

    def stop_window(self) -> dict[str, Any]:
        self.measuring = False
        window = time.monotonic() - self.window_start
        cpu = time.process_time() - self._cpu_start
        offset = self.best.offset_us if self.best else 0.0
        # raw = receive_local - server_time; latency = receive_local - (server_time - offset)
        lat = np.frombuffer(self.lat_raw, dtype=np.int64)[:MAX_LATENCY_SAMPLES] + round(offset)
        path = self.args.latency_file
        if path:
            lat.tofile(path)
        p50, p99 = np.percentile(lat, [50, 99]) / 1000.0 if len(lat) else (None, None)
        att = [c for c in self.clients if c.is_attendee]
        spec = [c for c in self.clients if not c.is_attendee]
        return {
            "event": "stats",
            "proc_id": self.args.proc_id,
            "window_s": window,
            "cpu_s": cpu,
            "clients": len(self.clients),
            "joined": self.joined_count(),
            "open": sum(1 for c in self.clients if c.joined and not c.closed),
            "attendees": len(att),
            "spectators": len(spec),
            "attendee_bytes": self.att_bytes,
            "spectator_bytes": self.spec_bytes,
            "attendee_msgs": self.att_msgs,
            "spectator_msgs": self.spec_msgs,
            "attendee_max_bytes": max((c.win_bytes for c in att), default=0),
            "crowd_frames": self.crowd_frames,
            "latency_samples": len(lat),
            "latency_file": path,
            "p50_ms": None if p50 is None else round(float(p50), 3),
            "p99_ms": None if p99 is None else round(float(p99), 3),
            "clock_offset_us": offset,
            "clock_rtt_us": self.best.rtt_us if self.best else None,
            "clock_samples": self.clock_samples,
            "closed_after_join": self.closed_after_join,
            "close_codes": self.close_codes,
            "errors": self.errors,
            "window_errors": self.window_errors,
            "poses_sent": self.poses_sent,
        }

    async def shutdown(self) -> None:
        self.stopping = True
        for c in self.clients:
            c.close()
        await asyncio.sleep(0.2)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def controlled(gen: LoadGen) -> None:
    """Obey start/stop/quit lines from the parent; EOF (parent gone) means quit."""
    reader = asyncio.StreamReader()
    await gen.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    hard_deadline = time.monotonic() + gen.args.max_lifetime
    while True:
        remaining = hard_deadline - time.monotonic()
        if remaining <= 0:
            gen.log("max lifetime reached; exiting")
            return
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=min(remaining, 5.0))
        except TimeoutError:
            continue
        command = line.decode().strip()
        if not line or command == "quit":
            return
        if command == "start":
            gen.start_window()
            emit({"event": "started"})
        elif command == "stop":
            emit(gen.stop_window())
        elif command == "ping":
            open_ = sum(1 for c in gen.clients if c.joined and not c.closed)
            emit({"event": "pong", "open": open_})


async def run(args: argparse.Namespace) -> None:
    gen = LoadGen(args)
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks.append(asyncio.create_task(gen.pose_loop()))
        joined, failed = await gen.ramp()
        gc.collect()
        gc.freeze()  # the clients live to the end: keep them out of later collections
        tasks.append(asyncio.create_task(gen.clock_loop()))
        await gen.sync_clock(5)
        emit({"event": "joined", "joined": joined, "failed": failed, "errors": gen.errors})
        if args.control:
            await controlled(gen)
        else:
            await asyncio.sleep(args.warmup)
            gen.start_window()
            await asyncio.sleep(args.seconds)
            emit(gen.stop_window())
    finally:
        gen.stopping = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await gen.shutdown()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Raw-asyncio WebSocket load generator for a Townhall server (one process).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="server address")
    p.add_argument("--port", type=int, required=True, help="server port")
    p.add_argument("--secret", required=True, help="the server's [auth] secret, to mint tokens")
    p.add_argument("--room", default="main", help="room id the tokens are for")
    p.add_argument("--attendees", type=int, default=0, help="attendee clients (send poses)")
    p.add_argument("--spectators", type=int, default=0, help="spectator clients (only receive)")
    p.add_argument(
        "--spectator-auth",
        choices=["token", "anonymous"],
        default="token",
        help="spectators join with a spectator token or an empty one",
    )
    p.add_argument("--pose-hz", type=float, default=20.0, help="poses per second per attendee")
    p.add_argument("--batch", type=int, default=50, help="connections opened at once while ramping")
    p.add_argument("--ramp-timeout", type=float, default=120.0, help="seconds allowed for ramping")
    p.add_argument(
        "--join-timeout", type=float, default=30.0, help="seconds a batch may take to be welcomed"
    )
    p.add_argument("--ping-interval", type=float, default=1.0, help="seconds between clock pings")
    p.add_argument("--proc-id", type=int, default=0, help="this process's number (user ids, logs)")
    p.add_argument("--seed", type=int, default=1, help="seed for the poses sent")
    p.add_argument("--latency-file", default="", help="write window latencies (int64 µs) here")
    p.add_argument(
        "--control",
        action="store_true",
        help="take start/stop/quit commands on stdin (how bench/fanout.py drives it)",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="standalone: seconds before measuring")
    p.add_argument("--seconds", type=float, default=10.0, help="standalone: seconds to measure")
    p.add_argument(
        "--max-lifetime", type=float, default=900.0, help="exit after this long whatever happens"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
