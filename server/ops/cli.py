"""The ``townhall`` command: serve a room, mint tokens, check scenes, run bots, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from townhall.protocol.messages import ROLES
from townhall.server.ops.config import (
    ConfigError,
    Settings,
    load_settings,
    render_toml,
    settings_table,
    validate,
)
from townhall.server.ops.errors import one_line

if TYPE_CHECKING:
    from townhall.server.ops.persona_store import Statements


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run until done, Ctrl-C or SIGTERM (both stop cleanly), on uvloop when installed."""

    async def main() -> Any:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


def _settings(args: argparse.Namespace) -> Settings:
    """The config file and environment, then the command line's options over them."""
    settings = load_settings(args.config)
    server = settings.server
    given: dict[str, str] = {}
    # setting -> option; serve's --role is server.role (token's --role is the token's role).
    options = {"host": "host", "port": "port", "scene": "scene", "room": "room"}
    options["role"] = "server_role"
    for name, attr in options.items():
        value = getattr(args, attr, None)
        if value is not None:
            server = replace(server, **{name: value})
            given[f"server.{name}"] = f"--{name}"
    result = replace(settings, server=server)
    validate(result, given)
    if result.server.role == "all" and result.rtc.enabled and result.rtc.media == "bus":
        raise ConfigError(
            "rtc.media = bus needs server.role = authority: a media node meets the room's "
            "authority over NATS (use --role authority, or rtc.media = local)"
        )
    return result


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings file (see `townhall config`)")


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)  # a wrong setting is reported before the long imports below

    from townhall.server.app import TownhallServer
    from townhall.server.ops.logs import setup_logging

    setup_logging(settings.log.level, settings.log.format)
    if settings.server.role == "edge":
        return _serve_edge(settings)
    if settings.server.role == "authority":
        return _serve_authority(settings)
    if settings.server.role == "media":
        return _serve_media(settings)

    async def main() -> None:
        server = TownhallServer(settings)
        await server.start()
        print(f"townhall: serving room {server.room.room_id!r} at {server.url}", flush=True)
        print(f"townhall: WebSocket {server.ws_url}", flush=True)
        try:
            await asyncio.Future()
        finally:
            await server.stop()

    run(main())
    return 0


def _serve_authority(settings: Settings) -> int:
    from townhall.server.ops.failover import serve_authority

    run(serve_authority(settings, lambda line: print(line, flush=True)))
    return 0


def _serve_edge(settings: Settings) -> int:
    from townhall.server.fanout.edge_server import EdgeServer

    async def main() -> None:
        edge = EdgeServer(settings)
        await edge.start()
        room = settings.server.room
        print(f"townhall: edge {edge.id} serving room {room!r} at {edge.ws_url}", flush=True)
        try:
            await asyncio.Future()
        finally:
            await edge.stop()

    run(main())
    return 0


