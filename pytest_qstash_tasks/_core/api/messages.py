"""QStash's v2 message API, as far as a message's life goes: publish (to a URL or a URL
group), enqueue, batch, get and cancel messages; ``handle_v2`` routes a v2 request to
its resource (URL groups are ``url_groups``'). One request in, one response out; no
HTTP library, no I/O. The state lives in the ``Outbox``.

Every refusal is a 4xx ``{"error": ...}`` that names what was wrong, decided before
anything is stored: a batch with one bad entry publishes none of it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_qstash_tasks._core.engine.retry_delay import RetryDelay
from pytest_qstash_tasks._core.exchange import (
    EndpointResponse,
    Request,
    ascii_int,
    error_body,
)
from pytest_qstash_tasks._core.state.flow_control import FlowLimits
from pytest_qstash_tasks._core.state.outbox import (
    Message,
    Outbox,
    PublishedDelivery,
    PublishedMessage,
)

from . import url_groups
from .filters import FilterError, read_selection
from .refusals import NAME_RE, WANT_URL, Refused, allow, json_body, refusal, url_problem
from .tasks import (
    EndpointConfig,
    bearer_token,
    served_text,
    unserved_path_error,
)

__all__ = [
    "PublishConfig",
    "callback_headers",
    "callback_publish",
    "check_publish",
    "handle_v2",
    "serves_v2_path",
    "store_messages",
]

#: The delivery methods QStash's OpenAPI lists for ``Upstash-Method``.
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
#: A header name (RFC 9110's token), and what a header value may not hold (CR, LF, NUL).
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE_BAD_RE = re.compile(r"[\r\n\x00]")
#: The headers whose value is a URL the fake would call.
_CALLBACKS = ("upstash-callback", "upstash-failure-callback")
_DELAY_RE = re.compile(r"(?:[0-9]{1,9}(?:ms|s|m|h|d))+")
_DELAY_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_KINDS = frozenset(
    {
        "publish", "enqueue", "batch", "messages", "topics", "dlq", "logs", "events",
        "schedules", "queues", "flowControl", "globalParallelism", "keys",
    }
)  # fmt: skip
#: How long a deduplication id holds, from the publish that made it (QStash's docs:
#: "published in the last 10 minutes").
DEDUPLICATION_WINDOW_MS = 10 * 60_000


@dataclass(frozen=True)
class PublishConfig:
    """What the fake was configured with for publishing."""

    default_retries: int = 3
    max_message_size: int = 1_048_576


def serves_v2_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is one the message API here serves (any method, whatever
    else is wrong): ``/v2/publish/...``, ``/v2/enqueue/...``, ``/v2/batch``,
    ``/v2/messages...``, ``/v2/topics...``, ``/v2/dlq...``, ``/v2/logs``,
    ``/v2/events``, ``/v2/schedules...``, ``/v2/queues...``, ``/v2/flowControl...``,
    ``/v2/globalParallelism`` and ``/v2/keys...`` under ``base_path``.
    Other v2 paths are left to other mocks in-process."""
    if not raw_path.startswith(base_path + "/v2/"):
        return False
    kind = raw_path[len(base_path) + 4 :].partition("/")[0]
    return kind in _KINDS


@dataclass
class _Publish:
    """One publish, checked, before anything is stored."""

    destination: str
    urls: tuple[tuple[str, str | None], ...]  # (url, endpoint name)
    url_group: str | None
    queue: str | None
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    retries: int
    retry_delay: RetryDelay | None
    #: ``retry_delay`` computed for each retry the message can make.
    retry_delays: tuple[int, ...] | None
    first_attempt_at: int
    not_before: int
    deduplication_id: str | None
    timeout_s: float | None
    #: Each callback's publish (``upstash-callback``, ``upstash-failure-callback``), checked
    #: with an empty body at this publish: an attempt only fills in its body and time.
    callbacks: dict[str, _Publish] = field(default_factory=dict)
    #: The schedule whose firing this is, if one.
    schedule_id: str | None = None
    #: ``Upstash-Flow-Control-Key`` and what ``-Value`` asks, if given.
    flow: tuple[str, FlowLimits] | None = None


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
    checked = _check_publish(
        destination, queue, request.headers, request.body, now, outbox, publish_config
    )
    answer, status = _store_publish(checked, now, outbox, new_id)
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
    answers = [_store_publish(one, now, outbox, new_id)[0] for one in checked]
    return EndpointResponse(200, json.dumps(answers).encode(), token=token)


