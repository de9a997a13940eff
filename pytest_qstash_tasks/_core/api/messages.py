"""QStash's v2 message API, as far as a message's life goes: the requests to publish (to
a URL or a URL group), enqueue and batch (each checked and stored by ``publishing``), and
to get and cancel messages; ``handle_v2`` routes a v2 request to its resource (URL groups
are ``url_groups``'). One request in, one response out; no HTTP library, no I/O. The
state lives in the ``Outbox``.

Every refusal is a 4xx ``{"error": ...}`` that names what was wrong, decided before
anything is stored: a batch with one bad entry publishes none of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from pytest_qstash_tasks._core.exchange import (
    EndpointResponse,
    Request,
    error_body,
)
from pytest_qstash_tasks._core.state.outbox import (
    Message,
    Outbox,
)

from . import url_groups
from .filters import FilterError, read_selection
from .publishing import Publish, PublishConfig, check_publish, store_publish
from .refusals import NAME_RE, Refused, allow, json_body, refusal
from .tasks import (
    EndpointConfig,
    bearer_token,
    served_text,
    unserved_path_error,
)

__all__ = ["handle_v2", "serves_v2_path"]

_KINDS = frozenset(
    {
        "publish", "enqueue", "batch", "messages", "topics", "dlq", "logs", "events",
        "schedules", "queues", "flowControl", "globalParallelism", "keys", "workflows",
        "wait", "notify", "waiters", "trigger",
    }
)  # fmt: skip


def serves_v2_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is one the message API here serves (any method, whatever
    else is wrong): ``/v2/publish/...``, ``/v2/enqueue/...``, ``/v2/batch``,
    ``/v2/messages...``, ``/v2/topics...``, ``/v2/dlq...``, ``/v2/logs``,
    ``/v2/events``, ``/v2/schedules...``, ``/v2/queues...``, ``/v2/flowControl...``,
    ``/v2/globalParallelism``, ``/v2/keys...``, ``/v2/workflows/...``, ``/v2/wait/...``,
    ``/v2/notify/...``, ``/v2/waiters/...`` and ``/v2/trigger/...`` under ``base_path``.
    Other v2 paths are left to other mocks in-process."""
    if not raw_path.startswith(base_path + "/v2/"):
        return False
    kind = raw_path[len(base_path) + 4 :].partition("/")[0]
    return kind in _KINDS


