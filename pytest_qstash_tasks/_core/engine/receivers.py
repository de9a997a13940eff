"""Receivers: where a delivery of a published message goes, and what it answered.

``destination(url).deliver_to(target)`` names the receiver: a Python callable (it gets a
``DeliveryRequest``, returns a status or ``(status, body)``), a WSGI app (Flask, Django)
or an ASGI app (FastAPI, Starlette, Django's), each called in the test's process, or
real HTTP (``"http"``: to the message's own URL; ``"http://127.0.0.1:8000"``: to that
origin, with the message URL's path and query). Only the standard library is used: WSGI
and ASGI are calling conventions, and real HTTP goes through ``http.client``.

Every delivery is a ``DeliveryRequest`` in and an ``Answer`` out; what happened is kept
as a ``DeliveryAttempt`` (``fake.deliveries``).
"""

from __future__ import annotations

import abc
import atexit
import inspect
import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

__all__ = [
    "Answer",
    "DeliveryAttempt",
    "DeliveryRequest",
    "Receiver",
    "receiver_for",
]


@dataclass(frozen=True)
class DeliveryRequest:
    """What a receiver gets: one attempt to deliver a published message, as QStash
    sends it (``headers`` with QStash's names: ``Upstash-Signature``,
    ``Upstash-Message-Id``, ``Upstash-Retried``, ...; ``body`` exactly as published)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The header ``name`` (any case), or ``None``."""
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    @property
    def text(self) -> str:
        """The body as UTF-8 text (what ``Receiver.verify(body=...)`` takes)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: a status and body, or no answer (``exception``: a
    connection failure, a timeout, or a bug in the test's own receiver)."""

    status: int | None
    body: bytes = b""
    exception: BaseException | None = None
    #: The traceback of an exception raised inside the test's own receiver.
    receiver_traceback: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True)
class DeliveryAttempt:
    """One attempt to deliver a published message to a receiver, and what came of it.

    The request: ``message_id``, ``url``, ``method``, ``headers``, ``body``, ``retried``
    (as in ``Upstash-Retried``) and ``at`` (the fake clock's time, unix ms). The answer:
    ``status`` (``None`` when there was none), ``answer_body``, ``duration_ms`` (real
    time taken), ``error`` (the task's error for a failed attempt, ``None`` when
    delivered) and ``exception`` (a connection failure, a timeout, or what the test's
    own receiver raised). ``receiver`` names where it went.
    """

    message_id: str
    url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    retried: int
    at: int
    status: int | None
    answer_body: bytes
    duration_ms: float
    error: str | None
    receiver: str
    exception: BaseException | None = field(default=None, compare=False)

    @property
    def delivered(self) -> bool:
        """Whether the attempt delivered the message (a 2xx)."""
        return self.error is None

    def header(self, name: str) -> str | None:
        """The delivery's header ``name`` (any case), or ``None``."""
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def json(self) -> Any:
        """The delivered body parsed as JSON."""
        return json.loads(self.body)

    def describe(self) -> str:
        """One line: method, URL, retried, what the receiver answered."""
        got = f"-> {self.status}" if self.status is not None else f"-> {self.error}"
        return f"{self.method} {self.url} (message {self.message_id}, retried {self.retried}) {got}"


class Receiver(abc.ABC):
    """Carries a ``DeliveryRequest`` to its target and brings the ``Answer`` back."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What the target is, for messages."""

    @abc.abstractmethod
    def _deliver(self, request: DeliveryRequest, timeout: float) -> tuple[int, bytes]:
        """Status and body; raises on no answer."""

    #: Whether an exception from ``_deliver`` is a bug in the test's own code (a
    #: handler or app), rather than a connection failure.
    _in_process = True

    def deliver(self, request: DeliveryRequest, timeout: float) -> Answer:
        """Deliver ``request``; never raises (but for KeyboardInterrupt and the like)."""
        started = time.perf_counter()
        failure: Exception | None = None
        try:
            status, body = self._deliver(request, timeout)
        except Exception as error:
            failure = error
        took = time.perf_counter() - started
        ms = took * 1000
        if failure is None:
            if took <= timeout:
                return Answer(status, body, duration_ms=ms)
            late = TimeoutError(f"the receiver took {took:.3g} s, past {timeout:g} s")
            return Answer(None, exception=late, duration_ms=ms)
        text = _user_traceback(failure) if self._in_process else None
        if isinstance(failure, TimeoutError):
            text = None  # the fake's own timeout, not the receiver's bug
        elif isinstance(failure, NotReachable):
            text = str(failure)  # the test's script sends it where it may not go
        return Answer(None, exception=failure, receiver_traceback=text, duration_ms=ms)


class _HandlerReceiver(Receiver):
    def __init__(self, handler: Callable[..., Any], is_async: bool) -> None:
        self.handler = handler
        self.is_async = is_async

    def describe(self) -> str:
        return f"the handler {_name(self.handler)}"

    def _deliver(self, request: DeliveryRequest, timeout: float) -> tuple[int, bytes]:
        if self.is_async:
            result = run_coroutine(self.handler(request), timeout)
        else:
            result = self.handler(request)
        return _status_and_body(result, self.describe())


