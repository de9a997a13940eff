"""``GET /v2/logs`` (``{"logs": [...]}``, QStash's OpenAPI) and ``GET /v2/events``
(``{"events": [...]}``, what both SDKs call): every state change of every message, newest
first, up to the clock's time, paged by ``cursor`` and ``count`` and narrowed by QStash's
filters."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_qstash_tasks._core.exchange import EndpointResponse, Request
from pytest_qstash_tasks._core.state.logs import STATES, LogEntry, MessageLog

from .filters import FilterError, read_selection
from .refusals import Refused, allow, page_count

__all__ = ["is_logs_path", "respond"]

_FILTERS = (
    "messageId", "state", "url", "topicName", "queueName", "scheduleId", "label",
    "callerIp", "flowControlKey", "host", "path",
)  # fmt: skip
#: ``state=IN_PROGRESS`` stands for these (QStash's filter meta-state).
_IN_PROGRESS = frozenset({"ACTIVE", "RETRY", "ERROR"})
_MAX_COUNT = 1000
_DEFAULT_COUNT = 100
_CURSOR_RE = re.compile(r"([0-9]{1,15})-([0-9]{1,15})")


def is_logs_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/logs`` or ``/v2/events``."""
    return raw_path[len(base_path) :] in ("/v2/logs", "/v2/events")


def respond(request: Request, now: int, log: MessageLog, token: str | None) -> EndpointResponse:
    """Answer ``GET /v2/logs`` or ``GET /v2/events`` (the token accepted); raises
    ``Refused``."""
    key = "events" if request.raw_path.endswith("/events") else "logs"
    allow(request, "GET")
    entries, cursor = _page(request.query, now, log)
    answer: dict[str, Any] = {key: [entry.to_json() for entry in entries]}
    if cursor is not None:
        answer["cursor"] = f"{cursor[0]}-{cursor[1]}"
    return EndpointResponse(200, json.dumps(answer).encode(), token=token)


def _page(query: str, now: int, log: MessageLog) -> tuple[list[LogEntry], tuple[int, int] | None]:
    params = dict(parse_qsl(query, keep_blank_values=True))
    before = None
    if params.get("cursor"):
        match = _CURSOR_RE.fullmatch(params["cursor"])
        if match is None:
            raise Refused(400, f"invalid cursor {params['cursor']!r}: use the cursor of a page")
        before = (int(match[1]), int(match[2]))
    count = page_count(params, default=_DEFAULT_COUNT, maximum=_MAX_COUNT)
    try:
        selection = read_selection(
            query, None, id_key="messageIds", keys=_FILTERS, aliases={"callerIP": "callerIp"}
        )
    except FilterError as error:
        raise Refused(400, str(error)) from None
    filters = selection.filters
    states = filters.values.get("state", frozenset())
    unknown = states - set(STATES) - {"IN_PROGRESS"}
    if unknown:
        raise Refused(
            400, f"unknown state {sorted(unknown)[0]!r}: want one of {', '.join(STATES)}, "
            "or IN_PROGRESS"
        )  # fmt: skip
    if "IN_PROGRESS" in states:
        widened = dict(filters.values)
        widened["state"] = states | _IN_PROGRESS
        filters = type(filters)(widened, filters.from_date, filters.to_date)
    ids = None if selection.ids is None else frozenset(selection.ids)
    if ids is None and not filters:
        return log.page(now, before, count)

    def keep(entry: LogEntry) -> bool:
        if ids is not None and entry.message_id not in ids:
            return False
        return filters.matches(_fields(entry), entry.time)

    return log.page(now, before, count, keep)


def _fields(entry: LogEntry) -> dict[str, str | None]:
    parts = urlsplit(entry.url)
    return {
        "messageId": entry.message_id,
        "state": entry.state,
        "url": entry.url,
        "topicName": entry.fields.get("topicName"),
        "queueName": entry.fields.get("queueName"),
        "scheduleId": entry.fields.get("scheduleId"),
        "label": entry.fields.get("label"),
        "callerIp": "127.0.0.1",
        "flowControlKey": entry.flow_key,
        "host": parts.hostname,
        "path": parts.path,
    }