def handle_v2(
    request: Request,
    now: int,
    outbox: Outbox,
    config: EndpointConfig,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> EndpointResponse:
    """Answer one request to the v2 message API the way QStash does."""
    rest = request.raw_path[len(config.base_path) :]
    parts = rest.split("/")  # ["", "v2", kind, ...]: only such paths are routed here
    kind = parts[2]
    routed = (
        (kind == "publish" and len(parts) > 3)
        or (kind == "enqueue" and len(parts) > 4)
        or (kind == "batch" and len(parts) == 3)
        or (kind == "messages" and len(parts) in (3, 4))
        or (kind == "topics" and (len(parts) in (3, 4) or parts[4:] == ["endpoints"]))
    )
    if not routed:
        detail = f"{served_text(config.base_path)}, not {request.method} {request.raw_path}"
        text = unserved_path_error(request.method, request.raw_path, config.base_path)
        return refusal(Refused(404, text, "unknown_path"), None, detail)
    token, problem = bearer_token(request.header("authorization"), config.token)
    if problem is not None:
        return refusal(Refused(401, problem, "unauthorized"), token)
    try:
        if kind in ("publish", "enqueue"):
            return _publish(request, now, outbox, publish_config, new_id, token, rest)
        if kind == "batch":
            allow(request, "POST")
            return _batch(request, now, outbox, publish_config, new_id, token)
        if kind == "messages":
            message_id = unquote(parts[3]) if len(parts) == 4 else None
            return _messages(request, now, outbox, token, message_id)
        return url_groups.handle(request, now, outbox, token, parts[3:])
    except Refused as refused:
        return refusal(refused, token)


# -- publishing ---------------------------------------------------------------------


def _publish(
    request: Request,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
    token: str | None,
    rest: str,
) -> EndpointResponse:
    allow(request, "POST")
    queue = None
    if rest.startswith("/v2/enqueue/"):
        queue, _, destination = rest[len("/v2/enqueue/") :].partition("/")
        queue = unquote(queue)
        if not NAME_RE.fullmatch(queue):
            raise Refused(400, f"invalid queue name {queue!r}: use letters, digits, '.', '_', '-'")
    else:
        destination = rest[len("/v2/publish/") :]
    # Kept as sent: a client percent-encodes what is not ASCII, and the app's receiver
    # (and the signature's subject) see the URL in that form.
    destination += f"?{request.query}" if request.query else ""
    checked = check_publish(
        destination, request.headers, request.body, now, outbox, publish_config, queue=queue
    )
    answer, status = store_publish(checked, now, outbox, new_id)
    if isinstance(answer, dict) and len(answer) == 1:  # the common case, made directly
        body = b'{"messageId":"%s"}' % answer["messageId"].encode()
    else:
        body = json.dumps(answer).encode()
    return EndpointResponse(status, body, token=token)


def _batch(
    request: Request,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
    token: str | None,
) -> EndpointResponse:
    entries = json_body(request)
    if not isinstance(entries, list) or not entries:
        raise Refused(400, "a batch is a non-empty JSON array of messages")
    checked = []
    for index, entry in enumerate(entries):
        try:
            checked.append(_batch_entry(entry, now, outbox, publish_config))
        except Refused as refused:
            raise Refused(
                refused.status,
                f"batch entry {index}: {refused.text} (no entry of the batch was published)",
                refused.reason,
            ) from None
    answers = [store_publish(one, now, outbox, new_id)[0] for one in checked]
    return EndpointResponse(200, json.dumps(answers).encode(), token=token)


def _batch_entry(entry: object, now: int, outbox: Outbox, publish_config: PublishConfig) -> Publish:
    if not isinstance(entry, dict):
        raise Refused(400, "each entry is a JSON object with a destination")
    destination = entry.get("destination")
    if not isinstance(destination, str) or not destination:
        raise Refused(400, "destination is missing")
    headers = entry.get("headers")
    if headers is None:  # null, as a JSON decoder into a map takes it
        headers = {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise Refused(400, "headers must be an object of strings")
    body = entry.get("body")
    if body is not None and not isinstance(body, str):
        raise Refused(400, "body must be a string")
    queue = entry.get("queue")
    if queue is not None and (not isinstance(queue, str) or not NAME_RE.fullmatch(queue)):
        raise Refused(400, f"invalid queue name {queue!r}")
    lowered = tuple((key.lower(), value) for key, value in headers.items())
    raw = (body or "").encode()
    return check_publish(destination, lowered, raw, now, outbox, publish_config, queue=queue)


# -- messages -----------------------------------------------------------------------


def _messages(
    request: Request, now: int, outbox: Outbox, token: str | None, message_id: str | None
) -> EndpointResponse:
    if message_id is None:
        allow(request, "DELETE")
        cancelled = outbox.cancel(_bulk_cancel_ids(request, outbox), now)
        return EndpointResponse(
            200, json.dumps({"cancelled": len(cancelled)}).encode(), token=token
        )
    allow(request, "GET", "DELETE")
    message = outbox.live(message_id, now)
    if message is None:
        kept = outbox.messages.get(message_id)
        if kept is None:
            detail = f"no message {message_id!r} was published"
        else:
            how = "was cancelled" if kept.delivery.canceled_at is not None else "was delivered"
            if kept.delivery.canceled_at is None and kept.delivery.errors[-1:] != [None]:
                how = "failed: its retries ran out"
            detail = (
                f"message {message_id!r} {how}, and QStash keeps a message only until its "
                "delivery is over (its tasks stay readable)"
            )
        return EndpointResponse(
            404, error_body("message not found"), message_id=message_id, token=token,
            unserved_reason="unknown_message", detail=detail,
        )  # fmt: skip
    if request.method == "GET":
        body = json.dumps(message.to_json()).encode()
        return EndpointResponse(200, body, message_id=message_id, token=token)
    outbox.cancel([message_id], now)
    # 200 as the OpenAPI documents, with a JSON body: the Node SDK parses the answer of
    # ``messages.cancel(id)`` as ``{"cancelled": n}``; qstash-py reads no body.
    return EndpointResponse(200, b'{"cancelled":1}', message_id=message_id, token=token)


#: The filters ``DELETE /v2/messages`` takes (QStash's OpenAPI), besides ``messageIds``.
_CANCEL_FILTERS = (
    "url", "topicName", "queueName", "label", "flowControlKey", "scheduleId", "callerIp",
    "host", "path",
)  # fmt: skip


def _bulk_cancel_ids(request: Request, outbox: Outbox) -> list[str] | None:
    """The ids a bulk cancel names, from the query (what the Node SDK sends) and the
    JSON body (qstash-py): ids outright, else the messages its filters match, else
    (nothing named at all) ``None``, every message. Anything it cannot read is refused."""
    body = json_body(request) if request.body.strip() else None
    try:
        selection = read_selection(
            request.query, body, id_key="messageIds", keys=_CANCEL_FILTERS,
            aliases={"callerIP": "callerIp"},
        )  # fmt: skip
    except FilterError as error:
        raise Refused(400, str(error)) from None
    if selection.ids is not None:
        return list(selection.ids)
    filters = selection.filters
    if not filters:
        return None
    return [
        message.message_id
        for message in outbox.messages.values()
        if filters.matches(_filter_fields(message), message.created_at)
    ]


def _filter_fields(message: Message) -> dict[str, str | None]:
    """A message's values for QStash's filters."""
    parts = urlsplit(message.url)
    header = dict(message.headers)
    return {
        "url": message.url,
        "topicName": message.url_group,
        "queueName": message.queue,
        "label": header.get("upstash-label"),
        "flowControlKey": header.get("upstash-flow-control-key"),
        "scheduleId": message.schedule_id,
        "callerIp": "127.0.0.1",  # as GET /v2/messages/{id} shows it
        "host": parts.hostname,
        "path": parts.path,
    }
