"""The neutral request and reply every transport speaks with the fake.

A transport (httpx's, requests', the HTTP server's) turns the request its library hands
it into a ``Request``, has the fake answer it, and turns the ``Reply`` back into what
its library expects. It holds no QStash rules of its own.

The words: a client's request gets an *answer* (status, headers, body) or, on a fault,
no answer at all; the endpoint's *response* is what the endpoint computed, before
faults and the loop guard had their say; the *reply* is what the transport carries out.
"""

from __future__ import annotations

import http
import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "JSON_HEADERS",
    "EndpointResponse",
    "UnservedReason",
    "ascii_int",
    "parse_json",
    "Reply",
    "ReplyAction",
    "Request",
    "error_body",
    "past_read_timeout",
    "reason_phrase",
]

#: How a reply reaches the client:
#: ``answer``: status, headers and body (after ``delay`` seconds);
#: ``raise``: raise ``exception`` in the client (in-process transports only);
#: ``close``: close the connection without an answer (a connection error);
#: ``hold``: send nothing until the client gives up (a timeout), then close.
ReplyAction = Literal["answer", "raise", "close", "hold"]


@dataclass(frozen=True)
class Request:
    """One HTTP request, as any transport can describe it.

    ``url`` is the full URL as sent (for messages); ``raw_path`` its percent-encoded
    path and ``query`` its raw query string. Header names are made lowercase here, so
    no transport has to.
    ``in_process`` says whether the client runs in the test's own process, where the
    fake can raise an exception in it. ``client`` tells one client apart from another
    for the loop guard: over a socket the transport says who (the connection); left
    ``None`` in-process, where the fake answers in the caller's own thread and task,
    the loop guard asks ``current_actor()`` itself, only when it needs to. ``native`` is
    the transport's own request object, kept for ``RecordedCall.request`` and for
    exceptions that carry their request. ``read_timeout`` is how long the client waits
    for an answer, where its transport can tell (seconds).
    """

    method: str
    url: str
    raw_path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    in_process: bool = False
    client: Hashable | None = None
    native: object = None
    read_timeout: float | None = None

    def __post_init__(self) -> None:
        if any(name != name.lower() for name, _ in self.headers):
            lowered = tuple((name.lower(), value) for name, value in self.headers)
            object.__setattr__(self, "headers", lowered)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lowercase), or ``None``."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


#: The content type of every JSON answer.
JSON_HEADERS = (("content-type", "application/json"),)

#: Why a request was not served with tasks. ``None`` on a served request.
UnservedReason = Literal[
    "unknown_path",
    "method_not_allowed",
    "unauthorized",
    "bad_cursor",
    "unknown_message",
    "unknown_cursor",
    "bad_request",
    "unknown_url_group",
]


@dataclass(frozen=True)
class EndpointResponse:
    """The *response* an endpoint computed, and what it understood of the request."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS
    message_id: str | None = None
    cursor: int | None = None
    token: str | None = None
    unserved_reason: UnservedReason | None = None
    detail: str = ""
    #: Which scripted page was served (1 is the first), if one was.
    scripted_page: int | None = None
    #: The cursor a served page hands out, ``None`` at the end of the list.
    next_cursor: int | None = None
    #: How many tasks a served page holds; ``None`` when no page is served.
    task_count: int | None = None


@dataclass(frozen=True)
class Reply:
    """What the client gets: see ``ReplyAction``."""

    action: ReplyAction
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    exception: BaseException | None = None


def ascii_int(raw: str) -> int | None:
    """``raw`` as a whole number of ASCII digits (no sign, no blank), or ``None``: the
    one reading of a number a header, a query or a command line sends. ``str.isdigit()``
    alone takes ``'²'``, which ``int()`` then refuses, and ``int()`` alone takes
    ``' +1_0 '``."""
    return int(raw) if raw.isascii() and raw.isdigit() else None


def parse_json(raw: bytes | str) -> Any:
    """JSON a client sent, or ``ValueError`` saying why not. Nesting too deep for the
    decoder (it recurses once per array or object: 100,000 ``[`` exhaust it) is a
    ``ValueError`` too, not a ``RecursionError`` that would end in a 500."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def error_body(error: str) -> bytes:
    """A QStash-shaped error body, ``{"error": ...}``."""
    return json.dumps({"error": error}).encode()


def reason_phrase(status: int, default: str = "") -> str:
    """The status's reason phrase (``Service Unavailable``), or ``default`` for a status
    that has none (a status line may end without one)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return default


def past_read_timeout(request: Request, reply: Reply) -> Reply:
    """``reply``, or, when its delay outlasts the client's read timeout, the timeout
    the client would meet: nothing for ``read_timeout`` seconds, then no answer."""
    timeout = request.read_timeout
    if reply.action != "answer" or timeout is None or reply.delay <= timeout:
        return reply
    error = TimeoutError(
        f"qstash_tasks: the answer was held back {reply.delay:g} s (a planned delay), "
        f"past the client's read timeout of {timeout:g} s"
    )
    return Reply("hold", delay=timeout, exception=error)
