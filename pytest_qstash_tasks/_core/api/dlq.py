"""``/v2/dlq``: list, get, delete and retry the messages whose retries ran out.

``GET /v2/dlq`` pages the entries (oldest first, ``count`` 1-100, ``cursor`` from the
last page) with QStash's filters; ``GET``/``DELETE /v2/dlq/{dlqId}`` one entry;
``DELETE /v2/dlq`` many, named by ``dlqIds`` or filters in the query (the Node SDK) or a
JSON body ``{"dlqIds": [...]}`` (qstash-py); ``POST /v2/dlq/retry[/{dlqId}]`` publishes
each again as a new message and takes it out of the DLQ. ``GET /v2/dlq?source=workflow``
lists the failed workflow runs instead (``workflow_dlq``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

from pytest_qstash_tasks._core.exchange import EndpointResponse, Request
from pytest_qstash_tasks._core.state.dlq import DeadLetter, DeadLetterQueue
from pytest_qstash_tasks._core.state.outbox import Outbox

from .filters import FilterError, Filters, read_selection
from .publishing import PublishConfig, publish_again
from .refusals import Refused, allow, dlq_entry, json_body, page_count, page_cursor

__all__ = ["is_dlq_path", "respond"]

#: The filters of the DLQ's list, bulk delete and bulk retry (QStash's OpenAPI).
_FILTERS = (
    "messageId", "url", "topicName", "scheduleId", "queueName", "responseStatus",
    "callerIp", "label", "flowControlKey",
)  # fmt: skip
_MAX_COUNT = 100


def is_dlq_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/dlq`` or under it."""
    rest = raw_path[len(base_path) :]
    return rest == "/v2/dlq" or rest.startswith("/v2/dlq/")


def respond(
    request: Request,
    now: int,
    outbox: Outbox,
    dlq: DeadLetterQueue,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
    token: str | None,
    rest: Sequence[str],
) -> EndpointResponse:
    """Answer one request under ``/v2/dlq`` (the token accepted; ``rest``: the path after
    ``/v2/dlq``, split at ``/``); raises ``Refused``."""
    if not rest:
        allow(request, "GET", "DELETE")
        if request.method == "GET":
            return _list(request, now, outbox, dlq, token)
        return _bulk(request, dlq, token, lambda entries: {"deleted": len(entries)})
    if rest[0] == "retry":
        allow(request, "POST")

        def retry(entries: list[DeadLetter]) -> dict[str, Any]:
            ids = [
                publish_again(entry.message, now, outbox, publish_config, new_id)
                for entry in entries
            ]
            return {"responses": [{"messageId": message_id} for message_id in ids]}

        if len(rest) == 1:
            return _bulk(request, dlq, token, retry)
        entry = dlq_entry(dlq, unquote(rest[1]))
        dlq.remove([entry.dlq_id])
        message_id = publish_again(entry.message, now, outbox, publish_config, new_id)
        return EndpointResponse(200, json.dumps({"messageId": message_id}).encode(), token=token)
    if len(rest) != 1:
        raise Refused(404, f"no DLQ endpoint at /v2/dlq/{'/'.join(rest)}", "unknown_path")
    allow(request, "GET", "DELETE")
    entry = dlq_entry(dlq, unquote(rest[0]))
    if request.method == "GET":
        return EndpointResponse(200, json.dumps(entry.to_json()).encode(), token=token)
    dlq.remove([entry.dlq_id])
    return EndpointResponse(200, b'{"deleted":1}', token=token)


def _list(
    request: Request, now: int, outbox: Outbox, dlq: DeadLetterQueue, token: str | None
) -> EndpointResponse:
    source = dict(parse_qsl(request.query, keep_blank_values=True)).get("source")
    if source is not None:  # what @upstash/workflow's dlq.list asks: the failed runs
        if source != "workflow":
            raise Refused(400, f"invalid source {source!r}: workflow, or leave it out")
        from .workflow_dlq import list_entries  # imported at its first use: benchmark 6

        runs = list_entries(request.query, now, dlq, outbox, ignored=("source",))
        return EndpointResponse(200, json.dumps(runs).encode(), token=token)
    cursor, count = _paging(request.query, default=_MAX_COUNT)
    selection = _selection(request.query, None)
    keep = _keeper(selection.ids, selection.filters)
    entries, next_cursor = dlq.page(cursor, count, keep)
    answer: dict[str, Any] = {"messages": [entry.to_json() for entry in entries]}
    if next_cursor is not None:
        answer["cursor"] = str(next_cursor)
    return EndpointResponse(200, json.dumps(answer).encode(), token=token)


def _bulk(
    request: Request,
    dlq: DeadLetterQueue,
    token: str | None,
    act: Callable[[list[DeadLetter]], dict[str, Any]],
) -> EndpointResponse:
    """Delete or retry the entries named (ids, else filters, else every one), up to
    ``count`` (100 by default) a call; the ``cursor`` says where the next call goes on."""
    body = json_body(request) if request.body.strip() else None
    cursor, count = _paging(request.query, default=_MAX_COUNT)
    selection = _selection(request.query, body)
    entries, next_cursor = dlq.page(cursor, count, _keeper(selection.ids, selection.filters))
    dlq.remove([entry.dlq_id for entry in entries])
    answer = act(entries)
    if next_cursor is not None:
        answer["cursor"] = str(next_cursor)
    return EndpointResponse(200, json.dumps(answer).encode(), token=token)


def _paging(query: str, *, default: int) -> tuple[int | None, int]:
    """The ``cursor`` (the sequence of the last entry of the page before) and ``count``."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    return page_cursor(params), page_count(params, default=default, maximum=_MAX_COUNT)


def _selection(query: str, body: object) -> Any:
    try:
        return read_selection(
            query, body, id_key="dlqIds", keys=_FILTERS, aliases={"callerIP": "callerIp"}
        )
    except FilterError as error:
        raise Refused(400, str(error)) from None


def _keeper(ids: tuple[str, ...] | None, filters: Filters) -> Callable[[DeadLetter], bool] | None:
    """What a page keeps: the entries named, else those the filters match, else all."""
    if ids is not None:
        named = frozenset(ids)
        return lambda entry: entry.dlq_id in named
    if not filters:
        return None
    return lambda entry: filters.matches(_fields(entry), entry.failed_at)


def _fields(entry: DeadLetter) -> dict[str, str | None]:
    message = entry.message
    header = dict(message.headers)
    return {
        "messageId": message.message_id,
        "url": message.url,
        "topicName": message.url_group,
        "queueName": message.queue,
        "scheduleId": message.schedule_id,
        "responseStatus": str(entry.response_status),
        "callerIp": "127.0.0.1",
        "label": header.get("upstash-label"),
        "flowControlKey": header.get("upstash-flow-control-key"),
    }
