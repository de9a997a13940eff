"""The faults a test plans: what the next matching requests get instead of their
answer (``fail_next``, ``rate_limit_next``, ``raise_next``, ``delay_next``), reached flat
on the fake. A fake's own capability: no SDK resource has it."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from pytest_qstash_tasks._core.args import ANY, AnyCursor
from pytest_qstash_tasks._core.state import faults as _faults
from pytest_qstash_tasks._core.state.faults import Fault, FaultQueue, FaultTarget

__all__ = ["Faults"]


class Faults:
    """Plans faults in the fake's ``FaultQueue``."""

    def __init__(self, queue: FaultQueue, lock: threading.Lock) -> None:
        self._faults = queue
        self._lock = lock

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        error: str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status``.

        The body is QStash-shaped: ``{"error": error}`` (by default the status's
        reason phrase); ``headers`` are added to the answer. Target one message with
        ``message_id``, one request with ``cursor`` (``None``: the first page's, which
        has none) or the ``page``-th page of a walk (1 is the first). Faults planned one
        after another form a sequence; used up, the endpoint serves normally again.
        ``delay`` (seconds) holds the answer back first. Returns the planned fault.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.fail(status, times, error, headers, target, delay))

    def rate_limit_next(
        self,
        *,
        times: int = 1,
        daily: bool = False,
        limit: int | None = None,
        remaining: int = 0,
        reset: int | None = None,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``429``, as QStash does.

        The burst limit (default) sends ``Burst-RateLimit-Limit``, ``-Remaining`` and
        ``-Reset``; ``daily=True`` sends ``RateLimit-Limit``, ``-Remaining`` and
        ``-Reset``, from which the official SDK raises ``RateLimitExceededError`` or
        ``DailyMessageLimitExceededError`` carrying these values. ``reset`` is a unix
        timestamp in seconds: by default the fake clock's next second (burst) or next
        UTC midnight (daily). ``limit`` defaults to 100 (burst, per second) or 1000
        (daily). Targets and ``delay`` as in ``fail_next``.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.rate_limit(times, daily, limit, remaining, reset, target, delay))

    def raise_next(
        self,
        exception: BaseException | type[BaseException],
        *,
        times: int = 1,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Make the next ``times`` matching requests fail in transport, with no answer.

        In-process (``qstash_tasks``) the client raises ``exception``: a transport
        error such as ``httpx.ConnectError``, ``httpx.ConnectTimeout``,
        ``httpx.ReadTimeout`` or ``httpx.RemoteProtocolError``, as a class (built with
        a message and the request) or an instance (copied for each raise). Over a
        socket (``qstash_tasks_server``) the server closes the connection without an
        answer, or, for a timeout, holds the answer until the client gives up. Targets
        and ``delay`` as in ``fail_next``.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.raise_(exception, times, target, delay))

    def delay_next(
        self,
        seconds: float,
        *,
        times: int = 1,
        message_id: str | None = None,
        cursor: int | AnyCursor | None = ANY,
        page: int | None = None,
    ) -> Fault:
        """Hold back the normal answer to the next ``times`` matching requests.

        Async clients await the delay (the event loop keeps running); sync clients
        sleep. The fake's clock does not move. Targets as in ``fail_next``.
        """
        target = FaultTarget.checked(message_id, cursor, page)
        return self._plan(_faults.delay(seconds, times, target))

    def planned(self) -> list[Fault]:
        """Every fault planned, in order, used up or not (a copy)."""
        with self._lock:
            return self._faults.planned()

    def _plan(self, fault: Fault) -> Fault:
        with self._lock:
            return self._faults.plan(fault)
