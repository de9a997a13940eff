"""The endpoint core: one request in, one response out. No HTTP library, no I/O.

The fake turns each transport's request into an ``EndpointRequest`` and builds its
reply from what ``handle`` answers, so the semantics of
``GET /v1/messages/{messageId}/tasks`` live here and in ``pagination`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote

from pytest_qstash_tasks._core.exchange import (
    JSON_HEADERS,
    EndpointResponse,
    UnservedReason,
    error_body,
)
from pytest_qstash_tasks._core.state.store import ScriptedPages, TaskStore

__all__ = [
    "EndpointConfig",
    "EndpointRequest",
    "bearer_token",
    "handle",
    "page_number",
    "served_text",
    "serves_tasks_path",
    "unserved_path_error",
]

_CURSOR_RE = re.compile(r"\+?[0-9]+", re.ASCII)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class EndpointConfig:
    """How the endpoint answers: what the mock was configured with."""

    base_path: str = ""
    token: str | None = None
    page_size: int = 100
    end_cursor: Literal[0] | None = 0


@dataclass(frozen=True)
class EndpointRequest:
    """What the endpoint reads of a request.

    ``raw_path`` is the percent-encoded path and ``query`` the raw query string,
    both as sent; ``authorization`` is the header's value, if any. ``now`` is the
    fake's clock when the request arrives (unix ms): simulated deliveries show the
    state they are in at that time.
    """

    method: str
    raw_path: str
    query: str = ""
    authorization: str | None = None
    now: int = 0


def served_text(base_path: str) -> str:
    """What the fake serves, for the message of a request to any other path."""
    return (
        f"the fake serves GET {base_path}/v1/messages/{{messageId}}/tasks and, of the v2 "
        f"message API under {base_path}/v2/: publish, enqueue, batch, messages, topics, dlq, "
        "logs, events, schedules, queues, flowControl, globalParallelism, keys, workflows, "
        "wait, notify, waiters and trigger"
    )


def unserved_path_error(method: str, raw_path: str, base_path: str) -> str:
    """The ``error`` a client reads for a path the fake does not serve: not QStash's
    "Not Found" (QStash may well serve it), but what the fake serves and the way out."""
    return (
        f"qstash_tasks does not serve {method} {raw_path}: {served_text(base_path)}. "
        "In-process, a mock of your own (respx_mock, a responses mock, pytest-httpx's "
        "httpx_mock) answers the paths the fake does not serve"
    )


def serves_tasks_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is the endpoint's (any message id) under ``base_path``,
    whatever else is wrong."""
    return _message_id(raw_path, base_path) is not None


def handle(request: EndpointRequest, store: TaskStore, config: EndpointConfig) -> EndpointResponse:
    """Answer one request the way QStash does (see the docs' fidelity page)."""
    message_id = _message_id(request.raw_path, config.base_path)
    if message_id is None:
        detail = f"{served_text(config.base_path)}, not {request.method} {request.raw_path}"
        error = unserved_path_error(request.method, request.raw_path, config.base_path)
        if request.raw_path.startswith(config.base_path + "/_fake/"):
            # The standalone command's control endpoints and page, asked of a fake
            # made without them: say where they are.
            where = (
                "; the control endpoints and the page under /_fake/ answer with "
                "QStashTasksServer(control=True), and in qstash-tasks-fake serve"
            )
            detail, error = detail + where, error + where
        return _error(404, error, "unknown_path", detail)
    if request.method != "GET":
        return _error(
            405,
            f"method {request.method} not allowed",
            "method_not_allowed",
            f"{request.method} is not allowed on /v1/messages/{{messageId}}/tasks; use GET",
            message_id=message_id,
            headers=(*JSON_HEADERS, ("allow", "GET")),
        )

    token, auth_problem = bearer_token(request.authorization, config.token)
    if auth_problem is not None:
        return _error(
            401, auth_problem, "unauthorized", auth_problem, message_id=message_id, token=token
        )

    raw_cursor = _first_query_value(request.query, "cursor")
    cursor: int | None = None
    if raw_cursor:  # an empty cursor= counts as absent
        cursor = _parse_cursor(raw_cursor)
        if cursor is None:
            text = f"invalid cursor {raw_cursor!r}: want a unix timestamp in ms (integer >= 0)"
            return _error(400, text, "bad_cursor", text, message_id=message_id, token=token)

    message = store.messages.get(message_id)
    if message is not None:
        bodies, next_cursor = message.page(cursor, config.page_size, request.now)
        sent_cursor = config.end_cursor if next_cursor is None else next_cursor
        head = b'{"tasks":[' if sent_cursor is None else b'{"cursor":%d,"tasks":[' % sent_cursor
        return EndpointResponse(
            200,
            head + b",".join(bodies) + b"]}",
            message_id=message_id,
            cursor=cursor,
            token=token,
            next_cursor=next_cursor,
            task_count=len(bodies),
        )
    scripted = store.scripted.get(message_id)
    if scripted is not None:
        return _scripted_page(scripted, cursor, token)
    return _unknown_message(message_id, store.known_ids(), token, cursor)


