"""Planned faults: what the next matching requests get instead of a normal answer.

Faults wait in a queue in the order they were planned. A request takes the first one
that matches it and is not used up; when every fault is used up, requests are served
normally again. Taking a fault happens under the fake's lock, so under concurrent
requests each fault fires exactly ``times`` times.
"""

from __future__ import annotations

import copy
import enum
import http
import json
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ANY", "Fault", "check_exception", "check_positive_int", "check_target", "error_body"]


class _Any(enum.Enum):
    ANY = "ANY"

    def __repr__(self) -> str:
        return "ANY"

    __str__ = __repr__


#: Matches any cursor, the first page's (no cursor) included.
ANY = _Any.ANY

FaultKind = Literal["fail", "rate_limit", "raise", "delay"]


@dataclass(eq=False)
class Fault:
    """A planned fault, as returned by ``fail_next`` and its siblings.

    ``fired`` counts the requests it answered so far; it is used up when
    ``fired == times``.
    """

    kind: FaultKind
    times: int
    message_id: str | None = None
    cursor: int | _Any | None = ANY
    page: int | None = None
    delay: float = 0.0
    status: int | None = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    exception: BaseException | type[BaseException] | None = None
    #: For a rate limit without a planned reset: which window the clock's reset ends.
    reset_window: Literal["burst", "daily"] | None = None
    #: How the test planned it, e.g. ``fail_next(503, times=2)``.
    label: str = ""
    fired: int = field(default=0)

    @property
    def remaining(self) -> int:
        """How many more requests it will answer."""
        return self.times - self.fired

    def matches(self, message_id: str | None, cursor: int | None, page: int | None) -> bool:
        """Whether a request for ``message_id`` with ``cursor`` (page ``page``) meets it."""
        if self.message_id is not None and message_id != self.message_id:
            return False
        if self.cursor is not ANY and cursor != self.cursor:
            return False
        return self.page is None or page == self.page

    def headers_at(self, now_ms: int) -> tuple[tuple[str, str], ...]:
        """The answer's headers when it fires at ``now_ms`` (the fake's clock)."""
        if self.reset_window is None:
            return self.headers
        prefix = "RateLimit" if self.reset_window == "daily" else "Burst-RateLimit"
        return (*self.headers, (f"{prefix}-Reset", str(reset_at(self.reset_window, now_ms))))

    def exception_for(self, request: object) -> BaseException:
        """A fresh exception to raise for ``request`` (raise_next)."""
        planned = self.exception
        assert planned is not None
        if isinstance(planned, BaseException):
            error = copy.copy(planned)  # each raise gets its own traceback
        else:
            error = _instantiate(planned, request)
        if _is_httpx_request_error(type(error)):
            try:
                error.request  # type: ignore[attr-defined]  # noqa: B018
            except RuntimeError:
                error.request = request  # type: ignore[attr-defined]
        return error

    def describe(self) -> str:
        """The plan and how much of it fired, for messages."""
        return f"{self.label}: fired {self.fired} of {self.times} time(s)"


def reset_at(window: Literal["burst", "daily"], now_ms: int) -> int:
    """When a rate-limit window that is open at ``now_ms`` resets, in unix seconds:
    the next whole second (burst) or the next UTC midnight (daily)."""
    seconds = now_ms // 1000
    if window == "burst":
        return seconds + 1
    return (seconds // 86_400 + 1) * 86_400


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, or a clear error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def check_target(
    message_id: object, cursor: object, page: object, delay: object
) -> tuple[str | None, int | _Any | None, int | None, float]:
    """Validated ``message_id``, ``cursor``, ``page`` and ``delay`` filters of a fault."""
    if message_id is not None and (not isinstance(message_id, str) or not message_id):
        raise ValueError(f"message_id must be a non-empty str or None, got {message_id!r}")
    if (
        cursor is not ANY
        and cursor is not None
        and (isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0)
    ):
        raise ValueError(
            f"cursor must be an int >= 0, None (the first page) or ANY, got {cursor!r}"
        )
    if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
        raise ValueError(f"page must be an int >= 1 (1 is the first page) or None, got {page!r}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
        raise ValueError(f"delay must be a number of seconds >= 0, got {delay!r}")
    return message_id, cursor, page, float(delay)


def error_body(status: int, error: str | None) -> bytes:
    """A QStash-shaped error body: ``{"error": ...}``."""
    if error is None:
        try:
            error = http.HTTPStatus(status).phrase
        except ValueError:
            error = f"HTTP status {status}"
    return json.dumps({"error": error}).encode()


def check_exception(exception: object) -> BaseException | type[BaseException]:
    """An exception instance or class to raise, or a clear error."""
    if isinstance(exception, type) and issubclass(exception, Exception):
        _instantiate(exception, None)  # refuse a class that can't be built, now
        return exception
    if isinstance(exception, Exception):
        return exception
    raise TypeError(
        "raise_next() takes an exception class or instance (e.g. httpx.ConnectError), "
        f"got {exception!r}"
    )


def _is_httpx_request_error(kind: type[BaseException]) -> bool:
    return any(
        base.__name__ == "RequestError" and base.__module__.startswith("httpx")
        for base in kind.__mro__
    )


def _instantiate(kind: type[BaseException], request: object) -> BaseException:
    message = f"{kind.__name__} injected by qstash_tasks.raise_next()"
    if _is_httpx_request_error(kind):
        try:
            return kind(message, request=request)  # type: ignore[call-arg]
        except TypeError:
            pass
    try:
        return kind(message)
    except TypeError as error:
        raise TypeError(
            f"raise_next() could not build {kind.__name__}({message!r}): {error}; "
            "pass an instance instead"
        ) from None
