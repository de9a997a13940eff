"""What the fake records of each request it answered, whatever the transport."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from .endpoint import EndpointResponse, UnservedReason
    from .exchange import Reply, ReplyAction, Request
    from .faults import Fault

__all__ = ["RecordedCall", "record_call"]

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
    (``status`` is ``None`` when the client got no answer: see ``delivery``).

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
    #: How the client got its answer: ``answer``, or ``raise``, ``close``, ``hold``.
    delivery: ReplyAction = "answer"
    native_request: object = field(default=None, repr=False, compare=False)

    @property
    def miss(self) -> UnservedReason | None:
        """The former name of ``unserved_reason``."""
        return self.unserved_reason

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
            how = _NO_ANSWER[self.delivery]
            got = f"raised {name}" if self.delivery == "raise" else f"-> {how} ({name})"
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
    answer: EndpointResponse,
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
        message_id=answer.message_id,
        cursor=answer.cursor,
        token=answer.token,
        unserved_reason=answer.unserved_reason if endpoint_answered else None,
        detail=answer.detail if endpoint_answered else "",
        exception=error,
        scripted_page=answer.scripted_page if endpoint_answered else None,
        next_cursor=answer.next_cursor if endpoint_answered else None,
        task_count=answer.task_count if endpoint_answered else None,
        fault=None if fault is None else fault.label,
        delivery=reply.action,
        native_request=request.native,
    )
