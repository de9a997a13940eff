"""What the v2 resources share: a refusal (``Refused``, the 4xx QStash would answer,
decided before anything is stored), the checks they make alike (the method, a JSON
body, a URL the fake can deliver to, a name), and their JSON answer (``json_answer``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_qstash_tasks._core.exchange import (
    JSON_HEADERS,
    EndpointResponse,
    Request,
    UnservedReason,
    ascii_int,
    error_body,
    parse_json,
)

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.state.dlq import DeadLetter, DeadLetterQueue

__all__ = [
    "NAME_RE",
    "WANT_URL",
    "Refused",
    "allow",
    "dlq_entry",
    "json_answer",
    "json_body",
    "page_count",
    "page_cursor",
    "refusal",
    "url_problem",
]

#: A queue's or a URL group's name.
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,256}")


class Refused(Exception):
    """A request QStash would refuse: its status, the error text and why; for a 405, the
    methods the path allows (its ``Allow`` header, which RFC 9110 requires)."""

    def __init__(
        self,
        status: int,
        text: str,
        reason: UnservedReason = "bad_request",
        allow: Sequence[str] = (),
    ) -> None:
        super().__init__(text)
        self.status, self.text, self.reason, self.allow = status, text, reason, allow


WANT_URL = "want an http:// or https:// URL with a host"


@functools.lru_cache(maxsize=256)
def url_problem(url: str) -> str | None:
    """What keeps ``url`` from being an http(s) URL the fake can deliver to, or ``None``
    (cached: a test publishes to the same few URLs again and again, and this is on every
    publish's path)."""
    if any(char <= " " or char == "\x7f" for char in url):
        return f"{WANT_URL}, and no blank or control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # read for its check: a port that is no number 0-65535
    except ValueError as error:  # "http://[x", a host NFKC changes, port 99999
        return f"{WANT_URL}: {error}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return WANT_URL
    return None


def allow(request: Request, *methods: str) -> None:
    """Refuse (405) a request whose method is not one of ``methods``."""
    if request.method not in methods:
        raise Refused(
            405, f"method {request.method} not allowed", "method_not_allowed", allow=methods
        )


def json_body(request: Request) -> Any:
    """The request's body as JSON, or a 400 that says why not."""
    try:
        return parse_json(request.body)
    except ValueError as error:
        raise Refused(400, f"the body is not valid JSON: {error}") from None


def json_answer(status: int, payload: Any, token: str | None) -> EndpointResponse:
    """A resource's answer: ``payload`` as JSON (``None``: an empty body)."""
    import json

    body = b"" if payload is None else json.dumps(payload).encode()
    return EndpointResponse(status, body, token=token)


def refusal(refused: Refused, token: str | None, detail: str = "") -> EndpointResponse:
    """The response of a refused request: ``{"error": ...}``, and ``Allow`` on a 405."""
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS
    if refused.allow:
        headers = (*JSON_HEADERS, ("allow", ", ".join(refused.allow)))
    return EndpointResponse(
        refused.status,
        error_body(refused.text),  # JSON, as every answer with a body
        headers,
        token=token,
        unserved_reason=refused.reason,
        detail=detail or refused.text,
    )


def page_cursor(params: dict[str, str]) -> int | None:
    """A DLQ page's ``cursor``: the sequence of the last entry of the page before
    (``None``: from the first)."""
    raw = params.get("cursor", "")
    if raw == "":
        return None
    cursor = ascii_int(raw)
    if cursor is None:
        raise Refused(400, f"invalid cursor {raw!r}: use the cursor of a page")
    return cursor


def dlq_entry(dlq: DeadLetterQueue, dlq_id: str) -> DeadLetter:
    """The DLQ entry with that id; refused (404) when there is none."""
    entry = dlq.get(dlq_id)
    if entry is None:
        raise Refused(404, f"no DLQ entry {dlq_id!r}", "unknown_message")
    return entry


def page_count(params: dict[str, str], *, default: int, maximum: int) -> int:
    """A list endpoint's ``count`` (1 to ``maximum``; ``default`` when not given)."""
    if "count" not in params:
        return default
    number = ascii_int(params["count"])
    if number is None or not 1 <= number <= maximum:
        raise Refused(400, f"invalid count {params['count']!r}: want 1-{maximum}")
    return number
