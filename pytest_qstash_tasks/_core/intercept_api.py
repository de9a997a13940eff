"""The fake's side of the in-process transports: which requests of this process it
takes, and the guard that stops requests to the real QStash.

The guard works at two levels. The interceptors (respx, responses) see a request with
its method and URL and stop it there. Below them, while any guarding fake is active,
``socket.getaddrinfo`` refuses to resolve a real QStash host: every other client of the
process (aiohttp, urllib, a client behind a server fake) meets that, for the cost of one
string check per name resolved.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Literal

from .calls import RecordedCall
from .endpoint import serves_path
from .errors import QStashTasksRealHostError
from .exchange import Reply, Request
from .hosts import is_real_qstash_host, real_host_message
from .report import switch_text
from .state import FakeState

__all__ = ["InterceptAPI"]

#: The fakes intercepting this process's requests now, and the lock on that list: a
#: fake's guard leaves alone the hosts another of them answers (two regions, say).
_INTERCEPTING: list[InterceptAPI] = []
_INTERCEPTING_LOCK = threading.Lock()
#: ``socket.getaddrinfo`` as it was before the guard took its place.
_REAL_GETADDRINFO = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode("idna") if isinstance(host, bytes) else host
    if isinstance(name, str) and is_real_qstash_host(name):
        with _INTERCEPTING_LOCK:
            guards = [fake for fake in _INTERCEPTING if fake.guard_real_qstash]
        if guards:
            shown = f"{name}:{port}" if port is not None else name
            raise guards[0]._stop(f"a connection to {shown}", "CONNECT", shown, name, None)
    return _REAL_GETADDRINFO(host, port, *args, **kwargs)


class InterceptAPI(FakeState):
    """``serves_origin``, ``takes`` and ``intercept``."""

    #: Whether ``intercept`` answers requests to the fake's origin in this process
    #: (the in-process transports) or lets them go to a real socket (the server).
    answers_in_process = False
    guard_real_qstash: bool

    @property
    def base_url(self) -> str:
        """The base URL the fake answers on, e.g. ``https://qstash.upstash.io``."""
        return str(self._url)

    def dispatch(self, request: Request, *, decline_unknown_paths: bool = False) -> Reply | None:
        raise NotImplementedError  # the fake's

    def begin_intercepting(self) -> None:
        """Called by an in-process transport when it starts showing the fake requests;
        refuses a second fake answering the same origin in this process."""
        with _INTERCEPTING_LOCK:
            mine = (self._url.scheme, self._url.host, self._url.port)
            for other in _INTERCEPTING:
                if self.answers_in_process and other.answers_in_process and other._url.owns(*mine):
                    raise RuntimeError(
                        f"{self!r} cannot start: {other!r} already answers {other.base_url} "
                        "in this process, and only one fake can. Stop it first, or give one "
                        "of them another base_url."
                    )
            if not _INTERCEPTING:
                socket.getaddrinfo = _guarded_getaddrinfo
            _INTERCEPTING.append(self)

    def end_intercepting(self) -> None:
        """Called by an in-process transport when it stops."""
        with _INTERCEPTING_LOCK:
            if self in _INTERCEPTING:
                _INTERCEPTING.remove(self)
            if not _INTERCEPTING and socket.getaddrinfo is _guarded_getaddrinfo:
                socket.getaddrinfo = _REAL_GETADDRINFO

    def _owner(self) -> str | None:
        """How the fake was configured, for messages: ``None`` by a fixture (marker and
        ini options), else its class (constructor arguments)."""
        return None if self.made_by_fixture else type(self).__name__

    #: Set by the fixtures on the fakes they build.
    made_by_fixture = False

    def serves_origin(self, scheme: str, host: str, port: int | None) -> bool:
        """Whether requests to ``scheme://host:port`` are for this fake."""
        return self._url.owns(scheme, host, port)

    def takes(
        self, scheme: str, host: str, port: int | None, raw_path: str, *, others: bool
    ) -> bool:
        """Whether ``intercept`` answers a request to this URL (it has no side effects).

        The fake's origin, when the fake answers in this process (``answers_in_process``;
        a server fake is reached over its socket); with ``others`` (another mock in line
        that may fake the rest of QStash) only the endpoint's own paths. And, with
        ``guard_real_qstash``, every host of the real QStash, to stop the request.
        """
        return self._claim(scheme, host, port, raw_path, others) is not None

    def intercept(
        self, request: Request, scheme: str, host: str, port: int | None, *, others: bool
    ) -> Reply | None:
        """For a transport that sees every request of this process: the reply, or
        ``None`` to let the request go on (to another mock, or the network). See
        ``takes``; a request to the real QStash raises ``QStashTasksRealHostError``.
        """
        claim = self._claim(scheme, host, port, request.raw_path, others)
        if claim is None:
            return None
        if claim == "answer":
            return self.dispatch(request)
        what = f"{request.method} {request.url}"
        error = self._stop(what, request.method, request.url, host, request)
        return Reply("raise", exception=error)

    def _stop(
        self, what: str, method: str, url: str, host: str, request: Request | None
    ) -> QStashTasksRealHostError:
        """Record a request (or connection) to the real QStash; the error it gets."""
        error = QStashTasksRealHostError(
            real_host_message(
                what, host, self.base_url, switch_text("guard_real_qstash", "False", self._owner())
            )
        )
        call = RecordedCall(
            method=method,
            url=url,
            headers=() if request is None else request.headers,
            body=b"" if request is None else request.body,
            exception=error,
            delivery="raise",
            native_request=None if request is None else request.native,
        )
        with self._lock:
            self._real_host_calls.append(call)
        return error

    def _claim(
        self, scheme: str, host: str, port: int | None, raw_path: str, others: bool
    ) -> Literal["answer", "stop"] | None:
        if self.serves_origin(scheme, host, port):
            if self.answers_in_process and (not others or serves_path(raw_path, self._config)):
                return "answer"
            return None
        if self.guard_real_qstash and is_real_qstash_host(host):
            with _INTERCEPTING_LOCK:
                fakes = list(_INTERCEPTING)
            if any(
                fake.answers_in_process and fake.serves_origin(scheme, host, port) for fake in fakes
            ):
                return None  # another fake's to answer
            return "stop"
        return None