def _on_the_wire(text: str) -> str:
    """A path or query as a client sends it: what is not ASCII percent-encoded (UTF-8),
    escapes already there kept."""
    return quote(text, safe="/%:@!$&'()*+,;=?~")


def _origin(url: str) -> tuple[SplitResult, str, int]:
    """A message URL's parts, host and port (the scheme's own when none is given)."""
    parts = urlsplit(url)
    return parts, str(parts.hostname), parts.port or (443 if parts.scheme == "https" else 80)


def _host_header(parts: SplitResult) -> str:
    """The ``Host`` a client sends for a URL: its host and port as written, no userinfo,
    a name that is not ASCII (or percent-encoded, as the SDK sends it) in IDNA (``xn--``)."""
    host = unquote(parts.netloc.rpartition("@")[2])
    if host.isascii():
        return host
    try:  # a name, not an IPv6 literal; the port is an ASCII label, which IDNA keeps
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # a name IDNA refuses: sent as UTF-8, as some clients do
        return host.encode().decode("latin-1")


class _WsgiReceiver(Receiver):
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def describe(self) -> str:
        return f"the WSGI app {_name(self.app)}"

    def _deliver(self, request: DeliveryRequest, timeout: float) -> tuple[int, bytes]:
        # A published message's URL is http(s) with a host: publishing refuses others.
        parts, host, port = _origin(request.url)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            # PEP 3333: the decoded path's UTF-8 bytes, one native-string char per byte.
            "PATH_INFO": unquote(parts.path or "/").encode().decode("latin-1"),
            "QUERY_STRING": parts.query,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme,
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(request.body)),
            # A server passes the request's Host on; apps read it before SERVER_NAME.
            "HTTP_HOST": _host_header(parts),
        }
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            else:
                environ[f"HTTP_{key}"] = value
        started: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
            started[:] = [status]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not started:
            raise TypeError(f"{self.describe()} returned without calling start_response")
        return int(started[0].split()[0]), b"".join(chunks)


class _AsgiReceiver(Receiver):
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def describe(self) -> str:
        return f"the ASGI app {_name(self.app)}"

    def _deliver(self, request: DeliveryRequest, timeout: float) -> tuple[int, bytes]:
        status, body = run_coroutine(self._call(request), timeout)
        return int(status), bytes(body)

    async def _call(self, request: DeliveryRequest) -> tuple[int, bytes]:
        import asyncio

        parts, host, port = _origin(request.url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": parts.scheme,
            "path": unquote(parts.path or "/"),
            "raw_path": _on_the_wire(parts.path or "/").encode(),
            "query_string": _on_the_wire(parts.query).encode(),
            "root_path": "",
            # A server passes on the headers a client sends, framing ones included.
            "headers": [
                (b"host", _host_header(parts).encode("latin-1")),
                (b"content-length", str(len(request.body)).encode()),
                *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers),
            ],
            "server": (host, port),
            "client": ("127.0.0.1", 0),
            "state": {},
        }
        sent_body = False
        answered = asyncio.Event()
        status: list[int] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[:] = [int(message["status"])]
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    answered.set()

        await self.app(scope, receive, send)
        if not status:
            raise TypeError(f"{self.describe()} returned without sending http.response.start")
        return status[0], b"".join(chunks)


class _HttpReceiver(Receiver):
    _in_process = False

    def __init__(self, origin: str | None, allow_remote: bool) -> None:
        self.origin = origin
        self.allow_remote = allow_remote

    def describe(self) -> str:
        return "real HTTP to " + (self.origin or "the message's URL")

    def target(self, url: str) -> SplitResult:
        """Where a delivery to ``url`` goes: the origin's scheme, host and port, and its
        path before the message's path; the message's query."""
        parts = urlsplit(url)
        if self.origin is None:
            return parts
        origin = urlsplit(self.origin)
        return parts._replace(
            scheme=origin.scheme,
            netloc=origin.netloc,
            path=origin.path.rstrip("/") + (parts.path or "/"),
        )

    def _deliver(self, request: DeliveryRequest, timeout: float) -> tuple[int, bytes]:
        import http.client

        target = self.target(request.url)
        # A URL checked when it was published, or when the receiver was made: it has a host.
        host = str(target.hostname)
        check_reachable(host, self.allow_remote)
        kind = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(host, target.port, timeout=timeout)
        try:
            path = _on_the_wire((target.path or "/") + (f"?{target.query}" if target.query else ""))
            connection.request(
                request.method, path, body=request.body, headers=dict(request.headers)
            )
            response = connection.getresponse()
            return response.status, response.read()
        except TimeoutError:  # the socket's own words are "timed out"
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        finally:
            connection.close()


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NotReachable(ValueError):
    """A real HTTP delivery to a host that is not loopback, without the opt-in."""


