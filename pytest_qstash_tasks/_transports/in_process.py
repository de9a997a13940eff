"""``QStashTasksMock``: the fake for the HTTP clients of the test's own process.

httpx through respx, always; ``requests`` through ``responses`` when the ``requests``
extra is installed (without it nothing of ``requests`` is imported or patched). Both
are imported when a fake starts, not before.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Protocol

from pytest_qstash_tasks._core.fake import QStashTasksFake

if TYPE_CHECKING:
    from .respx_router import InterceptAt

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
    """Every in-process interceptor of one fake, started and stopped together.

    A fake that answers in this process (``QStashTasksMock``) is answered by them; a
    server fake uses them to stop requests to the real QStash only.
    """

    def __init__(self, fake: QStashTasksFake, intercept_httpx_at: InterceptAt) -> None:
        self.fake = fake
        self.intercept_httpx_at = check_intercept_at(intercept_httpx_at)
        self._running: list[_Interceptor] = []

    @property
    def running(self) -> bool:
        """Whether the interceptors are in place."""
        return bool(self._running)

    def start(self) -> None:
        """Put the fake in front of httpx (and ``requests``, with the extra)."""
        from .respx_router import RespxInterceptor

        interceptors: list[_Interceptor] = [RespxInterceptor(self.fake, self.intercept_httpx_at)]
        if requests_supported():
            from .responses_route import ResponsesInterceptor

            interceptors.append(ResponsesInterceptor(self.fake))
        self.fake.begin_intercepting()
        try:
            for interceptor in interceptors:
                interceptor.start()
                self._running.append(interceptor)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Take the fake out of line, the last started first."""
        while self._running:
            self._running.pop().stop()
        self.fake.end_intercepting()


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

    answers_in_process = True

    def __init__(self, *, intercept_httpx_at: InterceptAt = "transport", **settings: Any) -> None:
        check_intercept_at(intercept_httpx_at)
        super().__init__(**settings)
        self._in_process = InProcess(self, intercept_httpx_at)

    @property
    def clients_served(self) -> str:  # type: ignore[override]
        """Which clients reach this fake and how (for a failed test's report)."""
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

    def start(self) -> QStashTasksMock:
        """Start intercepting requests to ``base_url``."""
        if self._in_process.running:
            raise RuntimeError("this QStashTasksMock is already started")
        self._in_process.start()
        try:
            self._start_driving_clock()
        except BaseException:
            self._in_process.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop intercepting. Recorded calls and stored tasks stay readable."""
        self._stop_driving_clock()
        self._in_process.stop()

    def _state_word(self) -> str:
        return "started" if self._in_process.running else "stopped"
