"""What reached the fake: each request and what its client got (``RecordedCall``),
kept in the fake's ``CallLog`` with the misses the test said it expects."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, get_args

from pytest_qstash_tasks._core.args import ANY, AnyCursor, check_message_id
from pytest_qstash_tasks._core.exchange import UnservedReason

if TYPE_CHECKING:
    import httpx

    from pytest_qstash_tasks._core.exchange import EndpointResponse, Reply, ReplyAction, Request

    from .faults import Fault

__all__ = [
    "CallList",
    "CallLog",
    "ExpectedMiss",
    "RecordedCall",
    "check_reason",
    "filter_calls",
    "record_call",
]

_NO_ANSWER = {
    "raise": "raised",
    "close": "connection closed without an answer",
    "hold": "no answer until the client gave up",
}


@dataclass(frozen=True)
class RecordedCall:
    """One request that reached the fake, and what the client got back.

    The request as sent: ``method``, ``url``, ``headers`` (lowercase names) and
    ``body``. The answer: ``status``, ``response_headers`` and ``response_body``
    (``status`` is ``None`` when the client got no answer: see ``action``).

    What the fake read from the request: ``message_id``, ``cursor`` and ``token``
    (``None`` where the request had none, or was refused before that part was read).
    ``unserved_reason`` says why a request was not served with tasks (``None`` for a
    served one) and ``detail`` explains it in words. ``fault`` describes the injected
    fault that answered it (``fail_next``, ``rate_limit_next``, ``raise_next``,
    ``delay_next``), if one did; ``exception`` is the exception the fault or the loop
    guard stood for, if any.

    ``request`` and ``response`` give the same as ``httpx`` objects, built on first
    use (the respx transport hands back the very request the client sent).
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: bytes = b""
    message_id: str | None = None
    cursor: int | None = None
    token: str | None = None
    unserved_reason: UnservedReason | None = None
    detail: str = ""
    exception: BaseException | None = None
    #: Which page of ``add_pages`` was served (1 is the first), if one was.
    scripted_page: int | None = None
    #: The cursor the served page handed out (``None`` at the end of the list).
    next_cursor: int | None = None
    #: How many tasks the served page held (``None`` when no page was served).
    task_count: int | None = None
    fault: str | None = None
    #: What the client got: ``answer`` (a status, headers and a body), or no answer:
    #: ``raise`` (an exception raised in the client, in-process), ``close`` (the
    #: connection closed) or ``hold`` (nothing until the client gave up).
    action: ReplyAction = "answer"
    native_request: object = field(default=None, repr=False, compare=False)

    @property
    def served(self) -> bool:
        """Whether the client got a page of tasks (no miss, no fault but a delay)."""
        return self.task_count is not None and self.status == 200

    @functools.cached_property
    def request(self) -> httpx.Request:
        """The request as an ``httpx.Request``."""
        import httpx

        if isinstance(self.native_request, httpx.Request):
            return self.native_request
        return httpx.Request(self.method, self.url, headers=list(self.headers), content=self.body)

    @functools.cached_property
    def response(self) -> httpx.Response | None:
        """The answer as an ``httpx.Response`` (``None`` when the client got none)."""
        import httpx

        if self.status is None:
            return None
        return httpx.Response(
            self.status,
            headers=list(self.response_headers),
            content=self.response_body,
            request=self.request,
        )

    def json(self) -> object:
        """The answer's body parsed as JSON."""
        import json

        return json.loads(self.response_body)

    def describe(self) -> str:
        """One line: method, URL, cursor, what the client got, and why."""
        if self.status is None:
            name = type(self.exception).__name__
            how = _NO_ANSWER[self.action]
            got = f"raised {name}" if self.action == "raise" else f"-> {how} ({name})"
        elif self.served:
            end = "end" if self.next_cursor is None else f"next cursor {self.next_cursor}"
            got = f"-> 200 ({self.task_count} task{'' if self.task_count == 1 else 's'}, {end})"
        else:
            got = f"-> {self.status}"
        cursor = "" if self.cursor is None else f" (cursor={self.cursor})"
        why = f": {self.detail}" if self.detail else ""
        fault = f" [{self.fault}]" if self.fault else ""
        return f"{self.method} {self.url}{cursor} {got}{fault}{why}"


