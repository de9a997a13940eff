"""A real HTTP server on the loopback interface, for any client: the standard library's
``http.server``, tuned for tests, answering with whichever fake holds it.

``LoopbackServer`` accepts connections and hands each parsed request to the fake that
holds it (``serve``); ``Handler`` is one connection: HTTP/1.1 parsing, bodies, and the
answer written in one piece. ``connections.py`` keeps what the server knows of each
connection (room, lingering, whom the loop guard counts it for), ``framing.py`` the
rules of RFC 9112 the handler reads by.

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
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from pytest_qstash_tasks._core.exchange import (
    JSON_HEADERS,
    Reply,
    Request,
    ascii_int,
    error_body,
    reason_phrase,
)
from pytest_qstash_tasks._transports.connections import Connections, peer_closed, shutdown
from pytest_qstash_tasks._transports.framing import (
    CHUNK_SIZE,
    MAX_HEADERS,
    TCHAR,
    DeadlineReader,
    head_problem,
    origin_form,
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
#: How long ``detach`` waits for the connections open at that moment to settle: a
#: request sent before the test ended, on a connection whose thread has not read it
#: yet, is the test's own, not a stray of the next one.
SETTLE_SECONDS = 0.5
_SETTLE_POLL = 0.002
#: How long a request held for a planned timeout waits for its client to give up.
MAX_HOLD_SECONDS = 10.0
_HOLD_POLL = 0.05
#: Seconds a keep-alive connection may wait for its next request before it is closed.
IDLE_TIMEOUT = 30.0
#: Seconds a client has, from the first byte of a request, to send its whole head (the
#: request line and headers): a client that sends a byte now and then holds a thread no
#: longer than this (408 then).
HEAD_TIMEOUT = 10.0
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
        self.connections = Connections(self._lock)
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
            self.connections.room.notify_all()
        if thread is not None:
            self._wake_write.send(b"x")
            thread.join()
        self.server_close()
        with self._lock:
            threads = list(self._workers)
        for connection in self.connections.snapshot():
            shutdown(connection)
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
                    stopped = not self.connections.make_room(self.max_connections, self._stopping)
                    if key.fileobj is self._wake_read or stopped:
                        return
                    self.handle_request()  # ready: accepts without waiting

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
        """Stop answering with ``fake``, once the requests sent to it are answered."""
        deadline = time.monotonic() + SETTLE_SECONDS
        among = self.connections.snapshot()
        with self._lock:
            # The clients' input is in the kernel, not announced: look again and again.
            # A client that keeps sending holds this no longer than SETTLE_SECONDS.
            while not self.connections.settled(among) and time.monotonic() < deadline:
                self._idle.wait(_SETTLE_POLL)
            if self._fake is fake:
                self._fake = None
            self._idle.wait_for(lambda: self._in_flight == 0, DRAIN_SECONDS)

    def take_stray(self) -> list[str]:
        """The requests no fake answered since the last call (and forget them)."""
        with self._lock:
            stray, self.stray = self.stray, []
        return stray

    @contextmanager
    def _holding(self, connection: socket.socket) -> Iterator[QStashTasksFake | None]:
        """The fake for one request, counted in flight until it is answered."""
        with self._lock:
            self._in_flight += 1
            self.connections.serving(connection, True)
            fake = self._fake
        try:
            yield fake
        finally:
            with self._lock:
                self._in_flight -= 1
                self.connections.serving(connection, False)
                self._idle.notify_all()

    # -- socketserver hooks ---------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._workers.add(thread)
            self.connections.opened(request)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())
            self.connections.closed(request)

    def shutdown_request(self, request: Any) -> None:
        self.connections.close(request)  # a refused one lingers first
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer is not the server's error, and a bug
        # in answering was already turned into a 500 and recorded by the handler.
        pass

    # -- one request ----------------------------------------------------------------

    def serve(self, handler: Handler, body: bytes) -> None:
        """Hand one parsed request to the fake and carry out its reply."""
        started = time.perf_counter()
        target = origin_form(handler.path)
        raw_path, _, query = target.partition("?")
        client = self.connections.client_for(handler)
        with self._holding(handler.connection) as fake:
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

            def logged(status: int | None) -> None:
                if self.access_log is not None:
                    seconds = time.perf_counter() - started
                    self.access_log(request.method, target, status, seconds)

            self._carry_out(handler, reply, logged)

    def _carry_out(
        self, handler: Handler, reply: Reply, logged: Callable[[int | None], None]
    ) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            reply = Reply("close")
        if reply.action == "answer":
            # Logged before the answer goes out: a client that has its answer finds
            # its line written, so one client's requests are logged in their order.
            logged(reply.status)
            self.connections.answering(handler)
            handler.write_answer(reply.status, reply.headers, reply.body)
            return
        if reply.action == "hold":
            self._hold(handler.connection)
        # "close" (and "raise", which only an in-process transport can do)
        handler.close_connection = True
        logged(None)

    def _hold(self, connection: socket.socket) -> None:
        """Send nothing until the client closes its end, the server stops, or the bound."""
        deadline = time.monotonic() + self.max_hold_seconds
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([connection], [], [], min(left, _HOLD_POLL))
            if readable and peer_closed(connection):
                return  # the client gave up
            if readable:
                # Data the client sent on (a pipelined request): it stays unread, so the
                # socket stays readable; wait out a poll instead of spinning.
                self._stopping.wait(min(left, _HOLD_POLL))


#: The largest request body read; a larger one is refused with 413. Well above QStash's
#: message limit (1 MB on the free plan, the fake's ``max_message_size``) and a batch of
#: such messages, so that an oversized message gets the fake's answer, as from QStash.
MAX_BODY = 1 << 25


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
        self.receiving = DeadlineReader(self.connection, self.server.idle_timeout)
        self.reader = self.rfile = io.BufferedReader(self.receiving)

    def handle_one_request(self) -> None:
        self.command = None  # type: ignore[assignment]  # no request line read yet
        try:
            # Until its head is whole, the connection is one an idle one may be closed
            # for: a client sending half a request holds no room from a new one.
            self.server.connections.waiting(self.connection, True)
            try:
                head = self._receive_head()
            finally:
                self.server.connections.waiting(self.connection, False)
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
        if not set(method) <= TCHAR or not method:
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
        problem = head_problem(head)
        if problem is not None:
            self.send_error(400, problem)
            return None
        return head

    def _read_head(self) -> bytes | None:
        """The header lines up to the blank line that ends them, or ``None`` when the
        client goes away first. Past 100 lines, or in a line too long, it stops: the
        header parser then refuses them with 431."""
        lines: list[bytes] = []
        while len(lines) <= MAX_HEADERS:
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
            match = CHUNK_SIZE.fullmatch(line)
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
        self.server.connections.refused(self.connection)
        text = reason_phrase(code, f"HTTP status {code}") if message is None else message
        with contextlib.suppress(OSError):  # the client went away
            self.write_answer(code, JSON_HEADERS, error_body(text))

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the fake records every call
