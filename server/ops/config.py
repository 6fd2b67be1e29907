"""Settings: one TOML file, every key documented, each overridable by environment.

An environment variable ``TOWNHALL_<SECTION>_<KEY>`` (upper case) overrides
``[section] key`` in the file, which overrides the default here. The docs in
``metadata`` are the single source for ``townhall config`` and the README table.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, get_type_hints


def _doc(default: Any, doc: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True)
class ServerSettings:
    host: str = _doc("127.0.0.1", "Address to listen on (HTTP and WebSocket share one port).")
    port: int = _doc(8765, "TCP port; 0 picks a free one.")
    room: str = _doc(
        "main",
        "Room id; tokens name the room they admit to. An edge serves any room; this one for "
        "a client whose token names none.",
    )
    scene: str = _doc("", "Scene file; empty means the bundled default hall.")
    max_connections: int = _doc(
        20000,
        "Open WebSocket connections (joined or not, in every fan-out worker) at most; one more "
        "is refused at the handshake with HTTP 503 and Retry-After.",
    )
    allowed_origins: str = _doc(
        "",
        "Comma-separated origins (scheme://host[:port]) whose pages may open the WebSocket; "
        "empty: the server's own (public_url's, else the one the request's Host names); * any. "
        "Clients that send no Origin (headsets, bots) are always let in.",
    )
    role: str = _doc(
        "all",
        "all: the room and its clients in this process (and its workers); authority: the "
        "room, also publishing to edges over the bus ([bus]); edge: only a WebSocket endpoint "
        "for clients of any room (each client's token names its room; server.room when none), "
        "each room fed by its authority over the bus; media: a media node hosting the live "
        "mics' WebRTC peers for the rooms in rtc.media_rooms (rtc.media).",
    )
    workers: int = _doc(
        0,
        "Fan-out worker processes that take over joined clients' sockets and do the writes; "
        "0 keeps everything in one process. Use about one per core for thousands of clients.",
    )
    allow_anonymous_spectators: bool = _doc(
        True, "Let a Join with an empty token in as a spectator with a generated name."
    )
    public_url: str = _doc("", "Base URL printed in links; empty means http://HOST:PORT.")
    trusted_proxies: str = _doc(
        "127.0.0.1,::1",
        "Comma-separated addresses or networks of load balancers in front of the server: for "
        "a connection from one of them the client's address is the last one client_address_header "
        "names that is not itself a trusted proxy. Per-address limits count that address.",
    )
    client_address_header: str = _doc(
        "X-Forwarded-For", "The header trusted proxies put the client's address in."
    )


@dataclass(frozen=True)
class AuthSettings:
    secret: str = _doc(
        "", "HMAC secret for join tokens; empty means read or create secret_file.", secret=True
    )
    secret_file: str = _doc(
        ".townhall/secret",
        "File holding the secret when none is set; the server creates it (mode 600) if absent, "
        "`townhall token` reads it (a relative path: here, then in parent directories up to "
        "the home directory, not through a world-writable one).",
    )
    default_ttl_s: int = _doc(8 * 3600, "Lifetime of tokens printed by `townhall token`.")
    max_token_lifetime_s: int = _doc(
        24 * 3600,
        "Longest a token may live (exp - iat, and exp - now); longer ones get BAD_TOKEN, so a "
        "token leaked from a careless issuer cannot be used for ever.",
    )
    anonymous_viewing: bool = _doc(
        True,
        "Let people watch without signing in (/watch with no token, a Join with an empty "
        "token); production with sign-in turns it off. Off also when "
        "server.allow_anonymous_spectators is off.",
    )
    oidc_issuer: str = _doc(
        "",
        "OpenID Connect issuer URL of the company's identity provider (its "
        "/.well-known/openid-configuration is read); empty: no sign-in, hand-made tokens only. "
        "https, or http on a loopback address for development.",
    )
    oidc_client_id: str = _doc("", "Client id registered with the identity provider.")
    oidc_client_secret: str = _doc(
        "", "Client secret registered with the identity provider.", secret=True
    )
    oidc_scopes: str = _doc(
        "openid profile email groups",
        "Scopes asked for at sign-in (space-separated; must include openid).",
    )
    oidc_role_claim: str = _doc(
        "groups", "ID token claim holding the user's groups (a list, or one string)."
    )
    oidc_name_claim: str = _doc(
        "name", "ID token claim shown as the user's name (else preferred_username, email, sub)."
    )
    oidc_attendee_groups: str = _doc(
        "",
        "Comma-separated groups whose members may watch and attend; empty: anyone the "
        "provider signs in.",
    )
    oidc_moderator_groups: str = _doc(
        "", "Comma-separated groups whose members may moderate (/moderate)."
    )
    oidc_operator_groups: str = _doc(
        "", "Comma-separated groups whose members are operators (moderate too; /studio)."
    )
    signed_in_ttl_s: int = _doc(
        3600, "Lifetime of the room token the server issues after a sign-in."
    )


@dataclass(frozen=True)
class RoomSettings:
    tick_hz: int = _doc(20, "Room ticks per second: sequenced events go out once per tick.")
    crowd_hz: int = _doc(10, "Crowd frames (near and far) per second.")
    spectator_hz: float = _doc(
        0.0,
        "Writes per second to each spectator by fan-out workers (0: every tick). Fewer, "
        "larger writes are cheaper; the clone's speech is sent a write period and a tick "
        "ahead of its media time, so it still arrives before it is due.",
    )
    pose_hz: int = _doc(20, "Pose rate the room asks attendees for (at most 30).")
    cell_rows: int = _doc(
        2, "Rows per interest cell: attendees in one cell see each other in full."
    )
    cell_seats: int = _doc(6, "Seats per row in an interest cell.")
    far_refresh_s: float = _doc(8.0, "Seconds to cycle the coarse pose of the whole crowd.")
    resume_window_s: float = _doc(60.0, "How long a dropped participant keeps slot and seat.")
    resume_token_ttl_s: float = _doc(
        21600.0,
        "Lifetime of a resume token from its Welcome (signed with auth.secret, so a standby "
        "authority that takes over honours it): longer than the event.",
    )
    event_log: int = _doc(4096, "Sequenced events kept for resume; older resumes get a keyframe.")
    phase: str = _doc(
        "live",
        "The event's phase when the room first starts (later the stored one): live, or doors "
        "for a lobby (the hall fills and the board takes questions; a moderator goes live).",
    )
    starts_at: str = _doc(
        "",
        "The scheduled start, shown as a countdown in the lobby: ISO 8601 with a time zone "
        "(2026-12-06T15:00:00+00:00) or unix seconds; moderators can change it.",
    )

    @property
    def spectator_every(self) -> int:
        """Spectators are written every n-th tick."""
        if self.spectator_hz <= 0:
            return 1
        return max(1, round(self.tick_hz / self.spectator_hz))

    @property
    def stage_lead_us(self) -> int:
        """How far ahead of its media time the clone's speech goes out (with fan-out workers).

        A packet waits up to one tick for the first write, then up to a spectator period
        less one tick for a given spectator's turn; one more tick leaves the write itself
        a tick's time to reach everyone before the packet is due.
        """
        return round(1e6 * (self.spectator_every + 1) / self.tick_hz)


@dataclass(frozen=True)
class LimitSettings:
    max_frame_bytes: int = _doc(8192, "Largest client frame; larger ones get TOO_LARGE.")
    messages_per_s: float = _doc(60.0, "Sustained client message rate (all kinds).")
    message_burst: int = _doc(120, "Burst allowance above the sustained rate.")
    max_rejects: int = _doc(50, "Rejected messages within 10 s before closing with FLOODING.")
    send_soft_bytes: int = _doc(
        65536, "Unsent bytes to a client above which droppable frames are skipped."
    )
    send_hard_bytes: int = _doc(1048576, "Unsent bytes above which the client is closed.")
    slow_close_s: float = _doc(10.0, "Seconds a client may stay above the soft limit.")
    socket_send_buffer: int = _doc(
        131072,
        "Kernel send buffer per client socket in bytes (0: the kernel's autotuning, up to "
        "megabytes each). A fixed size bounds the kernel memory a stalled client can hold "
        "and lets the send limits above see it fall behind.",
    )
    join_timeout_s: float = _doc(10.0, "Seconds to send Join after connecting.")
    connects_per_address_per_min: float = _doc(
        600.0,
        "New WebSocket connections one client address may open per minute (bursts of as many); "
        "over it the handshake gets HTTP 429 with Retry-After. 0: no limit.",
    )


@dataclass(frozen=True)
class QaSettings:
    mode: str = _doc(
        "auto", "auto: questions go straight to the queue; moderated: a moderator approves."
    )
    review: bool = _doc(False, "Moderators see each drafted answer and choose speak, edit or skip.")
    questions_per_minute: float = _doc(
        3.0, "Questions one person may ask per minute (bursts of 3)."
    )
    votes_per_s: float = _doc(5.0, "Votes one person may cast per second (bursts of 10).")
    guest_questions_per_minute: float = _doc(
        6.0,
        "Questions all anonymous guests from one address may ask per minute together (bursts "
        "of as many); a guest is a new identity with every connection, so guests count by address.",
    )
    max_questions: int = _doc(
        10000,
        "Questions a room takes at most (every state, all time); one more gets BOARD_FULL.",
    )
    guest_votes_per_question: int = _doc(
        1, "Votes anonymous guests from one address may cast for one question together."
    )


@dataclass(frozen=True)
class StoreSettings:
    url: str = _doc(
        "",
        "PostgreSQL for the room's record (postgresql://USER[:PASSWORD]@HOST[:PORT]/DB); empty "
        "keeps it in SQLite at store.path. Migrated on start; recordings stay on disk.",
        secret=True,
    )
    path: str = _doc(
        ".townhall/townhall.db",
        "SQLite database (WAL) for questions, votes, answers, when store.url is empty.",
    )
    synchronous: str = _doc(
        "FULL", "SQLite synchronous mode: FULL survives power loss, NORMAL only a crash."
    )


@dataclass(frozen=True)
class RecordingSettings:
    enabled: bool = _doc(
        True, "Record the stage (voice, animation, captions, labels) and the board to disk."
    )
    folder: str = _doc("", "Folder of recordings; empty means recordings/ next to store.path.")
    flush_s: float = _doc(
        1.0, "Seconds between flushes to disk: at most this much is lost to a kill -9."
    )


@dataclass(frozen=True)
class AttendanceSettings:
    anonymous: bool = _doc(
        False,
        "Attendance keeps no names and only hashed user ids (the report likewise).",
    )


@dataclass(frozen=True)
class CloneSettings:
    persona: str = _doc("", "Persona directory; empty means the bundled sample persona.")
    enabled: bool = _doc(True, "Run the clone: answer approved questions on stage.")
    brain: str = _doc(
        "embedded", "embedded (offline retrieval) or openai (any compatible service)."
    )
    voice: str = _doc("embedded", "embedded (eSpeak NG) or openai (compatible speech service).")
    openai_base_url: str = _doc(
        "", "Base URL of the OpenAI-compatible service (e.g. http://127.0.0.1:8000/v1)."
    )
    openai_api_key: str = _doc(
        "", "API key; empty means the OPENAI_API_KEY environment variable.", secret=True
    )
    openai_model: str = _doc("gpt-4o-mini", "Chat model for the openai brain.")
    guard: str = _doc(
        "none",
        "none, or openai: a second model judges each question before and each drafted"
        " sentence after (openai brain only); on error or timeout it escalates.",
    )
    guard_model: str = _doc("", "Chat model for the guard; empty: clone.openai_model.")
    guard_timeout_s: float = _doc(5.0, "Longest wait for one guard verdict before escalating.")
    openai_speech_model: str = _doc("tts-1", "Speech model for the openai voice.")
    openai_voice: str = _doc("", "Speech voice for the openai voice; empty: the persona's.")
    fps: int = _doc(30, "Animation frames per second in stage packets (30..60).")
    pause_s: float = _doc(1.5, "Pause between answers.")
    disclosure_pause_s: float = _doc(
        180.0,
        "The clone says aloud that it is an AI before its first answer, and again before the "
        "first answer after this many seconds of silence (0: before every answer).",
    )
    interrupted: str = _doc(
        "requeue",
        "An answer cut short by a crash, found on start: requeue (its question is asked again)"
        " or escalate (handed to the human leader).",
    )
    escalation_webhook: str = _doc(
        "",
        "URL that gets a JSON POST for every new escalation (the leader's inbox), addressed to"
        " the persona's escalation contact; empty: none.",
    )
    escalation_smtp: str = _doc(
        "",
        "SMTP server (host:port) that e-mails every new escalation to the persona's escalation"
        " contact (its address in <...>); empty: no e-mail.",
    )
    escalation_from: str = _doc("townhall@localhost", "Sender address of the escalation e-mails.")


@dataclass(frozen=True)
class RtcSettings:
    enabled: bool = _doc(True, "Let moderators hand attendees a live mic (voice over WebRTC).")
    allowed_networks: str = _doc(
        "local",
        "Comma-separated networks the server may send WebRTC traffic to; others are refused. "
        "`local`: this machine's own addresses (loopback and every interface's), so a browser "
        "on the server's machine can use the live mic; add the attendees' networks.",
    )
    host_addresses: str = _doc(
        "127.0.0.1", "Comma-separated local addresses to gather ICE host candidates on."
    )
    stun_url: str = _doc(
        "", "STUN server, as a stun URI (RFC 7064), for server-reflexive candidates; empty: none."
    )
    turn_url: str = _doc(
        "", "TURN server, as a turn URI (RFC 7065), for relayed candidates; empty: none."
    )
    turn_username: str = _doc("", "TURN username.")
    turn_password: str = _doc("", "TURN password.", secret=True)
    mdns: bool = _doc(
        False,
        "Resolve remote .local (mDNS) ICE candidates: binds 0.0.0.0:5353 and joins 224.0.0.251; "
        "the resolved address must still be in allowed_networks. Off: such candidates are refused.",
    )
    media: str = _doc(
        "local",
        "Where the live mics' WebRTC peers run: local (in the room's own process) or bus (on "
        "a media node, `serve --role media`, any host, reached over NATS; needs "
        "server.role = authority). The peers' ICE policy is this [rtc] section, on that host.",
    )
    media_timeout_s: float = _doc(
        5.0,
        "With rtc.media = bus: how long the authority waits for a media node to answer an "
        "offer, and how long a media node holding a mic may go unheard before the mic ends "
        "(failed, the attendee told why).",
    )
    media_rooms: str = _doc(
        "",
        "On a media node: the rooms it hosts mics for, comma-separated; * every room; "
        "empty: server.room.",
    )
    max_live_mics: int = _doc(1, "Mics granted, connecting or live at once.")
    accept_timeout_s: float = _doc(30.0, "Seconds a granted attendee has to accept (MicOffer).")
    connect_timeout_s: float = _doc(10.0, "Seconds an accepted mic has to connect (ICE + DTLS).")
    mic_time_limit_s: float = _doc(120.0, "Longest a live mic stays open.")
    vad_threshold_db: float = _doc(
        -45.0, "Voice-activity threshold (dBFS of a 20 ms frame); quieter frames are not sent."
    )
    transcription: str = _doc("none", "Speech-to-text: none (moderators type) or openai.")
    transcription_base_url: str = _doc(
        "", "Base URL of the OpenAI-compatible transcription service; empty: clone.openai_base_url."
    )
    transcription_model: str = _doc("whisper-1", "Transcription model.")
    transcription_api_key: str = _doc(
        "", "API key; empty means clone.openai_api_key, then OPENAI_API_KEY.", secret=True
    )


@dataclass(frozen=True)
class BusSettings:
    url: str = _doc(
        "nats://127.0.0.1:4222",
        "NATS server(s) the authority and its edges meet on (`serve --role authority|edge|media`); "
        "comma-separated nats:// or tls:// URLs. JetStream must be enabled on the server.",
    )
    deployment: str = _doc(
        "main",
        "Name of the deployment (letters, digits, - and _): its edges announce themselves to "
        "its authorities only, so deployments sharing one NATS (staging beside production) "
        "never send clients or pages to each other's edges. The same in every process of it.",
    )
    user: str = _doc("", "NATS user name; empty: no authentication (set both or neither).")
    password: str = _doc("", "NATS password for bus.user.", secret=True)
    tls_ca: str = _doc(
        "",
        "PEM file of the CA(s) that signed the NATS server's certificate, for a server that "
        "requires TLS (tls:// URLs); empty: the system's CAs.",
    )
    tls_cert: str = _doc(
        "",
        "PEM file of this process's client certificate, for a NATS server that verifies "
        "clients (`tls { verify: true }`); set with bus.tls_key.",
    )
    tls_key: str = _doc("", "PEM file of the private key of bus.tls_cert.")
    connect_timeout_s: float = _doc(
        10.0,
        "How long a starting process tries to reach the bus before it stops with one line "
        "saying why (a wrong bus.url, TLS file or password); once connected it reconnects "
        "for ever.",
    )
    edge_timeout_s: float = _doc(
        5.0,
        "An edge not heard from for this long is taken for dead by the authority: its "
        "clients leave the room (they may resume through another edge).",
    )
    replay_s: float = _doc(
        120.0, "How long the room's tick stream keeps ticks for an edge to replay (JetStream)."
    )
    lease_ttl_s: float = _doc(
        5.0,
        "The authority lease (NATS KV bucket townhall_leases, one key per room): a second "
        "`serve --role authority` of the room waits as a standby and takes over about this "
        "long after the active one stops renewing; the active one renews every quarter of it "
        "and stops acting as the room if it has not renewed within three quarters. Every "
        "authority on one NATS must use the same value.",
    )
    edge_max_rooms: int = _doc(
        32,
        "Rooms one edge serves at once (`serve --role edge`): the room of each client's "
        "token, linked on its first client. A client of one more room gets ROOM_UNAVAILABLE.",
    )
    edge_idle_s: float = _doc(
        60.0,
        "An edge unsubscribes from a room (other than server.room) that has had no client "
        "on it for this long.",
    )


@dataclass(frozen=True)
class LogSettings:
    level: str = _doc("info", "debug, info, warning or error.")
    format: str = _doc("json", "json (one object a line) or text.")


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    room: RoomSettings = field(default_factory=RoomSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    qa: QaSettings = field(default_factory=QaSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    attendance: AttendanceSettings = field(default_factory=AttendanceSettings)
    clone: CloneSettings = field(default_factory=CloneSettings)
    rtc: RtcSettings = field(default_factory=RtcSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    log: LogSettings = field(default_factory=LogSettings)


class ConfigError(ValueError):
    """A setting that cannot be used, with where it came from."""


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides ``[section] key``."""
    return f"TOWNHALL_{section}_{key}".upper()


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return value.lower() in {"1", "true", "yes", "on"}
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def _section_types(section_cls: type) -> dict[str, type]:
    return dict(get_type_hints(section_cls))


