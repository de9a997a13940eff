"""A real HTTP server on the loopback interface, for any client: the standard library's
``http.server``, tuned for tests, answering with whichever fake holds it.

``LoopbackServer`` accepts connections and hands each parsed request to the fake that
holds it (``serve``); ``Handler`` is one connection: HTTP/1.1 parsing, bodies, and the
answer written in one piece.

Tuning, each for a stall or a leak a test would otherwise meet (docs/benchmarks.md):
HTTP/1.1 keep-alive; ``TCP_NODELAY`` and each answer written in one call (no Nagle
delay); a listen backlog far above socketserver's 5; a stop that wakes the accept loop
through a socket pair instead of waiting for a poll; idle keep-alive connections
closed after ``idle_timeout`` and on stop; at most ``max_connections`` connections (one
thread each), an idle one closed to make room for a new client; daemon threads, each
joined on stop.

What the fake hears is a whole request or nothing: a client that goes away before its
headers or its body are complete is forgotten (nothing recorded). A request whose
framing is ambiguous (two different ``Content-Length`` headers, or one beside
``Transfer-Encoding``) is refused with 400 and its connection closed (RFC 9112, 6.3).
"""

from __future__ import annotations

import contextlib
import http
import io
import ipaddress
import os
import re
import select
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from pytest_qstash_tasks._core.exchange import (
    JSON_HEADERS,
    Reply,
    Request,
    ascii_int,
    error_body,
    reason_phrase,
)

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.fake import QStashTasksFake

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_BODY",
    "MAX_CONNECTIONS",
    "AccessLog",
    "Handler",
    "LoopbackServer",
]

#: Told of every answered request: method, target, status (``None``: no answer), seconds.
AccessLog = Callable[[str, str, "int | None", float], None]

#: How long ``detach`` waits for requests still being answered.
DRAIN_SECONDS = 10.0
#: How long a request held for a planned timeout waits for its client to give up.
MAX_HOLD_SECONDS = 10.0
_HOLD_POLL = 0.05
#: More live connections than this are concurrent clients, not one looping client.
_MAX_PEEKS = 8


class _OneConnectionPerRequest:
    """The loop guard's one client for connections that each carry a single request; a
    new one once the last one's connections turned out to be clients of their own."""


#: Seconds a keep-alive connection may wait for its next request before it is closed.
IDLE_TIMEOUT = 30.0
#: Seconds a client has, from the first byte of a request, to send its whole head (the
#: request line and headers): a client that sends a byte now and then holds a thread no
#: longer than this (408 then).
HEAD_TIMEOUT = 10.0
#: How long a refused connection's unread input is drained before it is closed: closed
#: with input unread, the socket would reset, and the client might see the reset
#: instead of the answer (RFC 9112, 9.6).
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 26
#: Connections served at once, one thread each; past it the connection idle the longest
#: is closed to make room, or the newcomer waits in the listen backlog until one ends.
#: Far above what a test's clients hold at once (httpx and aiohttp pool 100 each): a
#: client may reuse an idle connection just as it is closed.
MAX_CONNECTIONS = 512


