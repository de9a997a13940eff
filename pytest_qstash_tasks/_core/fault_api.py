"""The fake's fault API: plan what the next matching requests get instead."""

from __future__ import annotations

from collections.abc import Mapping

from . import faults
from .args import ANY, AnyCursor
from .endpoint import EndpointResponse
from .faults import Fault, FaultTarget
from .state import FakeState

__all__ = ["FaultAPI"]


class FaultAPI(FakeState):
    """``fail_next``, ``rate_limit_next``, ``raise_next``, ``delay_next`` and ``faults``."""

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
        return self._plan(
            faults.fail(
                status, times=times, error=error, headers=headers, target=target, delay=delay
            )
        )

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
        return self._plan(
            faults.rate_limit(
                times=times,
                daily=bool(daily),
                limit=limit,
                remaining=remaining,
                reset=reset,
                target=target,
                delay=delay,
            )
        )

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
        return self._plan(faults.raise_(exception, times=times, target=target, delay=delay))

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
        return self._plan(faults.delay(seconds, times=times, target=target))

    @property
    def faults(self) -> list[Fault]:
        """Every fault planned, in order, used up or not (a copy)."""
        with self._lock:
            return list(self._faults)

    def _plan(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, answer: EndpointResponse) -> Fault | None:
        """The first pending fault this request meets, counted as fired (under the lock)."""
        page: int | None = None
        for fault in self._faults:
            if fault.fired >= fault.times:
                continue
            if fault.page is not None and page is None:
                page = self._page_number(answer)
            if fault.matches(answer.message_id, answer.cursor, page):
                fault.fired += 1
                return fault
        return None

    def _page_number(self, answer: EndpointResponse) -> int | None:
        """Which page of a walk a served answer is (1 is the first)."""
        if answer.task_count is None or answer.message_id is None:
            return None  # only served pages have a page number
        if answer.scripted_page is not None:
            return answer.scripted_page
        message = self._store.messages[answer.message_id]
        return message.page_number(answer.cursor, self._config.page_size)