def _file_lines(path: str | Path, data: dict[str, Any]) -> dict[str, str]:
    """``section.key`` -> ``FILE:LINE`` for every key the TOML file sets (tomllib keeps no
    positions; a plain scan of ``[section]`` headers and ``key =`` lines is enough here)."""
    where: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            section = stripped.strip("[]").strip().strip('"')
            where.setdefault(section, f"{path}:{n}")
        elif "=" in stripped and not stripped.startswith("#"):
            key = stripped.split("=", 1)[0].strip().strip('"')
            where.setdefault(f"{section}.{key}", f"{path}:{n}")
    for name, table in data.items():
        if isinstance(table, dict):
            for key in table:
                where.setdefault(f"{name}.{key}", str(path))
        where.setdefault(name, str(path))
    return where


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file, then ``TOWNHALL_*`` environment variables.

    Every error names the setting and where it came from (``FILE:LINE`` or the
    environment variable), so it can be fixed without reading a traceback.
    """
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    where = _file_lines(path, data) if path else {}
    settings = Settings()
    known = {f.name for f in fields(Settings)}
    for name in data:
        if name not in known:
            raise ConfigError(
                f"{where.get(name, path)}: unknown section [{name}]"
                f" (sections: {', '.join(sorted(known))})"
            )
    updates: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for sect in fields(Settings):
        current = getattr(settings, sect.name)
        types = _section_types(type(current))
        given = data.get(sect.name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{where.get(sect.name, path)}: [{sect.name}] must be a table")
        values: dict[str, Any] = {}
        for key, value in given.items():
            name = f"{sect.name}.{key}"
            at = where.get(name, str(path))
            if key not in types:
                raise ConfigError(f"{at}: unknown setting {name} (see `townhall config`)")
            values[key] = _coerce(value, types[key], f"{at}: {name}")
            origins[name] = at
        for key, kind in types.items():
            var = env_var(sect.name, key)
            if var in env:
                values[key] = _coerce(env[var], kind, f"environment {var}")
                origins[f"{sect.name}.{key}"] = f"environment {var}"
        updates[sect.name] = replace(current, **values)
    result = replace(settings, **updates)
    validate(result, origins)
    return result


def _range_checks(s: Settings) -> list[tuple[str, bool, str]]:
    """(setting, ok, what it must be) for every rule that types alone cannot express."""
    room, limits, rtc = s.room, s.limits, s.rtc
    return [
        ("server.port", 0 <= s.server.port <= 65535, "must be 0..65535"),
        ("room.tick_hz", 1 <= room.tick_hz <= 100, "must be 1..100"),
        ("server.workers", 0 <= s.server.workers <= 64, "must be 0..64"),
        ("room.crowd_hz", 1 <= room.crowd_hz <= room.tick_hz, "must be 1..room.tick_hz"),
        (
            "room.spectator_hz",
            0 <= room.spectator_hz <= room.tick_hz,
            "must be 0..room.tick_hz",
        ),
        ("room.pose_hz", 1 <= room.pose_hz <= 30, "must be 1..30"),
        ("room.cell_rows", room.cell_rows >= 1, "must be >= 1"),
        ("room.cell_seats", room.cell_seats >= 1, "must be >= 1"),
        ("room.far_refresh_s", room.far_refresh_s > 0, "must be > 0"),
        ("room.resume_token_ttl_s", room.resume_token_ttl_s > 0, "must be > 0"),
        ("room.event_log", room.event_log >= 16, "must be >= 16"),
        ("limits.max_frame_bytes", limits.max_frame_bytes >= 256, "must be >= 256"),
        (
            "limits.send_hard_bytes",
            limits.send_hard_bytes > limits.send_soft_bytes,
            "must exceed limits.send_soft_bytes",
        ),
        ("server.max_connections", s.server.max_connections >= 1, "must be >= 1"),
        (
            "auth.default_ttl_s",
            0 < s.auth.default_ttl_s <= s.auth.max_token_lifetime_s,
            "must be 1..auth.max_token_lifetime_s",
        ),
        (
            "log.level",
            s.log.level in {"debug", "info", "warning", "error"},
            "must be debug, info, warning or error",
        ),
        (
            "clone.interrupted",
            s.clone.interrupted in {"requeue", "escalate"},
            "must be requeue or escalate",
        ),
        (
            "qa.guest_questions_per_minute",
            s.qa.guest_questions_per_minute > 0,
            "must be > 0",
        ),
        ("qa.guest_votes_per_question", s.qa.guest_votes_per_question >= 0, "must be >= 0"),
        ("qa.max_questions", s.qa.max_questions >= 1, "must be >= 1"),
        (
            "limits.connects_per_address_per_min",
            s.limits.connects_per_address_per_min >= 0,
            "must be >= 0",
        ),
        ("log.format", s.log.format in {"json", "text"}, "must be json or text"),
        ("recording.flush_s", 0 < s.recording.flush_s <= 60, "must be > 0 and <= 60"),
        (
            "auth.signed_in_ttl_s",
            0 < s.auth.signed_in_ttl_s <= s.auth.max_token_lifetime_s,
            "must be 1..auth.max_token_lifetime_s",
        ),
        ("room.phase", s.room.phase in {"doors", "live"}, "must be doors or live"),
        (
            "room.starts_at",
            start_seconds(s.room.starts_at) is not None,
            "must be ISO 8601 with a time zone (2026-12-06T15:00:00+00:00) or unix seconds",
        ),
        (
            "server.role",
            s.server.role in {"all", "authority", "edge", "media"},
            "must be all, authority, edge or media",
        ),
        ("rtc.media", s.rtc.media in {"local", "bus"}, "must be local or bus"),
        ("rtc.media_timeout_s", s.rtc.media_timeout_s > 0, "must be > 0"),
        (
            "rtc.media_rooms",
            all(
                re.fullmatch(r"[A-Za-z0-9_-]{1,64}|\*", r.strip())
                for r in s.rtc.media_rooms.split(",")
                if r.strip()
            ),
            "must be room ids (letters, digits, - and _), comma-separated, or *",
        ),
        (
            "bus.url",
            all(u.strip().startswith(("nats://", "tls://")) for u in s.bus.url.split(",")),
            "must be nats://HOST:PORT or tls://HOST:PORT (comma-separated)",
        ),
        (
            "bus.user",
            bool(s.bus.user) == bool(s.bus.password),
            "and bus.password are set together (both or neither)",
        ),
        (
            "bus.deployment",
            re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s.bus.deployment) is not None,
            "must be 1 to 64 letters, digits, - or _",
        ),
        (
            "bus.tls_cert",
            bool(s.bus.tls_cert) == bool(s.bus.tls_key),
            "and bus.tls_key are set together (both or neither)",
        ),
        *(
            (f"bus.{name}", Path(path).is_file(), "must name an existing PEM file")
            for name, path in (
                ("tls_ca", s.bus.tls_ca),
                ("tls_cert", s.bus.tls_cert),
                ("tls_key", s.bus.tls_key),
            )
            if path
        ),
        ("bus.connect_timeout_s", s.bus.connect_timeout_s > 0, "must be > 0"),
        ("bus.edge_timeout_s", s.bus.edge_timeout_s > 0, "must be > 0"),
        ("bus.replay_s", s.bus.replay_s > 0, "must be > 0"),
        ("bus.lease_ttl_s", 1 <= s.bus.lease_ttl_s <= 300, "must be 1..300"),
        ("bus.edge_max_rooms", 1 <= s.bus.edge_max_rooms <= 10_000, "must be 1..10000"),
        ("bus.edge_idle_s", s.bus.edge_idle_s > 0, "must be > 0"),
        ("qa.mode", s.qa.mode in {"auto", "moderated"}, "must be auto or moderated"),
        ("qa.questions_per_minute", s.qa.questions_per_minute > 0, "must be > 0"),
        ("qa.votes_per_s", s.qa.votes_per_s > 0, "must be > 0"),
        (
            "store.synchronous",
            s.store.synchronous in {"FULL", "NORMAL", "EXTRA"},
            "must be FULL, NORMAL or EXTRA",
        ),
        (
            "store.url",
            not s.store.url or s.store.url.startswith(("postgresql://", "postgres://")),
            "must be empty (SQLite) or start with postgresql://",
        ),
        ("clone.brain", s.clone.brain in {"embedded", "openai"}, "must be embedded or openai"),
        ("clone.voice", s.clone.voice in {"embedded", "openai"}, "must be embedded or openai"),
        ("clone.guard", s.clone.guard in {"none", "openai"}, "must be none or openai"),
        (
            "clone.guard",
            s.clone.guard == "none" or s.clone.brain == "openai",
            "must be none unless clone.brain = openai",
        ),
        ("clone.guard_timeout_s", s.clone.guard_timeout_s > 0, "must be > 0"),
        ("clone.fps", 30 <= s.clone.fps <= 60, "must be 30..60"),
        ("clone.disclosure_pause_s", s.clone.disclosure_pause_s >= 0, "must be >= 0"),
        ("rtc.max_live_mics", rtc.max_live_mics >= 1, "must be >= 1"),
        ("rtc.accept_timeout_s", rtc.accept_timeout_s > 0, "must be > 0"),
        ("rtc.connect_timeout_s", rtc.connect_timeout_s > 0, "must be > 0"),
        ("rtc.mic_time_limit_s", rtc.mic_time_limit_s > 0, "must be > 0"),
        (
            "rtc.transcription",
            rtc.transcription in {"none", "openai"},
            "must be none or openai",
        ),
    ]


def start_seconds(value: str) -> int | None:
    """``room.starts_at`` as unix seconds (0: none), or None if it is not a time."""
    value = value.strip()
    if not value:
        return 0
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int(when.timestamp()) if when.tzinfo is not None else None


def validate(settings: Settings, origins: Mapping[str, str] | None = None) -> None:
    """Range checks that types alone cannot express; ``origins`` says where a setting came
    from (``FILE:LINE``, an environment variable, a command-line option) for the message."""
    origins = origins or {}

    def fail(key: str, message: str, show: bool = True) -> ConfigError:
        section, name = key.split(".", 1)
        value = getattr(getattr(settings, section), name)
        at = origins.get(key)
        got = f", not {_toml_value(value)}" if show else ""
        return ConfigError(f"{at + ': ' if at else ''}{key} {message}{got}")

    for key, ok, message in _range_checks(settings):
        if not ok:
            raise fail(key, message, not _secret(key))
    from townhall.server.gateway.addresses import parse_networks
    from townhall.server.gateway.admission import parse_allowed_origins

    try:
        parse_allowed_origins(settings.server.allowed_origins)
    except ValueError as exc:
        reason = str(exc).removeprefix("server.allowed_origins: ")
        raise fail("server.allowed_origins", f"is not usable: {reason}", False) from None
    try:
        parse_networks(settings.server.trusted_proxies, "server.trusted_proxies")
    except ValueError as exc:
        reason = str(exc).removeprefix("server.trusted_proxies: ")
        raise fail("server.trusted_proxies", f"is not usable: {reason}", False) from None
    from townhall.server.gateway.oidc import OidcConfig, OidcConfigError

    try:
        OidcConfig.from_settings(settings.auth)
    except OidcConfigError as exc:
        raise fail(exc.key, exc.reason, False) from None
    for key in ("rtc.allowed_networks", "rtc.host_addresses"):
        text = getattr(settings.rtc, key.split(".", 1)[1])
        for part in (p.strip() for p in text.split(",")):
            try:
                if part == "local" and key == "rtc.allowed_networks":
                    continue
                if part and key == "rtc.allowed_networks":
                    ipaddress.ip_network(part, strict=False)
                elif part:
                    ipaddress.ip_address(part)
            except ValueError:
                raise fail(
                    key, f"has {part!r}, which is not an address or network", False
                ) from None


def _secret(key: str) -> bool:
    """Whether a setting's value must never be shown (a password may be in it)."""
    section, name = key.split(".", 1)
    cls = type(getattr(Settings(), section))
    return any(f.name == name and f.metadata.get("secret") for f in fields(cls))


