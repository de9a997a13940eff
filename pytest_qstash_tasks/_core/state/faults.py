"""Planned faults: what the next matching requests get instead of a normal answer.

Faults wait in a queue in the order they were planned. A request takes the first one
that matches it and is not used up; when every fault is used up, requests are served
normally again. Taking a fault happens under the fake's lock, so under concurrent
requests each fault fires exactly ``times`` times.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pytest_qstash_tasks._core.args import (
    ANY,
    AnyCursor,
    as_seconds,
    check_cursor_filter,
    check_headers,
    check_int,
    check_message_id,
    check_optional_str,
    check_seconds,
)
from pytest_qstash_tasks._core.exchange import JSON_HEADERS, error_body, reason_phrase

__all__ = ["Fault", "FaultKind", "FaultQueue", "FaultTarget", "check_exception", "reset_at"]

FaultKind = Literal["fail", "rate_limit", "raise", "delay"]
RateLimitWindow = Literal["burst", "daily"]


@dataclass(frozen=True)
class FaultTarget:
    """Which requests a fault meets: all of ``message_id``, ``cursor`` and ``page``
    that are set (``page`` 1 is the first page of a walk)."""

    message_id: str | None = None
    cursor: int | AnyCursor | None = ANY
    page: int | None = None

    @classmethod
    def checked(cls, message_id: object, cursor: object, page: object) -> FaultTarget:
        """A target from a caller's arguments, or a clear error."""
        if message_id is not None:
            check_message_id(message_id)
        if page is not None:
            check_int("page", page, 1)
        return cls(message_id, check_cursor_filter(cursor), page)  # type: ignore[arg-type]

    def arguments(self) -> list[str]:
        """How the caller wrote it, for the fault's label."""
        args = []
        if self.message_id is not None:
            args.append(f"message_id={self.message_id!r}")
        if self.cursor is not ANY:
            args.append(f"cursor={self.cursor!r}")
        if self.page is not None:
            args.append(f"page={self.page!r}")
        return args


@dataclass(eq=False)
class Fault:
    """A planned fault, as returned by ``fail_next`` and its siblings.

    ``fired`` counts the requests it answered so far; it is used up when
    ``fired == times``.
    """

    kind: FaultKind
    times: int
    target: FaultTarget = field(default_factory=FaultTarget)
    delay: float = 0.0
    status: int | None = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    exception: BaseException | type[BaseException] | None = None
    #: For a rate limit without a planned reset: which window the clock's reset ends.
    _reset_window: RateLimitWindow | None = field(default=None, repr=False)
    #: How the test planned it, e.g. ``fail_next(503, times=2)``.
    label: str = ""
    fired: int = field(default=0)

    @property
    def remaining(self) -> int:
        """How many more requests it will answer."""
        return self.times - self.fired

    @property
    def message_id(self) -> str | None:
        """The message it targets, if any."""
        return self.target.message_id

    @property
    def cursor(self) -> int | AnyCursor | None:
        """The cursor it targets (``ANY`` by default)."""
        return self.target.cursor

    @property
    def page(self) -> int | None:
        """The page of a walk it targets (1 is the first), if any."""
        return self.target.page

    def _matches(self, message_id: str | None, cursor: int | None, page: int | None) -> bool:
        """Whether a request for ``message_id`` with ``cursor`` (page ``page``) meets it."""
        target = self.target
        if target.message_id is not None and message_id != target.message_id:
            return False
        if target.cursor is not ANY and cursor != target.cursor:
            return False
        return target.page is None or page == target.page

    def _headers_at(self, now_ms: int) -> tuple[tuple[str, str], ...]:
        """The answer's headers when it fires at ``now_ms`` (the fake's clock)."""
        if self._reset_window is None:
            return self.headers
        prefix = _RATE_LIMIT_PREFIX[self._reset_window]
        return (*self.headers, (f"{prefix}-Reset", str(reset_at(self._reset_window, now_ms))))

    def _new_exception(self) -> BaseException:
        """A fresh exception to raise (raise_next). httpx attaches the request to its
        errors itself, as they leave the transport."""
        planned = self.exception
        assert planned is not None
        # An instance is copied so that each raise gets its own traceback.
        return copy.copy(planned) if isinstance(planned, BaseException) else _instantiate(planned)

    def describe(self) -> str:
        """The plan and how much of it fired, for messages."""
        return f"{self.label}: fired {self.fired} of {self.times} time(s)"


