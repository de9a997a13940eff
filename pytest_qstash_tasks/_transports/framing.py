"""HTTP/1.1 framing as the loopback server reads it (RFC 9112): the request target, the
header block, chunk sizes, and a reader whose reads keep to a request head's deadline.
Standard library only."""

from __future__ import annotations

import re
import socket
import time
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["MAX_HEADERS", "TCHAR", "CHUNK_SIZE", "DeadlineReader", "head_problem", "origin_form"]


#: Header lines read before the header parser refuses them (http.client's own limit).
MAX_HEADERS = 100
#: The characters of a method or a header name (RFC 9110's ``tchar``).
TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: A header line: a name, a colon right after it (RFC 9112, 5.1: no blank before it), a
#: value with no CR (but the line's end), LF or NUL.
HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\x00]*\r?\n")
#: A chunk's size: hex digits only (no sign, no 0x, no underscore), then its extensions.
CHUNK_SIZE = re.compile(rb"0*([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


class DeadlineReader(socket.SocketIO):
    """A connection's reads, each bounded by what is left of ``deadline`` while one is
    set (a request head being received), else by the idle timeout the socket has.

    A head that came whole with its first read (the common case) is read from the buffer
    after that: no read, so no timeout to set (each costs system calls)."""

    def __init__(self, sock: socket.socket, idle_timeout: float) -> None:
        super().__init__(sock, "rb")
        self.sock, self.idle_timeout = sock, idle_timeout
        self.deadline: float | None = None
        self._shortened = False

    def readinto(self, buffer: Any) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request head took too long")
            self.sock.settimeout(min(left, self.idle_timeout))
            self._shortened = True
        return super().readinto(buffer)

    def end_deadline(self) -> None:
        self.deadline = None
        if self._shortened:
            self.sock.settimeout(self.idle_timeout)
            self._shortened = False


def head_problem(head: bytes) -> str | None:
    """What is wrong with a header block, or ``None``: each line a name, a colon right
    after it and a value (RFC 9112, 5.1 and 5.2: no blank before the colon, no folded
    line). A block over the limits is left for the header parser to refuse (431)."""
    lines = head.splitlines(keepends=True)
    if len(lines) > MAX_HEADERS or lines[-1] not in (b"\r\n", b"\n"):
        return None
    for line in lines[:-1]:
        if not HEADER_LINE.fullmatch(line):
            shown = line.rstrip(b"\r\n")[:100].decode("latin-1")
            if line[:1] in (b" ", b"\t"):
                return f"a folded header line (obs-fold) is not accepted: {shown!r}"
            return f"invalid header line {shown!r}: want a name, a colon right after it, a value"
    return None


#: Printable ASCII: what a request target keeps as it is (``%`` escapes included).
TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def origin_form(target: str) -> str:
    """The request target as a path and query: an absolute-form target (what an HTTP
    proxy sends, which RFC 9112 says a server must accept) loses its scheme and host,
    and bytes outside ASCII (a raw UTF-8 id) are percent-encoded, as a client that
    encodes them sends them."""
    # http.server decodes the request line as Latin-1: these are the bytes as sent.
    raw = target.encode("latin-1")
    if not raw.isascii():
        target = quote(raw, safe=TARGET_SAFE)
    if target[:7].lower() == "http://" or target[:8].lower() == "https://":
        parts = urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target
