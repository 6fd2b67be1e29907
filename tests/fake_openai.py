"""A local HTTP server on 127.0.0.1 that speaks enough of the OpenAI API for our backends.

The real ``openai`` client talks to it over real sockets: streamed chat completions
(server-sent events), speech (audio streamed in chunks) and transcriptions. Tests
plug in what each endpoint answers and read back what was asked.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ChatFn = Callable[[dict[str, Any]], Iterator[str]]  # request body -> content deltas
SpeechFn = Callable[[dict[str, Any]], bytes]  # request body -> audio bytes
TranscribeFn = Callable[[bytes, dict[str, str]], str]  # audio, form fields -> text


class LocalHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 for stand-in services.

    A client that hangs up before the answer is written (a timeout test does so on
    purpose) is no error of the service: no traceback in the test's output for it."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _default_chat(body: dict[str, Any]) -> Iterator[str]:
    yield "I have nothing configured to say."


@dataclass
class FakeOpenAI:
    """Start with ``with FakeOpenAI(...) as api:``; point clients at ``api.base_url``."""

    chat: ChatFn = _default_chat
    speech: SpeechFn | None = None
    transcribe: TranscribeFn | None = None
    api_key: str = "test-key"
    chunk_delay_s: float = 0.0
    requests: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._json(401, {"error": {"message": "bad key", "type": "auth"}})
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path.split("?", 1)[0]
                if path.endswith("/chat/completions"):
                    body = json.loads(raw)
                    fake.requests.append(("chat", body))
                    self._chat(body)
                elif path.endswith("/audio/speech") and fake.speech is not None:
                    body = json.loads(raw)
                    fake.requests.append(("speech", body))
                    self._stream(fake.speech(body), "application/octet-stream")
                elif path.endswith("/audio/transcriptions") and fake.transcribe is not None:
                    audio, fields = _parse_multipart(raw, self.headers.get("Content-Type", ""))
                    fake.requests.append(("transcribe", fields))
                    self._json(200, {"text": fake.transcribe(audio, fields)})
                else:
                    self._json(404, {"error": {"message": f"no route {path}", "type": "nf"}})

            def _json(self, status: int, data: object) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _begin_chunked(self, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _chat(self, body: dict[str, Any]) -> None:
                model = body.get("model", "fake")
                if not body.get("stream"):
                    text = "".join(fake.chat(body))
                    self._json(200, _completion(model, text))
                    return
                self._begin_chunked("text/event-stream")
                for delta in fake.chat(body):
                    self._chunk(_sse(_chunk_obj(model, {"content": delta}, None)))
                    if fake.chunk_delay_s:
                        time.sleep(fake.chunk_delay_s)
                self._chunk(_sse(_chunk_obj(model, {}, "stop")))
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _stream(self, data: bytes, content_type: str) -> None:
                self._begin_chunked(content_type)
                step = 4800
                for i in range(0, len(data), step):
                    self._chunk(data[i : i + step])
                    if fake.chunk_delay_s:
                        time.sleep(fake.chunk_delay_s)
                self._chunk(b"")

        self._server = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _chunk_obj(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _parse_multipart(raw: bytes, content_type: str) -> tuple[bytes, dict[str, str]]:
    """Minimal multipart/form-data parsing: the file part and the text fields."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    audio = b""
    fields: dict[str, str] = {}
    for part in raw.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, _, body = part.partition(b"\r\n\r\n")
        body = body.rstrip(b"\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode() if b'name="' in head else ""
        if b"filename=" in head:
            audio = body
        elif name:
            fields[name] = body.decode()
    return audio, fields
