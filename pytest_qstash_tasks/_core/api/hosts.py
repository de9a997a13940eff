"""Whose host is whose: the base URL a fake answers on, the real QStash's hosts, and the
guard that stops this process's requests to them while a fake is active.

QStash answers on ``qstash.upstash.io`` (the SDKs' default, in the EU region) and on
one host per region, ``qstash-<region>.upstash.io``. A fake answers its own base URL;
a request to one of those other hosts is a client the test forgot to point at the fake.

The guard works at two levels. The in-process transports (httpx's, requests') see a
request with its method and URL and stop it there. Below them, while any guarding fake
is active, ``socket.getaddrinfo`` refuses to resolve a real QStash host: every other
client of the process (aiohttp, urllib, a client beside a server fake) meets that, for
the cost of one string check per name resolved.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pytest_qstash_tasks._core.errors import QStashTasksRealHostError
from pytest_qstash_tasks._core.report import real_host_message, switch_text
from pytest_qstash_tasks._core.state.calls import CallLog, RecordedCall

__all__ = [
    "DEFAULT_BASE_URL",
    "GuardedFake",
    "DEFAULT_PORTS",
    "BaseURL",
    "RealHostGuard",
    "is_real_qstash_host",
]

DEFAULT_BASE_URL = "https://qstash.upstash.io"
"""The base URL the official SDK talks to when ``QSTASH_URL`` is not set, and the one a
fake answers on by default."""
DEFAULT_PORTS = {"http": 80, "https": 443}
_DOMAIN = ".upstash.io"


@dataclass(frozen=True)
class BaseURL:
    """Scheme, host (lowercase, IPv6 without brackets), port and path prefix."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, base_url: object) -> BaseURL:
        """Parse ``base_url``, or raise a clear error."""
        if not isinstance(base_url, str):
            raise TypeError(f"base_url must be a str, got {base_url!r}")
        return _parse(base_url)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def owns(self, scheme: str, host: str, port: int | None) -> bool:
        """Whether a request to ``scheme://host:port`` is for this base URL."""
        return (
            scheme == self.scheme
            and host.lower() == self.host
            and (port or DEFAULT_PORTS.get(scheme)) == self.port
        )


@functools.lru_cache(maxsize=64)  # the same URL for every test of a run
def _parse(base_url: str) -> BaseURL:
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as error:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or base_url.rstrip().endswith(("?", "#")):
        raise ValueError(f"base_url cannot have a query or fragment: {base_url!r}")
    if parts.username is not None or any(c.isspace() for c in base_url):
        raise ValueError(f"base_url {base_url!r} is not a valid URL")
    return BaseURL(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], parts.path.rstrip("/"))


def is_real_qstash_host(host: str) -> bool:
    """Whether ``host`` is one of the real QStash's hosts (any region)."""
    name = host.lower().rstrip(".")
    if not name.endswith(_DOMAIN):
        return False
    label = name[: -len(_DOMAIN)]
    return label == "qstash" or (label.startswith("qstash-") and "." not in label)


#: The guards of the fakes active in this process now, and the lock on that list: a
#: fake's guard leaves alone the hosts another of them answers (two regions, say).
_ACTIVE: list[RealHostGuard] = []
_ACTIVE_LOCK = threading.Lock()
#: ``socket.getaddrinfo`` as it was when the guard took its place (another library's
#: stand-in, if one was there first), put back when the last guard leaves.
_REAL_GETADDRINFO = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode("idna") if isinstance(host, bytes) else host
    if isinstance(name, str) and is_real_qstash_host(name):
        guard = _guard_for(name)
        if guard is not None:
            shown = f"{name}:{port}" if port is not None else name
            raise guard.stop(f"a connection to {shown}", "CONNECT", shown, name)
    return _REAL_GETADDRINFO(host, port, *args, **kwargs)


def _guard_for(name: str) -> RealHostGuard | None:
    """Which active guard stops a connection to the real QStash host ``name``: the one
    of a fake that answers that very host in-process (the client is one it cannot see),
    else the one started last (the running test's, rather than a module's or a
    session's); ``None`` when no guard is on."""
    host = name.lower().rstrip(".")
    with _ACTIVE_LOCK:
        guards = [guard for guard in reversed(_ACTIVE) if guard.enabled]
    for guard in guards:
        if guard.answers_in_process and guard.url.host == host:
            return guard
    return guards[0] if guards else None