def _batch_entry(
    entry: object, now: int, outbox: Outbox, publish_config: PublishConfig
) -> _Publish:
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
    return _check_publish(destination, queue, lowered, raw, now, outbox, publish_config)


def check_publish(
    destination: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    *,
    queue: str | None = None,
) -> _Publish:
    """A publish QStash makes itself (a retry from the DLQ, a schedule's firing), checked."""
    return _check_publish(destination, queue, headers, body, now, outbox, publish_config)


def callback_publish(plan: object, body: bytes, now: int) -> _Publish:
    """A callback's publish (``plan``: checked with no body at time 0, at its message's
    publish) with its ``body``, made at ``now``."""
    assert isinstance(plan, _Publish)
    publish = copy.copy(plan)  # dataclasses.replace runs __init__ again: 6x slower
    publish.body = body
    publish.first_attempt_at = plan.first_attempt_at + now
    publish.not_before = plan.not_before + now
    return publish


def callback_headers(
    headers: Sequence[tuple[str, str]], prefix: str, retries: int
) -> tuple[tuple[str, str], ...]:
    """The publish headers of a message's callback (``prefix``: ``upstash-callback`` or
    ``upstash-failure-callback``): every ``<prefix>-<h>`` as ``upstash-<h>`` would be
    (``-Method``, ``-Retries``, ``-Forward-X``, ...), the JSON body's content type, and
    the message's own retries unless the callback names its own."""
    start = prefix + "-"
    derived = [
        ("upstash-" + name[len(start) :], value)
        for name, value in headers
        if name.startswith(start) and len(name) > len(start)
    ]
    if not any(name == "upstash-retries" for name, _ in derived):
        derived.append(("upstash-retries", str(retries)))
    return (("content-type", "application/json"), *derived)


def _check_publish(
    destination: str,
    queue: str | None,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
) -> _Publish:
    """Everything QStash checks of a publish, before anything is stored."""
    urls, url_group = _destination_urls(destination, outbox)
    if len(body) > publish_config.max_message_size:
        raise Refused(
            413,
            f"message size {len(body)} bytes exceeds the limit of "
            f"{publish_config.max_message_size} bytes",
        )
    _check_headers(headers)
    header = dict(headers)
    retries = _retries(header, publish_config.default_retries)
    retry_delay = retry_delays = None
    if "upstash-retry-delay" in header:
        try:
            retry_delay = RetryDelay.parse(header["upstash-retry-delay"])
            retry_delays = retry_delay.delays(retries)
        except ValueError as error:
            raise Refused(400, f"invalid Upstash-Retry-Delay: {error}") from None
    not_before = _not_before(header, now)
    method = _method(header)  # the callbacks' URLs checked too, before their settings
    callbacks = {}
    for prefix in _CALLBACKS:
        if prefix in header:
            try:  # what the callback message will be given is checked now, not at its turn
                callbacks[prefix] = check_publish(
                    header[prefix], callback_headers(headers, prefix, retries), b"", 0,
                    outbox, publish_config,
                )  # fmt: skip
            except Refused as refused:
                raise Refused(400, f"{_spelled(prefix)}: {refused.text}") from None
    return _Publish(
        destination=destination,
        urls=urls,
        url_group=url_group,
        queue=queue,
        method=method,
        headers=tuple(headers),
        body=body,
        retries=retries,
        retry_delay=retry_delay,
        retry_delays=retry_delays,
        first_attempt_at=not_before,
        not_before=not_before,
        deduplication_id=_deduplication_id(header, headers, destination, body),
        timeout_s=_timeout_s(header),
        callbacks=callbacks,
        flow=_flow(header),
    )