def render_toml(settings: Settings | None = None, redact: bool = False) -> str:
    """A complete, commented TOML file: the documented reference of every setting.

    With ``redact`` a secret that is set (auth.secret, API keys, the TURN password) is shown
    as a commented-out line saying so, never its value: ``townhall config`` output gets
    pasted into tickets and chats, and loading it back leaves the secret unset.
    """
    settings = settings or Settings()
    lines = [
        "# Townhall configuration. Every key is optional; shown values are the defaults.",
        "# Any key can be overridden by the environment: TOWNHALL_<SECTION>_<KEY>.",
    ]
    for sect in fields(Settings):
        obj = getattr(settings, sect.name)
        assert is_dataclass(obj)
        lines += ["", f"[{sect.name}]"]
        for f in fields(obj):
            lines.append(f"# {f.metadata['doc']}  ({env_var(sect.name, f.name)})")
            value = getattr(obj, f.name)
            if redact and f.metadata.get("secret") and value:
                lines.append(f"# {f.name} = (set, not shown)")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def settings_table() -> list[tuple[str, str, str, str]]:
    """(key, default, environment variable, doc) rows for documentation."""
    rows = []
    defaults = Settings()
    for sect in fields(Settings):
        obj = getattr(defaults, sect.name)
        for f in fields(obj):
            assert f.default is not MISSING
            rows.append(
                (
                    f"{sect.name}.{f.name}",
                    _toml_value(f.default),
                    env_var(sect.name, f.name),
                    str(f.metadata["doc"]),
                )
            )
    return rows


def recording_folder(settings: Settings) -> Path:
    """Where recordings go: ``recording.folder``, else recordings/ beside the database."""
    if settings.recording.folder:
        return Path(settings.recording.folder)
    return Path(settings.store.path).parent / "recordings"