def _serve_media(settings: Settings) -> int:
    from townhall.server.rtc.media_node import MediaNode

    async def main() -> None:
        node = MediaNode(settings)
        await node.start()
        rooms = ",".join(node.rooms)
        print(f"townhall: media node {node.id} serving rooms {rooms}", flush=True)
        try:
            await asyncio.Future()
        finally:
            await node.stop()

    run(main())
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from townhall.server.gateway.tokens import issue_token, resolve_secret

    settings = _settings(args)
    ttl = args.ttl if args.ttl is not None else settings.auth.default_ttl_s
    user = args.user or f"{args.role}-{uuid.uuid4().hex[:8]}"
    secret = resolve_secret(settings.auth, create=False)
    try:
        token = issue_token(
            secret,
            user_id=user,
            name=args.name,
            role=args.role,
            room=settings.server.room,
            ttl_s=ttl,
        )
    except ValueError as exc:
        print(f"townhall token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_scene_check(args: argparse.Namespace) -> int:
    from townhall.scenes import check_scene_file

    ok, report = check_scene_file(args.file)
    print(report, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def cmd_bots(args: argparse.Namespace) -> int:
    from townhall.plugin.bots import run_bots
    from townhall.server.gateway.tokens import resolve_secret

    settings = _settings(args)
    secret = resolve_secret(settings.auth, create=False)
    run(
        run_bots(
            args.url,
            args.count,
            secret=secret,
            room=settings.server.room,
            seconds=args.seconds,
            pose_hz=args.pose_hz,
            seed=args.seed,
        )
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from townhall.server.ops.demo import run_demo

    settings = _settings(args)
    run(run_demo(settings, bots=args.bots, seconds=args.seconds))
    return 0


def _sqlite_db(args: argparse.Namespace, settings: Settings) -> str:
    """The SQLite file an offline command reads: --db, else store.path; with the record in
    PostgreSQL (store.url) the file would be stale or empty, so say so instead."""
    from townhall.server.ops.errors import UsageError

    if args.db:
        return str(args.db)
    if settings.store.url:
        raise UsageError(
            f"{args.command}: reads a SQLite file, and store.url puts the record in "
            "PostgreSQL; pass --db FILE for a SQLite copy"
        )
    return settings.store.path


@contextlib.contextmanager
def _statements(args: argparse.Namespace, settings: Settings) -> Iterator[str | Statements]:
    """Where ``persona import|export`` keeps statements: --db (a SQLite file), else the
    room's store: PostgreSQL when store.url is set, store.path otherwise."""
    if args.db or not settings.store.url:
        yield args.db or settings.store.path
        return
    from townhall.server.store.postgres import StatementBook

    with StatementBook(settings.store.url) as book:
        yield book


def cmd_transcript(args: argparse.Namespace) -> int:
    from townhall.server.ops.transcript import TranscriptError, export

    settings = load_settings(args.config)
    db = _sqlite_db(args, settings)
    try:
        text = export(db, args.room, args.format)
    except TranscriptError as exc:
        print(f"townhall transcript: {exc}", file=sys.stderr)
        return 1
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_attendance(args: argparse.Namespace) -> int:
    from townhall.server.ops.attendance import AttendanceError, export

    settings = load_settings(args.config)
    db = _sqlite_db(args, settings)
    anonymous = args.anonymous or settings.attendance.anonymous
    try:
        text = export(db, args.room, args.format, anonymous)
    except AttendanceError as exc:
        print(f"townhall attendance: {exc}", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _recordings_folder(args: argparse.Namespace) -> Path:
    from townhall.server.ops.config import recording_folder

    if args.folder:
        return Path(args.folder)
    return recording_folder(load_settings(args.config))


def cmd_recording_list(args: argparse.Namespace) -> int:
    from townhall.server.store.recording import list_recordings

    folder = _recordings_folder(args)
    found = list_recordings(folder)
    if args.json:
        print(json.dumps({"recordings": [r.to_json() for r in found]}, indent=2))
        return 0
    if not found:
        print(f"no recordings in {folder}")
        return 0
    for r in found:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        print(
            f"{r.id}  room {r.room}  {started}  {r.duration_s:.0f} s  "
            f"{len(r.chapters)} chapters  {r.bytes / 1e6:.1f} MB"
        )
    return 0


def cmd_recording_export(args: argparse.Namespace) -> int:
    from townhall.server.ops.recording_export import export
    from townhall.server.store.recording import RecordingError, path_of

    folder = _recordings_folder(args)
    try:
        source = path_of(folder, args.id)
    except RecordingError as exc:
        print(f"townhall recording: {exc}", file=sys.stderr)
        return 2
    if not source.is_file():
        print(f"townhall recording: no recording {args.id} in {folder}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.suffix.lower() != ".webm":
        print(f"townhall recording: {out}: the output must end in .webm", file=sys.stderr)
        return 2
    done = export(source, out)
    print(f"{done.webm}: {done.duration_s:.1f} s of Opus audio")
    print(f"{done.vtt}: {done.cues} captions")
    return 0


def cmd_persona_check(args: argparse.Namespace) -> int:
    from townhall.server.clone.persona import check_persona

    ok, report = check_persona(args.dir)
    print(report, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def cmd_persona_import(args: argparse.Namespace) -> int:
    from townhall.server.ops.persona_store import import_folder

    settings = load_settings(args.config)
    with _statements(args, settings) as db:
        counts = import_folder(args.dir, db)
    print(", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def cmd_persona_export(args: argparse.Namespace) -> int:
    from townhall.server.clone.persona import sample_persona_path
    from townhall.server.ops.persona_store import export_folder

    settings = load_settings(args.config)
    source = args.persona or settings.clone.persona or str(sample_persona_path())
    with _statements(args, settings) as db:
        n = export_folder(source, db, args.dir)
    print(f"{n} statements written to {args.dir}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from townhall.server.ops.transcript import TranscriptError, export_audit

    settings = load_settings(args.config)
    try:
        text = export_audit(_sqlite_db(args, settings), args.room, args.format)
    except TranscriptError as exc:
        print(f"townhall audit: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def cmd_avatar_build(args: argparse.Namespace) -> int:
    from townhall.server.clone.avatar.build import build_avatar
    from townhall.server.clone.persona import PersonaError, load_persona

    try:
        persona = load_persona(args.dir)
    except PersonaError as err:
        first = err.issues[0] if err.issues else "invalid"
        print(f"townhall: persona {args.dir}: {first} (`townhall persona check`)", file=sys.stderr)
        return 2
    out = Path(args.out)
    if persona.avatar_vrm is not None and not args.force:
        print(
            f"townhall: persona {args.dir} names its own model {persona.avatar_vrm.name}; "
            "use --force to build one from [appearance] anyway",
            file=sys.stderr,
        )
        return 2
    data = build_avatar(persona.appearance, persona.name)
    try:
        out.write_bytes(data)
    except OSError as err:
        print(f"townhall: cannot write {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    print(f"{out}: VRM 1.0 avatar of {persona.name}, {len(data) / 1e6:.1f} MB")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.table:
        print("| setting | default | environment | meaning |")
        print("| --- | --- | --- | --- |")
        for key, default, env, doc in settings_table():
            print(f"| `{key}` | `{default}` | `{env}` | {doc} |")
        return 0
    print(render_toml(load_settings(args.config), redact=True), end="")
    return 0


def cmd_xr(args: argparse.Namespace) -> int:
    from townhall.plugin.xr.mirror import main as xr_main

    if not getattr(args, "debug", False):
        # The OpenXR loader prints its search for a runtime to stderr; the error says it.
        os.environ.setdefault("XR_LOADER_DEBUG", "none")

    return xr_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="townhall",
        description="Townhall: live town halls in a shared virtual room with an AI clone on stage.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the room server (HTTP and WebSocket on one port)")
    _add_config(p)
    p.add_argument("--scene", metavar="FILE", help="scene file (default: the bundled hall)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--room", help="room id (default main)")
    p.add_argument(
        "--role",
        dest="server_role",
        choices=["all", "authority", "edge", "media"],
        help="all (default): room and clients here; authority: the room, feeding edges over "
        "NATS ([bus]), or a standby that takes over when the active one dies (a lease in "
        "NATS KV, bus.lease_ttl_s); edge: a WebSocket endpoint fed by the authority over NATS; "
        "media: a media node running the live mics' WebRTC peers (rtc.media = bus) for the "
        "rooms in rtc.media_rooms",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="print a signed join token")
    _add_config(p)
    p.add_argument(
        "--role",
        required=True,
        choices=list(ROLES),
        help="what the holder may do",
    )
    p.add_argument("--name", required=True, help="display name shown to others")
    p.add_argument("--user", help="stable user id (default: generated)")
    p.add_argument("--ttl", type=int, metavar="S", help="lifetime in seconds (default 8 h)")
    p.add_argument("--room", help="room the token admits to (default from config)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("scene", help="work with scene files")
    scene_sub = p.add_subparsers(dest="scene_command", required=True, metavar="ACTION")
    c = scene_sub.add_parser("check", help="validate a scene file and summarise it")
    c.add_argument("file", help="scene JSON file")
    c.set_defaults(func=cmd_scene_check)

    p = sub.add_parser("bots", help="run simulated headset attendees against a server")
    _add_config(p)
    p.add_argument("--count", type=int, default=10, help="how many attendees (default 10)")
    p.add_argument("--url", required=True, help="server WebSocket URL, e.g. ws://127.0.0.1:8765/ws")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: run on)")
    p.add_argument("--pose-hz", type=float, default=20, help="poses per second per bot")
    p.add_argument("--seed", type=int, default=1, help="random seed for their movement")
    p.add_argument("--room", help="room id the tokens are for (default from config)")
    p.set_defaults(func=cmd_bots)

    p = sub.add_parser("demo", help="serve with simulated attendees and print the URLs to open")
    _add_config(p)
    p.add_argument("--bots", type=int, default=200, help="simulated attendees (default 200)")
    p.add_argument("--port", type=int, help="port (default 8765)")
    p.add_argument("--host", help="address (default 127.0.0.1)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: run on)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("transcript", help="export a room's questions, answers and actions")
    _add_config(p)
    p.add_argument("room", help="room id (e.g. main)")
    p.add_argument("--format", choices=["md", "json", "vtt"], default="md", help="default md")
    p.add_argument("--db", metavar="FILE", help="SQLite database (default: store.path)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("attendance", help="who attended a room: clients, times, questions, votes")
    _add_config(p)
    p.add_argument("room", help="room id (e.g. main)")
    p.add_argument("--format", choices=["csv", "json"], default="csv", help="default csv")
    p.add_argument(
        "--anonymous",
        action="store_true",
        help="no names, hashed ids (always so with attendance.anonymous)",
    )
    p.add_argument("--db", metavar="FILE", help="SQLite database (default: store.path)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_attendance)

    p = sub.add_parser("recording", help="list or export the event's recordings")
    rec_sub = p.add_subparsers(dest="recording_command", required=True, metavar="ACTION")
    c = rec_sub.add_parser("list", help="the recordings in the recording folder")
    _add_config(c)
    c.add_argument("--folder", help="recording folder (default: recording.folder)")
    c.add_argument("--json", action="store_true", help="as JSON, with the chapters")
    c.set_defaults(func=cmd_recording_list)
    c = rec_sub.add_parser("export", help="write a recording as WebM (Opus) and WebVTT captions")
    _add_config(c)
    c.add_argument("id", help="recording id (see `townhall recording list`)")
    c.add_argument("out", help="WebM file to write; the captions go beside it as .vtt")
    c.add_argument("--folder", help="recording folder (default: recording.folder)")
    c.set_defaults(func=cmd_recording_export)

    p = sub.add_parser("persona", help="work with persona directories")
    persona_sub = p.add_subparsers(dest="persona_command", required=True, metavar="ACTION")
    c = persona_sub.add_parser("check", help="validate a persona directory and summarise it")
    c.add_argument("dir", help="persona directory (persona.toml and statements/)")
    c.set_defaults(func=cmd_persona_check)
    c = persona_sub.add_parser(
        "import", help="store a persona folder's statements (new versions; missing ones retired)"
    )
    _add_config(c)
    c.add_argument("dir", help="persona directory")
    c.add_argument("--db", metavar="FILE", help="SQLite file (default: store.url, else store.path)")
    c.set_defaults(func=cmd_persona_import)
    c = persona_sub.add_parser(
        "export", help="write the store's current statements as a persona folder"
    )
    _add_config(c)
    c.add_argument("dir", help="folder to write (persona.toml copied, statements/ rewritten)")
    c.add_argument("--persona", metavar="DIR", help="source persona (default: clone.persona)")
    c.add_argument("--db", metavar="FILE", help="SQLite file (default: store.url, else store.path)")
    c.set_defaults(func=cmd_persona_export)

    p = sub.add_parser("audit", help="list every studio and moderation action: who, when, what")
    _add_config(p)
    p.add_argument("room", help="room id (e.g. main)")
    p.add_argument("--format", choices=["md", "json"], default="md", help="default md")
    p.add_argument("--db", metavar="FILE", help="SQLite database (default: store.path)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("avatar", help="build the clone's avatar (VRM 1.0) from a persona")
    avatar_sub = p.add_subparsers(dest="avatar_command", required=True, metavar="ACTION")
    c = avatar_sub.add_parser("build", help="write the VRM built from persona.toml's [appearance]")
    c.add_argument("dir", help="persona directory")
    c.add_argument("--out", "-o", default="avatar.vrm", help="file to write (default avatar.vrm)")
    c.add_argument("--force", action="store_true", help="build even if the persona names a VRM")
    c.set_defaults(func=cmd_avatar_build)

    p = sub.add_parser(
        "xr",
        help="join as a headset attendee (OpenXR) or, with --window, mirror the room on a desktop",
    )
    p.add_argument("--url", required=True, help="server WebSocket URL, e.g. ws://127.0.0.1:8765/ws")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--token", help="join token (see `townhall token`)")
    who.add_argument(
        "--sign-in",
        action="store_true",
        help="sign in with the company's identity provider: shows a code (in the headset and "
        "here) to enter at the provider's address on another device",
    )
    p.add_argument("--window", action="store_true", help="desktop mirror: no headset needed")
    p.add_argument(
        "--recording",
        metavar="ID",
        help="play a recorded event (see `townhall recording list`) from the server instead of "
        "the live room; the token is any join token for the room. The raise button (A on the "
        "right controller) skips to the next chapter; the app ends with the recording",
    )
    p.add_argument("--scene", metavar="FILE", help="scene file (default: the bundled hall)")
    p.add_argument("--width", type=int, default=1280, help="window width (default 1280)")
    p.add_argument("--height", type=int, default=720, help="window height (default 720)")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: run on)")
    p.add_argument("--screenshot", metavar="PNG", help="save the last frame (with --frames)")
    p.add_argument("--audio-wav", metavar="FILE", help="write the played audio to a WAV file")
    p.add_argument("--verbose", action="store_true", help="print timing when done")
    p.set_defaults(func=cmd_xr)

    p = sub.add_parser("config", help="print every setting with its documentation")
    _add_config(p)
    p.add_argument("--table", action="store_true", help="as a Markdown table (for README)")
    p.set_defaults(func=cmd_config)
    _add_debug(parser)
    return parser


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on every command and action, so it works wherever it is typed."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the Python traceback of an error instead of one line",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:
        # An ordinary mistake (a bad file, setting, port or token) is one line and exit 2;
        # anything else is a bug and keeps its traceback, as does everything with --debug.
        message = one_line(exc)
        if message is None or getattr(args, "debug", False):
            raise
        print(f"townhall: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