def _flow(header: Mapping[str, str]) -> tuple[str, FlowLimits] | None:
    key = header.get("upstash-flow-control-key")
    value = header.get("upstash-flow-control-value")
    if key is None:
        if value is not None:
            raise Refused(400, "Upstash-Flow-Control-Value needs Upstash-Flow-Control-Key")
        return None
    if not key.strip():
        raise Refused(400, "Upstash-Flow-Control-Key is empty: name the key to limit")
    if value is None:
        raise Refused(
            400,
            "Upstash-Flow-Control-Key needs Upstash-Flow-Control-Value, "
            "e.g. parallelism=2, rate=10, period=1m",
        )
    try:
        return key, FlowLimits.parse(value)
    except ValueError as error:
        raise Refused(400, f"invalid Upstash-Flow-Control-Value {value!r}: {error}") from None


def _method(header: Mapping[str, str]) -> str:
    """The delivery method (``Upstash-Method``, any case); the callbacks' URLs checked."""
    method = header.get("upstash-method", "POST").upper()
    if method not in _METHODS:
        raise Refused(
            400,
            f"invalid Upstash-Method {header['upstash-method']!r}: "
            f"want one of {', '.join(sorted(_METHODS))}",
        )
    for name in _CALLBACKS:
        if name in header and url_problem(header[name]) is not None:
            raise Refused(
                400, f"invalid {_spelled(name)} {header[name]!r}: {url_problem(header[name])}"
            )
    return method


def _retries(header: Mapping[str, str], default: int) -> int:
    if "upstash-retries" not in header:
        return default
    raw = header["upstash-retries"].strip()
    number = ascii_int(raw)
    if number is None or number > 100:
        raise Refused(400, f"invalid Upstash-Retries {raw!r}: want an integer 0-100")
    return number


def _not_before(header: Mapping[str, str], now: int) -> int:
    """When the first attempt may be made: ``Upstash-Not-Before`` (unix seconds) wins
    over ``Upstash-Delay``; never before now."""
    if "upstash-not-before" in header:
        raw = header["upstash-not-before"].strip()
        seconds = ascii_int(raw) if len(raw) <= 12 else None
        if seconds is None:
            raise Refused(400, f"invalid Upstash-Not-Before {raw!r}: want unix seconds")
        if "upstash-delay" in header:
            _delay_ms(header["upstash-delay"])  # checked all the same
        return max(now, seconds * 1000)
    if "upstash-delay" in header:
        return now + _delay_ms(header["upstash-delay"])
    return now


def _timeout_s(header: Mapping[str, str]) -> float | None:
    """``Upstash-Timeout``: bare seconds, or a number and a unit."""
    if "upstash-timeout" not in header:
        return None
    raw = header["upstash-timeout"].strip()
    seconds = ascii_int(raw) if len(raw) < 10 else None
    return seconds if seconds is not None else _delay_ms(raw, "Upstash-Timeout") / 1000


def _deduplication_id(
    header: Mapping[str, str], headers: Sequence[tuple[str, str]], destination: str, body: bytes
) -> str | None:
    """``Upstash-Deduplication-Id``, or with content-based deduplication a hash of what
    is delivered: the destination, the body and the forwarded headers."""
    dedup = header.get("upstash-deduplication-id")
    by_content = header.get("upstash-content-based-deduplication", "false").strip().lower()
    if by_content not in ("true", "false"):
        raise Refused(
            400,
            "invalid Upstash-Content-Based-Deduplication "
            f"{header['upstash-content-based-deduplication']!r}: want true or false",
        )
    if dedup is not None or by_content == "false":
        return dedup
    import hashlib

    hashed = hashlib.sha256(destination.encode() + b"\0" + body)
    for name, value in sorted(headers):
        if name.startswith("upstash-forward-") or name == "content-type":
            hashed.update(f"\0{name}:{value}".encode())
    return "content:" + hashed.hexdigest()