def _user_traceback(error: BaseException) -> str:
    """The traceback of ``error`` from the first frame outside this package: the test's
    own receiver, and what it called."""
    import traceback

    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def check_reachable(host: str, allow_remote: bool) -> None:
    """Refuse a host that is not loopback, unless the test opted in (no name lookup:
    ``localhost`` and loopback addresses only)."""
    if not allow_remote and not _is_loopback(host):
        raise NotReachable(
            f"real HTTP deliveries go to loopback addresses only (localhost, 127.0.0.1, "
            f"::1), not {host!r}: deliver_to(..., allow_remote=True) opts in"
        )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # urlsplit took off any [ ]
    except ValueError:  # a name: no lookup
        return False


def receiver_for(target: object, *, allow_remote: bool) -> Receiver:
    """The receiver for ``target``, or a clear error saying what a target may be."""
    if isinstance(target, str):
        if target == "http":
            return _HttpReceiver(None, allow_remote)
        parts = urlsplit(target)
        if parts.scheme in ("http", "https") and parts.hostname:
            check_reachable(parts.hostname, allow_remote)
            return _HttpReceiver(target, allow_remote)
    elif callable(target):
        call = target if inspect.isroutine(target) else target.__call__
        try:
            parameters = [
                p
                for p in inspect.signature(call).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            ]
        except (TypeError, ValueError):
            parameters = []
        is_async = inspect.iscoroutinefunction(call)
        if len(parameters) == 3 and is_async:
            return _AsgiReceiver(target)
        if len(parameters) == 2 and not is_async:
            return _WsgiReceiver(target)
        if len(parameters) == 1:
            return _HandlerReceiver(target, is_async)
    raise TypeError(
        "deliver_to() takes a handler (a callable of one argument, the DeliveryRequest, "
        "returning a status or (status, body)), a WSGI app (environ, start_response), an "
        "ASGI app (async: scope, receive, send), 'http' (real HTTP to the message's URL) "
        f"or a loopback base URL such as 'http://127.0.0.1:8000'; got {target!r}"
    )


def _status_and_body(result: object, who: str) -> tuple[int, bytes]:
    status, body = (*result, b"")[:2] if isinstance(result, tuple) else (result, b"")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise TypeError(
            f"{who} returned {result!r}: return an HTTP status (100-599) or (status, body)"
        )
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        raise TypeError(f"{who} returned a body of type {type(body).__name__}: use str or bytes")
    return status, body


def _name(target: object) -> str:
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None)  # None, or no such attribute, for some
    return f"{module}.{name}" if module else name


# -- running a coroutine to its end, from any thread ----------------------------------

_local = threading.local()
_background: list[Any] = []  # the background thread's event loop, once made
_background_lock = threading.Lock()
_left_by_fork: list[Any] = []  # a parent's loops in a forked child: kept, never run


# Not mutated (docs/mutation.md): it runs in a forked child at the fork, before mutmut
# could switch a mutant on, and where its trace cannot see it.
def _forget_the_parents_loops() -> None:  # pragma: no mutate block
    # A forked child (a fork server's, multiprocessing's "fork") has its parent's loops
    # but not the thread that ran the background one, so a coroutine handed to it would
    # never run; and their selectors are the parent's. The child makes its own. The old
    # ones are kept from the collector, which would warn of a loop it cannot close.
    global _background_lock
    _background_lock = threading.Lock()
    _left_by_fork.extend([*_background, getattr(_local, "loop", None)])
    _background.clear()
    _local.loop = None


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_forget_the_parents_loops)


def run_coroutine(coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
    """Run ``coroutine`` to its end and return its result, waiting at most ``timeout``
    seconds (``TimeoutError``). In a thread with no running event loop it runs there
    (the main thread keeps its loop); in one whose loop is running (an async test moved
    the clock), on a loop in a background thread, so the running loop is not re-entered."""
    import asyncio  # on first use: the standalone command starts without it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # The main thread keeps its loop (closed at exit); any other thread (a server's,
        # under clock="wall") makes one and closes it, since the thread may end any time
        # and a loop left to the collector warns.
        main = threading.current_thread() is threading.main_thread()
        loop = _main_loop() if main else asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        finally:
            if not main:
                loop.close()
    future = asyncio.run_coroutine_threadsafe(
        asyncio.wait_for(coroutine, timeout), _background_loop()
    )
    try:
        return future.result(timeout + 1)
    except (asyncio.TimeoutError, TimeoutError):
        future.cancel()
        raise TimeoutError(f"no answer within {timeout:g} s") from None


def _main_loop() -> Any:
    import asyncio

    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
        atexit.register(loop.close)
    return loop


def _background_loop() -> Any:
    import asyncio

    with _background_lock:
        if not _background:
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="qstash-tasks-deliveries", daemon=True
            ).start()
            _background.append(loop)
        return _background[0]