class LoopbackServer(ThreadingHTTPServer):
    """The server; ``attach`` a fake to have it answer.

    Binds when built (so ``base_url`` is known at once), serves from ``start`` to
    ``stop``. A request that arrives while no fake is attached gets ``503`` with a
    JSON error and is kept in ``stray`` for someone to report.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024
    #: ``handle_request`` never waits: the accept loop calls it when a client is ready
    #: (and a client that vanished in between must not block the loop).
    timeout = 0

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_hold_seconds: float = MAX_HOLD_SECONDS,
        access_log: AccessLog | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        try:
            family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        except ValueError:
            raise ValueError(
                f"host must be an IP address such as 127.0.0.1 or ::1, got {host!r} "
                "(a name like localhost may resolve to another address than the one served)"
            ) from None
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int 0-65535 (0: a free one), got {port!r}")
        self.address_family = family
        super().__init__((host, port), Handler)
        self.host, self.port = host, self.server_address[1]
        self.max_hold_seconds = max_hold_seconds
        self.access_log = access_log
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        self.stray: list[str] = []
        self.internal_errors: list[str] = []
        self._fake: QStashTasksFake | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._connections: set[socket.socket] = set()
        #: Connections waiting for their next request, and since when (monotonic): the
        #: one idle the longest is closed to make room.
        self._waiting: dict[socket.socket, float] = {}
        #: Connections whose one request so far counted for the shared client and was
        #: answered: the client may hold them open while it opens its next. (Weak: a
        #: closed connection leaves it.)
        self._answered_once: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        #: Connections refused: their unread input is drained before they are closed.
        self._refused: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._shared = _OneConnectionPerRequest()
        #: The connection of the shared client's last request.
        self._shared_last: socket.socket | None = None
        self._room = threading.Condition(self._lock)
        self._workers: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = socket.socketpair()
        self._accept_thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (IPv6: ``http://[::1]:<port>``): a literal IP."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._accept_thread is not None

    # -- start, stop ----------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
        if self._accept_thread is not None:
            raise RuntimeError("this server is already running")
        ready = threading.Event()
        thread = threading.Thread(
            target=self._accept_loop, args=(ready,), name=f"qstash-tasks-server:{self.port}"
        )
        thread.daemon = True
        thread.start()
        ready.wait()
        self._accept_thread = thread
        return self

    def stop(self) -> None:
        """Stop at once: no poll to wait for; open connections closed, threads joined."""
        thread, self._accept_thread = self._accept_thread, None
        self._stopping.set()
        with self._lock:
            self._room.notify_all()
        if thread is not None:
            self._wake_write.send(b"x")
            thread.join()
        self.server_close()
        with self._lock:
            connections, threads = list(self._connections), list(self._workers)
        for connection in connections:
            _shutdown(connection)
        for worker in threads:
            worker.join(DRAIN_SECONDS)

    def server_close(self) -> None:
        """Close the listening socket and the wake-up pair (also for a server never started)."""
        super().server_close()
        # Not there yet when binding failed (socketserver closes then, from __init__).
        for wake in (getattr(self, "_wake_read", None), getattr(self, "_wake_write", None)):
            if wake is not None:
                wake.close()

    def _accept_loop(self, ready: threading.Event) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            ready.set()
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_read or not self._make_room():
                        return
                    self.handle_request()  # ready: accepts without waiting

    def _make_room(self) -> bool:
        """Wait until one more connection may be served, closing idle ones meanwhile;
        ``False`` when the server stops first."""
        with self._lock:
            while len(self._connections) >= self.max_connections:
                if self._stopping.is_set():
                    return False
                if self._waiting:
                    oldest = min(self._waiting, key=self._waiting.__getitem__)
                    del self._waiting[oldest]
                    _shutdown(oldest)  # its thread sees the end and leaves
                self._room.wait(_HOLD_POLL)
            return not self._stopping.is_set()

    def waiting(self, connection: socket.socket, idle: bool) -> None:
        """Called by a connection's handler around its wait for the next request."""
        with self._lock:
            if idle:
                self._waiting[connection] = time.monotonic()
            else:
                self._waiting.pop(connection, None)

    # -- fakes ----------------------------------------------------------------------

    def attach(self, fake: QStashTasksFake) -> None:
        """Have ``fake`` answer from now on."""
        with self._lock:
            if self._fake is not None and self._fake is not fake:
                raise RuntimeError(
                    f"the server at {self.base_url} is already held by {self._fake!r}"
                )
            self._fake = fake

    def detach(self, fake: QStashTasksFake) -> None:
        """Stop answering with ``fake``, once the requests it is answering are done."""
        with self._lock:
            if self._fake is fake:
                self._fake = None
            self._idle.wait_for(lambda: self._in_flight == 0, DRAIN_SECONDS)

    def take_stray(self) -> list[str]:
        """The requests no fake answered since the last call (and forget them)."""
        with self._lock:
            stray, self.stray = self.stray, []
        return stray

    @contextmanager
    def _holding(self) -> Iterator[QStashTasksFake | None]:
        """The fake for one request, counted in flight until it is answered."""
        with self._lock:
            self._in_flight += 1
            fake = self._fake
        try:
            yield fake
        finally:
            with self._lock:
                self._in_flight -= 1
                self._idle.notify_all()

    def _client(self, handler: Handler) -> Hashable:
        """Whom the loop guard counts a request for.

        Requests on one connection count for one client (threads and tasks each hold
        their own). A connection whose first request finds no other client at work
        counts for one shared client: that is a client that never reuses its connection
        (``requests.get`` or curl in a loop), not a burst of concurrent clients. Other
        clients at work are the live connections but those whose client has closed them
        and those that carried one request of the shared client's, answered: ``r =
        requests.get(...)`` keeps its connection open while ``r`` lives (urllib3 2
        closes a pool when it is collected). A connection of the shared client that
        carries another request stays with it while nobody else used it since;
        otherwise it was a client of its own, and so were the others: each counts for
        itself from then on, and the shared client starts again.
        """
        connection = handler.connection
        handler.carried += 1
        with self._lock:
            client = handler.client
            if client is not None:  # a later request on the connection
                self._answered_once.discard(connection)
                if client is self._shared and self._shared_last is connection:
                    return client  # nobody else used the shared client since
                if client is self._shared:  # it was several clients: start again
                    self._shared = _OneConnectionPerRequest()
                handler.client = handler.client_address
                return handler.client
            others = [
                conn
                for conn in self._connections
                if conn is not connection and conn not in self._answered_once
            ]
        # The previous connection of a looping client is closed by the client, though
        # its thread here may not have seen it yet: ask the kernel.
        alone = len(others) <= _MAX_PEEKS and all(map(_peer_closed, others))
        with self._lock:
            if alone:
                handler.client = self._shared
                self._shared_last = connection
            else:
                handler.client = handler.client_address
        return handler.client

    # -- socketserver hooks ---------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._workers.add(thread)
            self._connections.add(request)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())
                self._connections.discard(request)
                self._waiting.pop(request, None)
                self._room.notify_all()

    def refused(self, connection: socket.socket) -> None:
        """Called by a handler that refused a request: drain before closing."""
        with self._lock:
            self._refused.add(connection)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            refused = request in self._refused
        if refused:
            _linger(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer is not the server's error, and a bug
        # in answering was already turned into a 500 and recorded by the handler.
        pass

    # -- one request ----------------------------------------------------------------

    def serve(self, handler: Handler, body: bytes) -> None:
        """Hand one parsed request to the fake and carry out its reply."""
        started = time.perf_counter()
        target = _origin_form(handler.path)
        raw_path, _, query = target.partition("?")
        client = self._client(handler)
        with self._holding() as fake:
            request = Request(
                method=handler.command,
                url=self.base_url + target,
                raw_path=raw_path,
                query=query,
                headers=tuple(handler.headers.items()),
                body=body,
                client=client,  # in_process stays False: no exception reaches a socket client
            )
            if fake is None:
                self.stray.append(f"{request.method} {request.url}")
                text = (
                    f"qstash_tasks_server: no test holds the server at {self.base_url} "
                    "now, so nothing answers this request"
                )
                reply = Reply("answer", 503, JSON_HEADERS, error_body(text))
            else:
                try:
                    reply = fake._dispatch(request)
                except Exception as error:  # a bug: reported, and the client told
                    text = f"qstash_tasks_server: {type(error).__name__}: {error}"
                    self.internal_errors.append(f"{request.method} {request.url}: {text}")
                    reply = Reply("answer", 500, JSON_HEADERS, error_body(text))
            self._carry_out(handler, reply)
        if self.access_log is not None:
            status = reply.status if reply.action == "answer" else None
            self.access_log(request.method, target, status, time.perf_counter() - started)

    def _carry_out(self, handler: Handler, reply: Reply) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            reply = Reply("close")
        if reply.action == "answer":
            if handler.carried == 1 and isinstance(handler.client, _OneConnectionPerRequest):
                # Before the client can read it and open its next connection.
                with self._lock:
                    self._answered_once.add(handler.connection)
            handler.write_answer(reply.status, reply.headers, reply.body)
        elif reply.action == "hold":
            self._hold(handler.connection)
            handler.close_connection = True
        else:  # "close" (and "raise", which only an in-process transport can do)
            handler.close_connection = True

    def _hold(self, connection: socket.socket) -> None:
        """Send nothing until the client closes its end, the server stops, or the bound."""
        deadline = time.monotonic() + self.max_hold_seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([connection], [], [], min(left, _HOLD_POLL))
            if readable and _peer_closed(connection):
                return  # the client gave up
            if readable:
                # Data the client sent on (a pipelined request): it stays unread, so the
                # socket stays readable; wait out a poll instead of spinning.
                self._stopping.wait(min(left, _HOLD_POLL))


def _head_problem(head: bytes) -> str | None:
    """What is wrong with a header block, or ``None``: each line a name, a colon right
    after it and a value (RFC 9112, 5.1 and 5.2: no blank before the colon, no folded
    line). A block over the limits is left for the header parser to refuse (431)."""
    lines = head.splitlines(keepends=True)
    if len(lines) > _MAX_HEADERS or lines[-1] not in (b"\r\n", b"\n"):
        return None
    for line in lines[:-1]:
        if not _HEADER_LINE.fullmatch(line):
            shown = line.rstrip(b"\r\n")[:100].decode("latin-1")
            if line[:1] in (b" ", b"\t"):
                return f"a folded header line (obs-fold) is not accepted: {shown!r}"
            return f"invalid header line {shown!r}: want a name, a colon right after it, a value"
    return None


def _peer_closed(connection: socket.socket) -> bool:
    """Whether the client has closed its end (without reading from the connection).

    Peeks through a non-blocking duplicate: a socket with a timeout (every connection
    here has one, the idle timeout) waits for data before any receive, MSG_DONTWAIT or
    not, and this must answer at once.
    """
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as peek:
            peek.setblocking(False)
            return peek.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False  # open, and idle
    except (OSError, ValueError):  # ValueError: closed here already (fileno -1)
        return True


def _linger(connection: socket.socket) -> None:
    """Close the sending side, then read and drop what the client still sends, until it
    closes its side or a bound: the answer reaches it before the connection ends."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER_SECONDS
        drained = 0
        while drained < _LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            chunk = connection.recv(65536)
            if not chunk:
                return
            drained += len(chunk)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the client
        connection.shutdown(socket.SHUT_RDWR)


#: Printable ASCII: what a request target keeps as it is (``%`` escapes included).
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def _origin_form(target: str) -> str:
    """The request target as a path and query: an absolute-form target (what an HTTP
    proxy sends, which RFC 9112 says a server must accept) loses its scheme and host,
    and bytes outside ASCII (a raw UTF-8 id) are percent-encoded, as a client that
    encodes them sends them."""
    # http.server decodes the request line as Latin-1: these are the bytes as sent.
    raw = target.encode("latin-1")
    if not raw.isascii():
        target = quote(raw, safe=_TARGET_SAFE)
    if target[:7].lower() == "http://" or target[:8].lower() == "https://":
        parts = urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target


#: The largest request body read; a larger one is refused with 413. Well above QStash's
#: message limit (1 MB on the free plan, the fake's ``max_message_size``) and a batch of
#: such messages, so that an oversized message gets the fake's answer, as from QStash.
MAX_BODY = 1 << 25
#: Header lines read before the header parser refuses them (http.client's own limit).
_MAX_HEADERS = 100
#: The characters of a method or a header name (RFC 9110's ``tchar``).
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: A header line: a name, a colon right after it (RFC 9112, 5.1: no blank before it), a
#: value with no CR (but the line's end), LF or NUL.
_HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\x00]*\r?\n")
#: A chunk's size: hex digits only (no sign, no 0x, no underscore), then its extensions.
_CHUNK_SIZE = re.compile(rb"0*([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


class _Receiving(socket.SocketIO):
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


class Handler(BaseHTTPRequestHandler):
    """One connection: reads each request, has the server serve it."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer
    #: Whom the loop guard counts this connection's requests for (see
    #: ``LoopbackServer._client``); decided at its first request.
    client: Hashable | None = None
    #: How many requests the connection carried so far.
    carried = 0

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A client silent this long (between requests, or in the middle of one) is gone.
        self.connection.settimeout(self.server.idle_timeout)
        self.rfile.close()  # the reader socketserver made: reads get a deadline instead
        self.receiving = _Receiving(self.connection, self.server.idle_timeout)
        self.reader = self.rfile = io.BufferedReader(self.receiving)

    def handle_one_request(self) -> None:
        self.command = None  # type: ignore[assignment]  # no request line read yet
        try:
            # Until its head is whole, the connection is one an idle one may be closed
            # for: a client sending half a request holds no room from a new one.
            self.server.waiting(self.connection, True)
            try:
                head = self._receive_head()
            finally:
                self.server.waiting(self.connection, False)
                self.receiving.end_deadline()
            if head is None:
                return
            # parse_request reads the headers from rfile: hand it the ones read above.
            connection_file, self.rfile = self.rfile, io.BytesIO(head)
            try:
                parsed = self.parse_request()  # else it answered 400, 431, ... itself
            finally:
                self.rfile = connection_file
            if parsed and len(self.headers.get_all("host") or ()) > 1:
                self.send_error(400, "more than one Host header")
                parsed = False
            body = self._read_body() if parsed else None
            if body is not None:
                self.server.serve(self, body)
        except OSError:  # the client went away, or stayed silent past the idle timeout
            self.close_connection = True

    def _receive_head(self) -> bytes | None:
        """The request line and the header lines, read by the head's deadline; ``None``
        when there is none to serve (refused here, or the client went away)."""
        first = self.reader.peek(1)  # waits up to the idle timeout, with no deadline yet
        if not first:
            self.close_connection = True
            return None
        # Not HTTP (a TLS ClientHello, binary): refused at once, not after a timeout.
        method = first.split(b" ", 1)[0].split(b"\n", 1)[0].removesuffix(b"\r")
        if not set(method) <= _TCHAR or not method:
            self.send_error(400, "not an HTTP/1.1 request (https:// to an http:// server?)")
            return None
        self.receiving.deadline = time.monotonic() + self.server.head_timeout
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(http.HTTPStatus.REQUEST_URI_TOO_LONG)
                return None
            words = self.raw_requestline.split()
            if not self.raw_requestline.endswith(b"\n"):
                # A request line cut off by the client going away.
                self.close_connection = True
                return None
            if len(words) == 2:  # "GET /path": HTTP/0.9, which has no headers to wait for
                self.send_error(400, "HTTP/0.9 is not supported: send an HTTP/1.1 request")
                return None
            if len(words) != 3:
                line = self.raw_requestline.rstrip(b"\r\n").decode("latin-1")
                self.send_error(400, f"Bad request syntax ({line!r})")
                return None
            head = self._read_head()
        except TimeoutError:
            self.receiving.end_deadline()  # to write the answer with the socket's timeout
            self.send_error(
                408, f"the request head did not arrive within {self.server.head_timeout:g} s"
            )
            return None
        if head is None:  # the client went away before the end of its headers
            self.close_connection = True
            return None
        problem = _head_problem(head)
        if problem is not None:
            self.send_error(400, problem)
            return None
        return head

    def _read_head(self) -> bytes | None:
        """The header lines up to the blank line that ends them, or ``None`` when the
        client goes away first. Past 100 lines, or in a line too long, it stops: the
        header parser then refuses them with 431."""
        lines: list[bytes] = []
        while len(lines) <= _MAX_HEADERS:
            line = self.rfile.readline(65537)
            lines.append(line)
            if len(line) > 65536 or line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                return None
        return b"".join(lines)

    def _read_body(self) -> bytes | None:
        """The request body, drained so the next request on the connection starts clean;
        ``None`` when the request was refused, or its client went away mid-body."""
        lengths = set(self.headers.get_all("content-length") or ())
        encoding = self.headers.get("transfer-encoding")
        if encoding is not None and lengths:
            self.send_error(400, "Content-Length beside Transfer-Encoding: ambiguous framing")
            return None
        if encoding is not None:
            # Chunked alone: a coding before it (gzip, chunked) would have to be undone,
            # and passing its bytes on as the body would be wrong.
            if encoding.strip().lower() != "chunked":
                self.send_error(400, f"unsupported Transfer-Encoding {encoding!r}")
                return None
            return self._read_chunked()
        if len(lengths) > 1:
            self.send_error(400, f"conflicting Content-Length headers: {sorted(lengths)}")
            return None
        if not lengths:
            return b""
        length = lengths.pop()
        size = ascii_int(length)
        if size is None:
            self.send_error(400, f"invalid Content-Length {length!r}")
            return None
        if size > MAX_BODY:
            self.send_error(413, f"request body over {MAX_BODY} bytes")
            return None
        return self._read_exactly(size)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line.endswith(b"\n"):
                return self._gone()
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                self.send_error(400, "invalid chunked body")
                return None
            size = int(match[1], 16)
            total += size
            if total > MAX_BODY:
                self.send_error(413, f"request body over {MAX_BODY} bytes")
                return None
            if size == 0:
                while (trailer := self.rfile.readline(65537)) not in (b"\r\n", b"\n"):
                    if not trailer.endswith(b"\n"):
                        return self._gone()
                return b"".join(chunks)
            chunk = self._read_exactly(size)
            if chunk is None or not self.rfile.readline(3).endswith(b"\n"):
                return self._gone()
            chunks.append(chunk)

    def _read_exactly(self, size: int) -> bytes | None:
        data = self.rfile.read(size)
        return data if len(data) == size else self._gone()

    def _gone(self) -> bytes | None:
        """The client went away in the middle of its request: forget it (no body)."""
        self.close_connection = True
        return None

    def write_answer(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
        """Status line, headers and body in one write: no Nagle delay between them."""
        head = [f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers)
        head.append(f"content-length: {len(body)}\r\n")
        if self.close_connection:
            head.append("connection: close\r\n")
        head.append("\r\n")
        payload = "".join(head).encode("latin-1")
        self.wfile.write(payload if self.command == "HEAD" else payload + body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the HTTP layer (a bad request line, huge headers): JSON, as QStash.
        The connection then closes, its unread input drained first."""
        self.close_connection = True
        self.server.refused(self.connection)
        text = reason_phrase(code, f"HTTP status {code}") if message is None else message
        with contextlib.suppress(OSError):  # the client went away
            self.write_answer(code, JSON_HEADERS, error_body(text))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the fake records every call