@dataclass(frozen=True)
class GuardedFake:
    """What a guard asks of the fake it guards for, each asked when needed (the fake's
    settings may change while it runs): how messages name it, whether it stops requests
    to the real QStash (``guard_real_qstash``), who made it (for the switch its advice
    names: ``report.switch_text``), and the sentence that says which clients it serves."""

    name: Callable[[], str]
    enabled: Callable[[], bool]
    owner: Callable[[], str | None]
    clients_served: Callable[[], str]


class RealHostGuard:
    """One fake's place among the fakes active in this process: which requests of the
    process are its to answer (``answers_in_process``: the in-process transports; a
    server fake is reached over its socket) and, while the fake's ``guard_real_qstash``
    is on, the real QStash's hosts it stops, recording each stop in the fake's call log
    (under the fake's lock)."""

    def __init__(
        self,
        url: BaseURL,
        fake: GuardedFake,
        *,
        answers_in_process: bool,
        calls: CallLog,
        lock: threading.Lock,
    ) -> None:
        self.url = url
        self.fake = fake
        self.answers_in_process = answers_in_process
        self._calls = calls
        self._lock = lock

    @property
    def enabled(self) -> bool:
        """Whether the fake stops requests to the real QStash (``guard_real_qstash``)."""
        return self.fake.enabled()

    def enter(self) -> None:
        """Join the active fakes; refuses a second fake answering the same origin in
        this process."""
        with _ACTIVE_LOCK:
            mine = (self.url.scheme, self.url.host, self.url.port)
            for other in _ACTIVE:
                if self.answers_in_process and other.answers_in_process and other.url.owns(*mine):
                    raise RuntimeError(
                        f"{self.fake.name()} cannot start: {other.fake.name()} already answers "
                        f"{other.url} in this process, and only one fake can. Stop it first, "
                        "or give one of them another base_url."
                    )
            if not _ACTIVE:
                global _REAL_GETADDRINFO
                _REAL_GETADDRINFO = socket.getaddrinfo
                socket.getaddrinfo = _guarded_getaddrinfo
            _ACTIVE.append(self)

    def leave(self) -> None:
        """Leave the active fakes (the last one out puts ``getaddrinfo`` back)."""
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            if not _ACTIVE and socket.getaddrinfo is _guarded_getaddrinfo:
                socket.getaddrinfo = _REAL_GETADDRINFO

    def claim(self, scheme: str, host: str, port: int | None) -> Literal["origin", "stop"] | None:
        """``origin``: a request to the fake's own origin, for it to answer in this
        process; ``stop``: a request to the real QStash, to stop; ``None``: neither.
        Asked by the in-process transports only, of their own fake's guard."""
        if self.url.owns(scheme, host, port):
            return "origin"
        if self.enabled and is_real_qstash_host(host):
            with _ACTIVE_LOCK:
                others = list(_ACTIVE)
            if any(g.answers_in_process and g.url.owns(scheme, host, port) for g in others):
                return None  # another fake's to answer
            return "stop"
        return None

    def stop(self, what: str, method: str, url: str, host: str) -> QStashTasksRealHostError:
        """Record a request (or connection) to the real QStash; the error it gets."""
        switch_off = switch_text("guard_real_qstash", "False", self.fake.owner())
        # A connection to the very host the fake answers in-process comes from a client
        # the fake cannot see: saying "point it at the fake" would contradict itself.
        unseen = self.answers_in_process and host.lower().rstrip(".") == self.url.host
        clients = self.fake.clients_served() if unseen else None
        text = real_host_message(what, host, str(self.url), switch_off, unseen_by=clients)
        error = QStashTasksRealHostError(text)
        # Reported by method and URL (the teardown's list of stops): nothing more is kept.
        call = RecordedCall(method=method, url=url, exception=error, action="raise")
        with self._lock:
            self._calls.record_real_host(call)
        return error