def record_call(
    request: Request,
    response: EndpointResponse,
    reply: Reply,
    fault: Fault | None,
    error: BaseException | None,
) -> RecordedCall:
    """What the fake records of ``request``: the endpoint's reading of it and the reply."""
    endpoint_answered = fault is None or fault.kind == "delay"
    answered = reply.action == "answer"
    return RecordedCall(
        method=request.method,
        url=request.url,
        headers=request.headers,
        body=request.body,
        status=reply.status if answered else None,
        response_headers=reply.headers,
        response_body=reply.body,
        message_id=response.message_id,
        cursor=response.cursor,
        token=response.token,
        unserved_reason=response.unserved_reason if endpoint_answered else None,
        detail=response.detail if endpoint_answered else "",
        exception=error,
        scripted_page=response.scripted_page if endpoint_answered else None,
        next_cursor=response.next_cursor if endpoint_answered else None,
        task_count=response.task_count if endpoint_answered else None,
        fault=None if fault is None else fault.label,
        action=reply.action,
        native_request=request.native,
    )


_REASONS: tuple[str, ...] = get_args(UnservedReason)


def check_reason(reason: object) -> UnservedReason:
    """``reason``, or a clear error naming the reasons there are."""
    if reason not in _REASONS:
        raise ValueError(f"expect_unserved() takes one of {', '.join(_REASONS)}; got {reason!r}")
    return reason  # type: ignore[return-value]


@dataclass
class ExpectedMiss:
    """Requests for ``reason`` (and ``message_id``, if given) are meant to go unserved."""

    reason: UnservedReason
    message_id: str | None = None

    @classmethod
    def checked(cls, reason: object, message_id: object) -> ExpectedMiss:
        if message_id is not None:
            check_message_id(message_id)
        return cls(check_reason(reason), message_id)  # type: ignore[arg-type]

    def covers(self, call: RecordedCall) -> bool:
        """Whether ``call`` is one of the misses this expects."""
        return call.unserved_reason == self.reason and (
            self.message_id is None or call.message_id == self.message_id
        )

    def describe(self) -> str:
        """``expect_unserved('unknown_message', message_id='m')``."""
        target = "" if self.message_id is None else f", message_id={self.message_id!r}"
        return f"expect_unserved({self.reason!r}{target})"


class CallList(list["RecordedCall"]):
    """The recorded calls: a copy, so changing it changes nothing; it says so."""

    def _refuse(self, *_: object, **__: object) -> None:
        raise TypeError(
            "calls is a copy of the recorded calls: changing it changes nothing in the "
            "fake; reset() forgets every call (and everything else)"
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]


def filter_calls(
    calls: Sequence[RecordedCall],
    message_id: str | None = None,
    *,
    cursor: int | AnyCursor | None = ANY,
    status: int | None = None,
    served: bool | None = None,
) -> list[RecordedCall]:
    """The calls that match every filter given."""
    return [
        call
        for call in calls
        if (message_id is None or call.message_id == message_id)
        and (cursor is ANY or call.cursor == cursor)
        and (status is None or call.status == status)
        and (served is None or call.served == served)
    ]


class CallLog:
    """Every request that reached the fake, in order; among them the ones the loop
    guard stopped; the requests to the real QStash that the guard stopped; and the
    misses the test expects (``expect_unserved``).

    It takes no lock of its own: the fake holds its lock around every use.
    """

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.loops: list[RecordedCall] = []
        self.real_host: list[RecordedCall] = []
        self.expected: list[ExpectedMiss] = []

    def record(self, call: RecordedCall, *, loop: bool = False) -> None:
        """Add ``call``; ``loop``: the loop guard stopped it."""
        self.calls.append(call)
        if loop:
            self.loops.append(call)

    def record_real_host(self, call: RecordedCall) -> None:
        """Add a request to the real QStash that the guard stopped."""
        self.real_host.append(call)

    def expect(self, miss: ExpectedMiss) -> None:
        """Add a miss the test expects."""
        self.expected.append(miss)

    def copy(self) -> CallList:
        """The calls, as a read-only copy."""
        return CallList(self.calls)

    def reached(self) -> bool:
        """Whether any request reached the fake (one stopped on its way to the real
        QStash did not)."""
        return bool(self.calls)

    def unexpected_misses(self) -> list[RecordedCall]:
        """The calls the fake could not serve that no expectation covers."""
        return [
            call
            for call in self.calls
            if call.unserved_reason is not None
            and not any(expected.covers(call) for expected in self.expected)
        ]

    def unmet_expectations(self) -> list[ExpectedMiss]:
        """The expected misses no call met."""
        return [e for e in self.expected if not any(e.covers(call) for call in self.calls)]

    def snapshot(self) -> CallLog:
        """A copy, to read outside the fake's lock."""
        copy = CallLog()
        copy.calls, copy.loops = list(self.calls), list(self.loops)
        copy.real_host, copy.expected = list(self.real_host), list(self.expected)
        return copy

    def clear(self) -> None:
        """Forget everything."""
        self.calls.clear()
        self.loops.clear()
        self.real_host.clear()
        self.expected.clear()
