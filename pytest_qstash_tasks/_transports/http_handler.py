"""One connection of the loopback server: HTTP/1.1 parsing, bodies, and the answer
written in one piece. What to answer is the server's (``LoopbackServer.answer``)."""

from __future__ import annotations

import contextlib
import http
import socket
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from pytest_qstash_tasks._core.exchange import JSON_HEADERS, error_body, reason_phrase

if TYPE_CHECKING:
    from .loopback import LoopbackServer

__all__ = ["MAX_BODY", "Handler"]

#: The largest request body read; a larger one is refused with 413.
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer
    #: On this connection, so far.
    requests_answered = 0

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        self.command = None  # type: ignore[assignment]  # no request line read yet
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(http.HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline.endswith(b"\n"):
                # Nothing, or a request line cut off by the client going away.
                self.close_connection = True
                return
            if not self.parse_request():  # it answered 400, 431, ... itself
                return
            body = self._read_body()
            if body is not None:
                self.server.answer(self, body)
        except OSError:  # the client went away
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body, drained so the next request on the connection starts clean."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("content-length")
        if length is None:
            return b""
        if not length.isdigit():
            self.send_error(400, f"invalid Content-Length {length!r}")
            return None
        if int(length) > MAX_BODY:
            self.send_error(413, f"request body over {MAX_BODY} bytes")
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1026).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.send_error(400, "invalid chunked body")
                return None
            total += size
            if total > MAX_BODY:
                self.send_error(413, f"request body over {MAX_BODY} bytes")
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def write_answer(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
        """Status line, headers and body in one write: no Nagle delay between them."""
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        head = [f"HTTP/1.1 {status} {phrase}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers)
        head.append(f"content-length: {len(body)}\r\n")
        if self.close_connection:
            head.append("connection: close\r\n")
        head.append("\r\n")
        payload = "".join(head).encode("latin-1")
        self.wfile.write(payload if self.command == "HEAD" else payload + body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the HTTP layer (a bad request line, huge headers): JSON, as QStash."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client went away
            self.write_answer(
                code, JSON_HEADERS, error_body(reason_phrase(code) if message is None else message)
            )

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the fake records every call
