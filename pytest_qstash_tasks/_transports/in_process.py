"""``QStashTasksMock``: the fake for the HTTP clients of the test's own process.

httpx through respx, always; ``requests`` through ``responses`` when the ``requests``
extra is installed (without it nothing of ``requests`` is imported or patched). Both
are imported when a fake starts, not before.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pytest_qstash_tasks._core.api.dispatch import serves_path
from pytest_qstash_tasks._core.exchange import Reply, Request
from pytest_qstash_tasks._core.fake import QStashTasksFake

if TYPE_CHECKING:
    from .httpx import InterceptAt

__all__ = ["InProcess", "QStashTasksMock", "check_intercept_at", "requests_supported"]


class _Interceptor(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def requests_supported() -> bool:
    """Whether the ``requests`` extra (``requests`` and ``responses``) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("requests", "responses"))


def check_intercept_at(value: object) -> InterceptAt:
    """``intercept_httpx_at``, or a clear error."""
    if value == "transport" or value == "client":
        return value
    raise ValueError(f"intercept_httpx_at must be 'transport' or 'client', got {value!r}")


class InProcess:
    """The in-process interceptors of one ``QStashTasksMock`` (httpx's, and requests'
    with the extra), started and stopped together, and what they share: which requests
    of the process are the fake's to answer, and which to stop."""

    def __init__(self, fake: QStashTasksFake, intercept_httpx_at: InterceptAt) -> None:
        self.fake = fake
        self.intercept_httpx_at = check_intercept_at(intercept_httpx_at)
        #: Made at the first start and kept: a fake started again (a module's fake, one
        #: restarted between tests) reuses them, requests' mock included.
        self._interceptors: list[_Interceptor] = []
        self._running: list[_Interceptor] = []

    @property
    def running(self) -> bool:
        """Whether the interceptors are in place."""
        return bool(self._running)

    def start(self) -> None:
        """Put the fake in front of httpx (and ``requests``, with the extra)."""
        if not self._interceptors:
            from .httpx import HttpxInterceptor

            self._interceptors.append(HttpxInterceptor(self, self.intercept_httpx_at))
            if requests_supported():
                from .requests import RequestsInterceptor

                self._interceptors.append(RequestsInterceptor(self))
        try:
            for interceptor in self._interceptors:
                interceptor.start()
                self._running.append(interceptor)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Take the fake out of line, the last started first."""
        while self._running:
            self._running.pop().stop()

    @property
    def base_url(self) -> str:
        """The base URL the fake answers on."""
        return self.fake.base_url

    def intercept(
        self, request: Request, scheme: str, host: str, port: int | None, *, own_paths_only: bool
    ) -> Reply | None:
        """The reply to a request of this process, or ``None`` to let it go on (to another
        mock, or the network). See ``takes``; a request to the real QStash gets
        ``QStashTasksRealHostError``."""
        claim = self._claim(scheme, host, port, request.raw_path, own_paths_only)
        if claim is None:
            return None
        if claim == "origin":
            return self.fake._dispatch(request)
        what = f"{request.method} {request.url}"
        error = self.fake._guard.stop(what, request.method, request.url, host)
        return Reply("raise", exception=error)

    def takes(
        self, scheme: str, host: str, port: int | None, raw_path: str, *, own_paths_only: bool
    ) -> bool:
        """Whether ``intercept`` answers a request to this URL (no side effects): one to the
        fake's origin (with ``own_paths_only``, because another mock in line may fake the
        rest of QStash, only the endpoint's own paths) and, while the guard is on, one to
        the real QStash, to stop it."""
        return self._claim(scheme, host, port, raw_path, own_paths_only) is not None

    def _claim(
        self, scheme: str, host: str, port: int | None, raw_path: str, own_paths_only: bool
    ) -> Literal["origin", "stop"] | None:
        guard = self.fake._guard
        claim = guard.claim(scheme, host, port)
        if claim == "origin" and own_paths_only and not serves_path(raw_path, guard.url.path):
            return None
        return claim


class QStashTasksMock(QStashTasksFake):
    """The fake for the HTTP clients of the test's own process: httpx (through respx)
    and, with the ``requests`` extra, ``requests`` (through ``responses``).

    In tests, take the ``qstash_tasks`` fixture, which builds one from the marker,
    ini options and ``QSTASH_URL``. Elsewhere (a module-scoped fixture, a script) use
    it as a context manager, sync or async; with no arguments it fakes
    ``https://qstash.upstash.io``::

        with QStashTasksMock() as fake:
            fake.add("msg_123", count=250)
            ...  # code that calls QStash through httpx or requests

    Requests to its host are answered by the fake and recorded in ``calls``; requests
    to the real QStash's other hosts are stopped (``guard_real_qstash``); the rest go
    where they would have gone without it (another mock, or the network).

    Args:
        intercept_httpx_at: ``"transport"`` (default) intercepts httpx below its own
            transports, like ``respx.mock``; ``"client"`` intercepts at the client,
            above any transport, including one another library patched (the
            fixture picks it when the test also uses pytest-httpx's ``httpx_mock``).
        **settings: The fake's settings (see ``QStashTasksFake``).
    """

    _answers_in_process = True

    def __init__(self, *, intercept_httpx_at: InterceptAt = "transport", **settings: Any) -> None:
        check_intercept_at(intercept_httpx_at)
        super().__init__(**settings)
        self._in_process = InProcess(self, intercept_httpx_at)

    # -- the transport --------------------------------------------------------------

    def _open(self) -> None:
        self._in_process.start()

    def _close(self) -> None:
        self._in_process.stop()

    def _clients_served(self) -> str:
        if requests_supported():
            served = "It answers httpx (through respx) and requests (through responses) "
            served += "in this process."
        else:
            served = (
                "It answers httpx (through respx) in this process; for requests, install "
                'the requests extra (pip install "pytest-qstash-tasks[requests]").'
            )
        return (
            f"{served} Other clients (aiohttp, urllib, another process or language) need "
            "the qstash_tasks_server fixture: point them at its base_url (its env holds "
            "QSTASH_URL and QSTASH_TOKEN)."
        )