def _scripted_page(
    scripted: ScriptedPages, cursor: int | None, token: str | None
) -> EndpointResponse:
    """The page of ``add_pages`` a request with ``cursor`` gets, verbatim."""
    message_id = scripted.message_id
    number = scripted.page_number(cursor)
    if number is None:
        handed_out = ", ".join(str(c) for c in scripted.by_cursor) or "none"
        return _error(
            400,
            f"invalid cursor {cursor}",
            "unknown_cursor",
            f"cursor {cursor} is not one the scripted pages of {message_id!r} hand out "
            f"(they hand out: {handed_out})",
            message_id=message_id,
            token=token,
            cursor=cursor,
        )
    page = scripted.pages[number]
    return EndpointResponse(
        200,
        scripted.bodies[number],
        message_id=message_id,
        cursor=cursor,
        token=token,
        scripted_page=number + 1,
        next_cursor=page.cursor if page.has_more else None,
        task_count=len(page.tasks),
    )


def _unknown_message(
    message_id: str, known: list[str], token: str | None, cursor: int | None
) -> EndpointResponse:
    """The 404 for a message nobody registered, naming the first ten that are."""
    listed = ", ".join(repr(k) for k in known[:10]) + (" ..." if len(known) > 10 else "")
    return _error(
        404,
        "Message not found",
        "unknown_message",
        f"message {message_id!r} is not registered; "
        + (f"registered: {listed}" if known else "no message is registered"),
        message_id=message_id,
        token=token,
        cursor=cursor,
    )


def page_number(response: EndpointResponse, store: TaskStore, config: EndpointConfig) -> int | None:
    """Which page of a walk a served response is (1 is the first); ``None`` when no
    page was served."""
    if response.task_count is None or response.message_id is None:
        return None
    if response.scripted_page is not None:
        return response.scripted_page
    message = store.messages[response.message_id]
    return message.page_number(response.cursor, config.page_size)


def _message_id(raw_path: str, base_path: str) -> str | None:
    if not raw_path.startswith(base_path + "/"):
        return None
    parts = raw_path[len(base_path) :].split("/")
    # ["", "v1", "messages", "<id>", "tasks"]
    if len(parts) != 5 or parts[0] or parts[1:3] != ["v1", "messages"] or parts[4] != "tasks":
        return None
    # unquote returns an id without "%" as it is; bad escapes become U+FFFD.
    return unquote(parts[3]) or None


def bearer_token(header: str | None, expected: str | None) -> tuple[str | None, str | None]:
    """``(token, problem)``: the token sent, and why it is refused (None if accepted)."""
    if header is None:
        return None, "missing Authorization header: want 'Bearer <token>'"
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None, "malformed Authorization header: want 'Bearer <token>'"
    if expected is not None and token != expected:
        return token, "invalid token"
    return token, None


def _first_query_value(query: str, name: str) -> str | None:
    # Like Go's url.Values.Get: the first value of a repeated parameter wins.
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == name:
            return value
    return None


def _parse_cursor(raw: str) -> int | None:
    if not _CURSOR_RE.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= _INT64_MAX else None


def _error(
    status: int,
    text: str,
    unserved_reason: UnservedReason,
    detail: str,
    *,
    message_id: str | None = None,
    token: str | None = None,
    cursor: int | None = None,
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS,
) -> EndpointResponse:
    return EndpointResponse(
        status,
        error_body(text),
        headers,
        message_id=message_id,
        cursor=cursor,
        token=token,
        unserved_reason=unserved_reason,
        detail=detail,
    )
