"""The loopback server's connections: which are live, which wait (idle, or still sending
a request head) and may be closed to make room, which were refused (their unread input
drained before they close), and whom the loop guard counts each one's requests for.

It shares the server's lock: a connection's thread and the accept loop read and change
it from their own threads.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Hashable
from typing import Protocol

__all__ = ["Connections", "peer_closed", "shutdown"]

#: More live connections than this are concurrent clients, not one looping client.
_MAX_PEEKS = 8
#: How long a refused connection's unread input is drained before it is closed: closed
#: with input unread, the socket would reset, and the client might see the reset
#: instead of the answer (RFC 9112, 9.6).
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 26
#: How often making room looks again while every connection is busy (seconds).
_ROOM_POLL = 0.05


class _OneConnectionPerRequest:
    """The loop guard's one client for connections that each carry a single request; a
    new one once the last one's connections turned out to be clients of their own."""


class Carrier(Protocol):
    """What the bookkeeping asks of a connection's handler: its socket, the client's
    address, whom its requests count for (decided at its first), how many it carried."""

    @property
    def connection(self) -> socket.socket: ...

    @property
    def client_address(self) -> Hashable: ...

    client: Hashable | None
    carried: int


class Connections:
    """The live connections and what the server knows of each (under its lock)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.room = threading.Condition(lock)
        self._live: set[socket.socket] = set()
        #: Connections waiting for their next request or still sending their head, and
        #: since when (monotonic): the one waiting the longest is closed to make room.
        self._waiting: dict[socket.socket, float] = {}
        #: Connections whose one request so far counted for the shared client and was
        #: answered: the client may hold them open while it opens its next. (Weak: a
        #: closed connection leaves it.)
        self._answered_once: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._refused: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        #: Connections whose request holds its fake (counted in flight by the server).
        self._serving: set[socket.socket] = set()
        self._shared = _OneConnectionPerRequest()
        #: The connection of the shared client's last request.
        self._shared_last: socket.socket | None = None

    def snapshot(self) -> list[socket.socket]:
        """The live connections (to close them on stop, to settle them on detach)."""
        with self._lock:
            return list(self._live)

    def serving(self, connection: socket.socket, serving: bool) -> None:
        """Whether a request of ``connection`` holds its fake (under the server's lock,
        as the caller holds it)."""
        if serving:
            self._serving.add(connection)
        else:
            self._serving.discard(connection)

    def settled(self, among: list[socket.socket]) -> bool:
        """Whether none of ``among`` may hold a request that has not reached its fake yet:
        each is closed, or serving a request that has, or waiting for its next request
        with no byte of one arrived (under the server's lock, as the caller holds it). A
        connection just accepted, or whose request is still being read, is not."""
        return all(
            conn not in self._live
            or conn in self._serving
            or (conn in self._waiting and not _has_input(conn))
            for conn in among
        )

    def opened(self, connection: socket.socket) -> None:
        """A new connection (under the server's lock, as the caller holds it)."""
        self._live.add(connection)

    def closed(self, connection: socket.socket) -> None:
        """A connection's thread ends: it holds no room any more."""
        with self._lock:
            self._live.discard(connection)
            self._waiting.pop(connection, None)
            self.room.notify_all()

    def waiting(self, connection: socket.socket, idle: bool) -> None:
        """Called by a connection's handler around its wait for (the head of) its next
        request."""
        with self._lock:
            if idle:
                self._waiting[connection] = time.monotonic()
            else:
                self._waiting.pop(connection, None)

    def make_room(self, most: int, stopping: threading.Event) -> bool:
        """Wait until fewer than ``most`` connections are live, closing the one waiting
        the longest meanwhile; ``False`` when the server stops first."""
        with self._lock:
            while len(self._live) >= most:
                if stopping.is_set():
                    return False
                if self._waiting:
                    oldest = min(self._waiting, key=self._waiting.__getitem__)
                    del self._waiting[oldest]
                    shutdown(oldest)  # its thread sees the end and leaves
                self.room.wait(_ROOM_POLL)
            return not stopping.is_set()

    def refused(self, connection: socket.socket) -> None:
        """A request on ``connection`` was refused: drain it before it closes."""
        with self._lock:
            self._refused.add(connection)

    def close(self, connection: socket.socket) -> None:
        """Before socketserver closes ``connection``: a refused one lingers first."""
        with self._lock:
            refused = connection in self._refused
        if refused:
            _linger(connection)

    def client_for(self, handler: Carrier) -> Hashable:
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
                for conn in self._live
                if conn is not connection and conn not in self._answered_once
            ]
        # The previous connection of a looping client is closed by the client, though
        # its thread here may not have seen it yet: ask the kernel.
        alone = len(others) <= _MAX_PEEKS and all(map(peer_closed, others))
        with self._lock:
            if alone:
                handler.client = self._shared
                self._shared_last = connection
            else:
                handler.client = handler.client_address
        return handler.client

    def answering(self, handler: Carrier) -> None:
        """Called just before an answer is written: a connection whose one request
        counted for the shared client no longer counts as another client at work
        (before the client can read the answer and open its next connection)."""
        if handler.carried == 1 and isinstance(handler.client, _OneConnectionPerRequest):
            with self._lock:
                self._answered_once.add(handler.connection)


def peer_closed(connection: socket.socket) -> bool:
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


def _has_input(connection: socket.socket) -> bool:
    """Whether bytes the client sent wait unread in the kernel (peeked as
    ``peer_closed`` does)."""
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as peek:
            peek.setblocking(False)
            return peek.recv(1, socket.MSG_PEEK) != b""
    except (OSError, ValueError):  # nothing yet (BlockingIOError), reset, or closed
        return False


def shutdown(connection: socket.socket) -> None:
    """Shut both ways: the connection's thread sees the end and leaves."""
    with contextlib.suppress(OSError):  # already closed by the client
        connection.shutdown(socket.SHUT_RDWR)


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
