"""Settings: one TOML file, every key documented, each overridable by environment.

An environment variable ``TOWNHALL_<SECTION>_<KEY>`` (upper case) overrides
``[section] key`` in the file, which overrides the default here. The docs in
``metadata`` are the single source for ``townhall config`` and the README table.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints


def _doc(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class ServerSettings:
    host: str = _doc("127.0.0.1", "Address to listen on (HTTP and WebSocket share one port).")
    port: int = _doc(8765, "TCP port; 0 picks a free one.")
    room: str = _doc("main", "Room id; tokens name the room they admit to.")
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
    secret: str = _doc("", "HMAC secret for join tokens; empty means read or create secret_file.")
    secret_file: str = _doc(
        ".townhall/secret",
        "File holding the secret when none is set; created (mode 600) if absent.",
    )
    default_ttl_s: int = _doc(8 * 3600, "Lifetime of tokens printed by `townhall token`.")
    max_token_lifetime_s: int = _doc(
        24 * 3600,
        "Longest a token may live (exp - iat, and exp - now); longer ones get BAD_TOKEN, so a "
        "token leaked from a careless issuer cannot be used for ever.",
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
    event_log: int = _doc(4096, "Sequenced events kept for resume; older resumes get a keyframe.")

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
    path: str = _doc(
        ".townhall/townhall.db", "SQLite database (WAL) for questions, votes, answers."
    )
    synchronous: str = _doc(
        "FULL", "SQLite synchronous mode: FULL survives power loss, NORMAL only a crash."
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
    openai_api_key: str = _doc("", "API key; empty means the OPENAI_API_KEY environment variable.")
    openai_model: str = _doc("gpt-4o-mini", "Chat model for the openai brain.")
    openai_speech_model: str = _doc("tts-1", "Speech model for the openai voice.")
    openai_voice: str = _doc("", "Speech voice for the openai voice; empty: the persona's.")
    fps: int = _doc(30, "Animation frames per second in stage packets (30..60).")
    pause_s: float = _doc(1.5, "Pause between answers.")
    interrupted: str = _doc(
        "requeue",
        "An answer cut short by a crash, found on start: requeue (its question is asked again)"
        " or escalate (handed to the human leader).",
    )


@dataclass(frozen=True)
class RtcSettings:
    enabled: bool = _doc(True, "Let moderators hand attendees a live mic (voice over WebRTC).")
    allowed_networks: str = _doc(
        "127.0.0.1/32,::1/128",
        "Comma-separated networks the server may send WebRTC traffic to; others are refused.",
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
    turn_password: str = _doc("", "TURN password.")
    mdns: bool = _doc(
        False,
        "Resolve remote .local (mDNS) ICE candidates: binds 0.0.0.0:5353 and joins 224.0.0.251; "
        "the resolved address must still be in allowed_networks. Off: such candidates are refused.",
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
        "", "API key; empty means clone.openai_api_key, then OPENAI_API_KEY."
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
    clone: CloneSettings = field(default_factory=CloneSettings)
    rtc: RtcSettings = field(default_factory=RtcSettings)
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


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file, then ``TOWNHALL_*`` environment variables."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    settings = Settings()
    known = {f.name for f in fields(Settings)}
    for name in data:
        if name not in known:
            raise ConfigError(f"{path}: unknown section [{name}]")
    updates: dict[str, Any] = {}
    for sect in fields(Settings):
        current = getattr(settings, sect.name)
        types = _section_types(type(current))
        given = data.get(sect.name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: [{sect.name}] must be a table")
        values: dict[str, Any] = {}
        for key, value in given.items():
            if key not in types:
                raise ConfigError(f"{path}: unknown setting {sect.name}.{key}")
            values[key] = _coerce(value, types[key], f"{path}: {sect.name}.{key}")
        for key, kind in types.items():
            var = env_var(sect.name, key)
            if var in env:
                values[key] = _coerce(env[var], kind, f"environment {var}")
        updates[sect.name] = replace(current, **values)
    result = replace(settings, **updates)
    validate(result)
    return result


def validate(settings: Settings) -> None:
    """Range checks that types alone cannot express."""
    checks = [
        (0 <= settings.server.port <= 65535, "server.port must be 0..65535"),
        (1 <= settings.room.tick_hz <= 100, "room.tick_hz must be 1..100"),
        (0 <= settings.server.workers <= 64, "server.workers must be 0..64"),
        (1 <= settings.room.crowd_hz <= settings.room.tick_hz, "room.crowd_hz must be 1..tick_hz"),
        (
            0 <= settings.room.spectator_hz <= settings.room.tick_hz,
            "room.spectator_hz must be 0..tick_hz",
        ),
        (1 <= settings.room.pose_hz <= 30, "room.pose_hz must be 1..30"),
        (settings.room.cell_rows >= 1 and settings.room.cell_seats >= 1, "cell size must be >= 1"),
        (settings.room.far_refresh_s > 0, "room.far_refresh_s must be > 0"),
        (settings.room.event_log >= 16, "room.event_log must be >= 16"),
        (settings.limits.max_frame_bytes >= 256, "limits.max_frame_bytes must be >= 256"),
        (
            settings.limits.send_hard_bytes > settings.limits.send_soft_bytes,
            "limits.send_hard_bytes must exceed send_soft_bytes",
        ),
        (settings.server.max_connections >= 1, "server.max_connections must be >= 1"),
        (
            0 < settings.auth.default_ttl_s <= settings.auth.max_token_lifetime_s,
            "auth.default_ttl_s must be 1..auth.max_token_lifetime_s",
        ),
        (settings.log.level in {"debug", "info", "warning", "error"}, "log.level is unknown"),
        (settings.log.format in {"json", "text"}, "log.format must be json or text"),
        (settings.qa.mode in {"auto", "moderated"}, "qa.mode must be auto or moderated"),
        (
            settings.clone.interrupted in {"requeue", "escalate"},
            "clone.interrupted must be requeue or escalate",
        ),
        (
            settings.qa.questions_per_minute > 0 and settings.qa.votes_per_s > 0,
            "qa rates must be > 0",
        ),
        (
            settings.qa.guest_questions_per_minute > 0
            and settings.qa.guest_votes_per_question >= 0,
            "qa guest limits must be > 0 (questions) and >= 0 (votes)",
        ),
        (settings.qa.max_questions >= 1, "qa.max_questions must be >= 1"),
        (
            settings.limits.connects_per_address_per_min >= 0,
            "limits.connects_per_address_per_min must be >= 0",
        ),
        (
            settings.store.synchronous in {"FULL", "NORMAL", "EXTRA"},
            "store.synchronous must be FULL, NORMAL or EXTRA",
        ),
        (settings.clone.brain in {"embedded", "openai"}, "clone.brain must be embedded or openai"),
        (settings.clone.voice in {"embedded", "openai"}, "clone.voice must be embedded or openai"),
        (30 <= settings.clone.fps <= 60, "clone.fps must be 30..60"),
        (settings.rtc.max_live_mics >= 1, "rtc.max_live_mics must be >= 1"),
        (
            min(settings.rtc.accept_timeout_s, settings.rtc.connect_timeout_s) > 0
            and settings.rtc.mic_time_limit_s > 0,
            "rtc timeouts must be > 0",
        ),
        (
            settings.rtc.transcription in {"none", "openai"},
            "rtc.transcription must be none or openai",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    from townhall.server.gateway.addresses import parse_networks
    from townhall.server.gateway.admission import parse_allowed_origins

    try:
        parse_allowed_origins(settings.server.allowed_origins)
        parse_networks(settings.server.trusted_proxies, "server.trusted_proxies")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def render_toml(settings: Settings | None = None) -> str:
    """A complete, commented TOML file: the documented reference of every setting."""
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
            lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
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