class FaultQueue:
    """The faults planned, in the order planned, used up or not.

    It takes no lock of its own: the fake holds its lock around every use, so under
    concurrent requests each fault fires exactly ``times`` times.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def __bool__(self) -> bool:
        return bool(self._faults)

    def plan(self, fault: Fault) -> Fault:
        """Queue ``fault`` behind the ones planned before it."""
        self._faults.append(fault)
        return fault

    def take(
        self, message_id: str | None, cursor: int | None, page_of: Callable[[], int | None]
    ) -> Fault | None:
        """The first fault not used up that a request for ``message_id`` with ``cursor``
        meets, counted as fired; ``page_of`` tells which page of a walk the request is,
        asked only when a fault targets a page."""
        page: int | None = None
        for fault in self._faults:
            if fault.fired >= fault.times:
                continue
            if fault.page is not None and page is None:
                page = page_of()
            if fault._matches(message_id, cursor, page):
                fault.fired += 1
                return fault
        return None

    def planned(self) -> list[Fault]:
        """Every fault planned, in order (a copy)."""
        return list(self._faults)

    def clear(self) -> None:
        """Forget every fault."""
        self._faults.clear()


def fail(
    status: object,
    times: object,
    error: object,
    headers: object,
    target: FaultTarget,
    delay: object,
) -> Fault:
    """The fault ``fail_next`` plans."""
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"fail_next() takes an HTTP error status 400-599, got {status!r}")
    text = check_optional_str("error", error)
    extra = check_headers(headers)
    count = check_int("times", times, 1)
    return Fault(
        "fail",
        count,
        target,
        check_seconds("delay", delay),
        status=status,
        body=error_body(reason_phrase(status, f"HTTP status {status}") if text is None else text),
        headers=(*JSON_HEADERS, *extra),
        label=_label("fail_next", [repr(status)], count, target),
    )


def rate_limit(
    times: object,
    daily: object,
    limit: object,
    remaining: object,
    reset: object,
    target: FaultTarget,
    delay: object,
) -> Fault:
    """The fault ``rate_limit_next`` plans: a 429 with the headers QStash sends."""
    daily = bool(daily)
    window: RateLimitWindow = "daily" if daily else "burst"
    limit = _DEFAULT_LIMIT[window] if limit is None else check_int("limit", limit)
    remaining = check_int("remaining", remaining)
    prefix = _RATE_LIMIT_PREFIX[window]
    headers: tuple[tuple[str, str], ...] = (
        *JSON_HEADERS,
        (f"{prefix}-Limit", str(limit)),
        (f"{prefix}-Remaining", str(remaining)),
    )
    if reset is not None:
        headers = (*headers, (f"{prefix}-Reset", str(check_int("reset", reset))))
    count = check_int("times", times, 1)
    text = "daily message limit exceeded" if daily else "burst rate limit exceeded"
    return Fault(
        "rate_limit",
        count,
        target,
        check_seconds("delay", delay),
        status=429,
        body=error_body(text),
        headers=headers,
        _reset_window=None if reset is not None else window,
        label=_label("rate_limit_next", ["daily=True"] if daily else [], count, target),
    )


def raise_(exception: object, times: object, target: FaultTarget, delay: object) -> Fault:
    """The fault ``raise_next`` plans."""
    planned = check_exception(exception)
    name = planned.__name__ if isinstance(planned, type) else type(planned).__name__
    count = check_int("times", times, 1)
    return Fault(
        "raise",
        count,
        target,
        check_seconds("delay", delay),
        exception=planned,
        label=_label("raise_next", [name], count, target),
    )


def delay(seconds: object, times: object, target: FaultTarget) -> Fault:
    """The fault ``delay_next`` plans: the normal answer, held back."""
    held = as_seconds(seconds)
    if not held:  # None, or no time at all
        raise ValueError(f"delay_next() takes seconds > 0, got {seconds!r}")
    count = check_int("times", times, 1)
    return Fault(
        "delay", count, target, held, label=_label("delay_next", [repr(seconds)], count, target)
    )


def reset_at(window: RateLimitWindow, now_ms: int) -> int:
    """When a rate-limit window that is open at ``now_ms`` resets, in unix seconds:
    the next whole second (burst) or the next UTC midnight (daily)."""
    seconds = now_ms // 1000
    if window == "burst":
        return seconds + 1
    return (seconds // 86_400 + 1) * 86_400


def check_exception(exception: object) -> BaseException | type[BaseException]:
    """An exception instance or class to raise, or a clear error."""
    if isinstance(exception, type) and issubclass(exception, Exception):
        _instantiate(exception)  # refuse a class that can't be built, now
        return exception
    if isinstance(exception, Exception):
        return exception
    raise TypeError(
        "raise_next() takes an exception class or instance (e.g. httpx.ConnectError), "
        f"got {exception!r}"
    )


_RATE_LIMIT_PREFIX: dict[RateLimitWindow, str] = {
    "burst": "Burst-RateLimit",
    "daily": "RateLimit",
}
_DEFAULT_LIMIT: dict[RateLimitWindow, int] = {"burst": 100, "daily": 1000}


def _label(name: str, first: list[str], times: int, target: FaultTarget) -> str:
    args = [*first, *([f"times={times!r}"] if times != 1 else []), *target.arguments()]
    return f"{name}({', '.join(args)})"


def _instantiate(kind: type[BaseException]) -> BaseException:
    message = f"{kind.__name__} injected by qstash_tasks.raise_next()"
    try:
        return kind(message)
    except TypeError as error:
        raise TypeError(
            f"raise_next() could not build {kind.__name__}({message!r}): {error}; "
            "pass an instance instead"
        ) from None