def _destination_urls(
    destination: str, outbox: Outbox
) -> tuple[tuple[tuple[str, str | None], ...], str | None]:
    """The URLs a destination stands for, and the URL group's name if it is one."""
    if "://" in destination or destination.startswith(("http:", "https:")):
        problem = url_problem(destination)
        if problem == WANT_URL:  # no scheme or host: it may be meant as a group's name
            problem += ", or a URL group's name"
        if problem is not None:
            raise Refused(400, f"invalid destination {destination!r}: {problem}")
        return ((destination, None),), None
    group = outbox.url_groups.get(destination)
    if group is None:
        known = ", ".join(repr(name) for name in outbox.url_groups) or "none"
        raise Refused(
            404,
            f"destination {destination!r} is neither a URL nor a known URL group "
            f"(URL groups: {known})",
            "unknown_url_group",
        )
    return tuple(group.endpoints), group.name


def _check_headers(headers: Sequence[tuple[str, str]]) -> None:
    """Refuse a header that could not be delivered as sent: a name that is not an HTTP
    token (a blank, a colon), a value with CR, LF or NUL."""
    for name, value in headers:
        if not _HEADER_NAME_RE.fullmatch(name):
            raise Refused(400, f"invalid header name {name!r}: want an HTTP token")
        if _HEADER_VALUE_BAD_RE.search(value):
            raise Refused(400, f"invalid value of header {name!r}: CR, LF or NUL in {value!r}")


def _spelled(name: str) -> str:
    """A lowercase header name as QStash's docs spell it: ``Upstash-Failure-Callback``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _delay_ms(raw: str, header: str = "Upstash-Delay") -> int:
    text = raw.strip()
    if not _DELAY_RE.fullmatch(text):
        raise Refused(
            400, f"invalid {header} {raw!r}: want a number and a unit, e.g. 10s, 5m, 2h, 1d"
        )
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _DELAY_PART_RE.findall(text))


def _store_publish(
    publish: _Publish, now: int, outbox: Outbox, new_id: Callable[[str], str]
) -> tuple[Any, int]:
    """Store a checked publish; its answer and status: 200, as QStash's OpenAPI says, or
    202 for a duplicate, as its deduplication docs say."""
    dedup = publish.deduplication_id
    first = outbox.deduplication.get(dedup) if dedup is not None else None
    if first is not None and now - first.published_at < DEDUPLICATION_WINDOW_MS:
        record = PublishedMessage(
            publish.destination, publish.method, publish.headers, publish.body,
            first.message_ids, first.urls, now, publish.url_group, publish.queue,
            deduplicated=True,
        )  # fmt: skip
        outbox.published.append(record)
        return _publish_answer(record), 202
    ids = store_messages(publish, now, outbox, new_id)
    record = PublishedMessage(
        publish.destination, publish.method, publish.headers, publish.body, tuple(ids),
        tuple(url for url, _ in publish.urls), now, publish.url_group, publish.queue,
    )  # fmt: skip
    outbox.published.append(record)
    if dedup is not None:
        outbox.deduplication[dedup] = record
    return _publish_answer(record), 200


def store_messages(
    publish: _Publish, now: int, outbox: Outbox, new_id: Callable[[str], str]
) -> list[str]:
    """Make and keep one message per destination URL of a checked publish; their ids.
    (What QStash publishes itself, a callback, is stored so: no publish is recorded.)"""
    ids = []
    for url, endpoint_name in publish.urls:
        message_id = new_id("msg")
        delivery = PublishedDelivery(
            new_id("tsk"), message_id, url, publish.retries, now,
            publish.first_attempt_at,
            None if publish.retry_delay is None else publish.retry_delay.text,
            publish.retry_delays,
        )  # fmt: skip
        message = Message(
            message_id, url, publish.method, publish.headers, publish.body, now,
            publish.not_before, delivery, publish.url_group, endpoint_name, publish.queue,
            publish.timeout_s, dict(publish.callbacks), publish.schedule_id,
        )  # fmt: skip
        if publish.flow is not None:
            message.flow_key = publish.flow[0]
            outbox.flow.register(*publish.flow)
        outbox.add(message)
        ids.append(message_id)
    return ids


def _publish_answer(record: PublishedMessage) -> Any:
    dedup = {"deduplicated": True} if record.deduplicated else {}
    if record.url_group is None:
        return {"messageId": record.message_ids[0], **dedup}
    return [
        {"messageId": message_id, "url": url, **dedup}
        for message_id, url in zip(record.message_ids, record.urls, strict=True)
    ]


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
