"""A publish, as QStash takes it: everything it checks of one (the destination, a URL or
a URL group; the headers; delay, retries and their delays, timeout, method, callbacks,
flow control, deduplication), decided before anything is stored, then the messages it
makes, one per destination URL. The message API (``messages``), a batch, a schedule's
firing, a retry from the DLQ and a callback all publish through here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_qstash_tasks._core.engine.retry_delay import RetryDelay
from pytest_qstash_tasks._core.exchange import ascii_int
from pytest_qstash_tasks._core.state.flow_control import FlowLimits
from pytest_qstash_tasks._core.state.outbox import (
    Message,
    Outbox,
    PublishedDelivery,
    PublishedMessage,
)
from pytest_qstash_tasks._core.state.workflows import CALL_TYPES, Invoker, RunMessage

from .refusals import WANT_URL, Refused, url_problem

__all__ = [
    "DEDUPLICATION_WINDOW_MS",
    "Publish",
    "PublishConfig",
    "callback_headers",
    "callback_publish",
    "check_publish",
    "delay_ms",
    "publish_again",
    "publish_answer",
    "store_messages",
    "store_publish",
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
#: How long a deduplication id holds, from the publish that made it (QStash's docs:
#: "published in the last 10 minutes").
DEDUPLICATION_WINDOW_MS = 10 * 60_000


@dataclass(frozen=True)
class PublishConfig:
    """What the fake was configured with for publishing."""

    default_retries: int = 3
    max_message_size: int = 1_048_576


@dataclass
class Publish:
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
    callbacks: dict[str, Publish] = field(default_factory=dict)
    #: The schedule whose firing this is, if one.
    schedule_id: str | None = None
    #: ``Upstash-Flow-Control-Key`` and what ``-Value`` asks, if given.
    flow: tuple[str, FlowLimits] | None = None
    #: The workflow run it belongs to (``Upstash-Workflow-RunId``), whether it starts it
    #: (``Upstash-Workflow-Init: true``) and its ``Upstash-Workflow-CallType``.
    workflow: tuple[str, bool, str] | None = None
    #: The run that invokes the run this publish starts (``Upstash-Workflow-Invoke``).
    invoker: Invoker | None = None


def check_publish(
    destination: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    *,
    queue: str | None = None,
) -> Publish:
    """A publish QStash makes itself (a retry from the DLQ, a schedule's firing), checked."""
    return _check_publish(destination, queue, headers, body, now, outbox, publish_config)


def callback_publish(plan: object, body: bytes, now: int) -> Publish:
    """A callback's publish (``plan``: checked with no body at time 0, at its message's
    publish) with its ``body``, made at ``now``."""
    assert isinstance(plan, Publish)
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
) -> Publish:
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
    given = headers
    headers, body, workflow, invoker = _workflow_parts(headers, header, body, outbox)
    if headers is not given:  # a run's settings added
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
    return Publish(
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
        workflow=workflow,
        invoker=invoker,
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


def _workflow_parts(
    headers: Sequence[tuple[str, str]], header: Mapping[str, str], body: bytes, outbox: Outbox
) -> tuple[Sequence[tuple[str, str]], bytes, tuple[str, bool, str] | None, Invoker | None]:
    """A publish as Upstash Workflow's runs take it: the run it belongs to, the run's
    settings added to a later step (``WF_TriggerOnConfig``), and an invoke's invoker and
    payload (the body inside its JSON). A publish of no run is left as it is (``headers``
    returned as given)."""
    workflow = _workflow(header, outbox)
    if workflow is not None and "WF_TriggerOnConfig" in header.get("upstash-feature-set", ""):
        headers = _with_run_config(headers, header, workflow, outbox)
    invoker = None
    if header.get("upstash-workflow-invoke", "").strip().lower() == "true":
        invoker, body = _invoked(workflow, body)
    return headers, body, workflow, invoker


def _workflow(header: Mapping[str, str], outbox: Outbox) -> tuple[str, bool, str] | None:
    run_id = header.get("upstash-workflow-runid")
    if run_id is None:
        return None
    if not run_id.strip():
        raise Refused(400, "Upstash-Workflow-RunId is empty")
    call_type = header.get("upstash-workflow-calltype", "step")
    if call_type not in CALL_TYPES:
        raise Refused(
            400, f"invalid Upstash-Workflow-CallType {call_type!r}: one of {', '.join(CALL_TYPES)}"
        )
    init = header.get("upstash-workflow-init", "false").strip().lower() == "true"
    run = outbox.runs.get(run_id)
    failure_function = call_type == "failureCall" and run is not None and run.state == "RUN_FAILED"
    if run is not None and run.over and not init and not failure_function:
        # What both Workflow SDKs read as "tried to append to a cancelled workflow".
        ended = "was cancelled" if run.state == "RUN_CANCELED" else f"has ended ({run.state})"
        raise Refused(400, f"workflow run {run_id!r} {ended}: nothing more can be published to it")
    return run_id, init, call_type


#: What a run's first message sets for the whole run (``WF_TriggerOnConfig``).
_RUN_CONFIG = (
    "upstash-retries", "upstash-retry-delay", "upstash-flow-control-key",
    "upstash-flow-control-value", "upstash-failure-callback",
)  # fmt: skip
_RUN_CONFIG_PREFIXES = ("upstash-failure-callback-", "upstash-forward-")


def run_config(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """What a run's first message sets for the whole run."""
    return tuple(
        (name, value)
        for name, value in headers
        if name in _RUN_CONFIG or name.startswith(_RUN_CONFIG_PREFIXES)
    )


def _with_run_config(
    headers: Sequence[tuple[str, str]],
    header: Mapping[str, str],
    workflow: tuple[str, bool, str],
    outbox: Outbox,
) -> Sequence[tuple[str, str]]:
    """A later step of a run whose SDK sends its settings once, at the trigger
    (``@upstash/workflow`` 1.x: ``Upstash-Feature-Set: WF_TriggerOnConfig``, and its
    steps carry no retries, failure callback or forwarded headers): the run's settings,
    where the message sets none of its own. What is no step keeps its own: a call to a
    third party, the call's result coming back (its callback's settings are the call's),
    the failure function."""
    run = outbox.runs.get(workflow[0])
    if run is None or workflow[1] or workflow[2] != "step":
        return headers
    added = [(name, value) for name, value in run.config if name not in header]
    return (*headers, *added) if added else headers


def _invoked(workflow: tuple[str, bool, str] | None, body: bytes) -> tuple[Invoker, bytes]:
    """An invoke's publish (``context.invoke``): its body names the invoking run and the
    step the outcome completes, and holds the invoked run's initial payload."""
    if workflow is None or not workflow[1]:
        raise Refused(
            400,
            "Upstash-Workflow-Invoke starts a run: it needs Upstash-Workflow-RunId and "
            "Upstash-Workflow-Init: true",
        )
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    headers = request.get("headers") if isinstance(request, dict) else None
    if not (
        isinstance(request, dict)
        and isinstance(request.get("workflowUrl"), str)
        and isinstance(request.get("workflowRunId"), str)
        and isinstance(request.get("step"), dict)
        and isinstance(request.get("body", ""), str)
        and isinstance(headers, dict)
        and all(
            isinstance(values, list) and all(isinstance(value, str) for value in values)
            for values in headers.values()
        )
    ):
        raise Refused(
            400,
            "an invoke's body is the JSON the Workflow SDKs send: workflowUrl, "
            "workflowRunId, headers (name: [values]), step, and the payload as body",
        )
    # Checked now: the outcome is published when the run ends, inside a move of the clock.
    problem = url_problem(request["workflowUrl"])
    if problem is not None:
        raise Refused(400, f"an invoke's workflowUrl {request['workflowUrl']!r}: {problem}")
    given = tuple((name.lower(), value) for name, values in headers.items() for value in values)
    try:
        _check_headers(given)
    except Refused as refused:
        raise Refused(400, f"an invoke's headers: {refused.text}") from None
    invoker = Invoker(request["workflowUrl"], request["workflowRunId"], given, request["step"])
    return invoker, request.get("body", "").encode()


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
            delay_ms(header["upstash-delay"])  # checked all the same
        return max(now, seconds * 1000)
    if "upstash-delay" in header:
        return now + delay_ms(header["upstash-delay"])
    return now


def _timeout_s(header: Mapping[str, str]) -> float | None:
    """``Upstash-Timeout``: bare seconds, or a number and a unit."""
    if "upstash-timeout" not in header:
        return None
    raw = header["upstash-timeout"].strip()
    seconds = ascii_int(raw) if len(raw) < 10 else None
    return seconds if seconds is not None else delay_ms(raw, "Upstash-Timeout") / 1000


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

    import hashlib  # with the first publish that asks for it: 2.5 ms of the command's start

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


def delay_ms(raw: str, header: str = "Upstash-Delay") -> int:
    """A duration such as ``10s``, ``1h30m``, ``7d`` in ms, or a 400 naming ``header``."""
    text = raw.strip()
    if not _DELAY_RE.fullmatch(text):
        raise Refused(
            400, f"invalid {header} {raw!r}: want a number and a unit, e.g. 10s, 5m, 2h, 1d"
        )
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _DELAY_PART_RE.findall(text))


def store_publish(
    publish: Publish, now: int, outbox: Outbox, new_id: Callable[[str], str]
) -> tuple[Any, int]:
    """Store a checked publish; its answer and status: 200, as QStash's OpenAPI says, or
    202 for a duplicate, as its deduplication docs say."""
    dedup = publish.deduplication_id
    first = outbox.deduplication.get(dedup) if dedup is not None else None
    repeated: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    run = None if publish.workflow is None else outbox.runs.get(publish.workflow[0])
    if run is not None and publish.workflow is not None and publish.workflow[1]:
        # A run id already taken: the run goes on as it is (the SDKs read
        # "deduplicated" as "workflow-run-already-exists").
        repeated = (run.messages[0].message_id,), (run.url,)
    elif first is not None and now - first.published_at < DEDUPLICATION_WINDOW_MS:
        repeated = first.message_ids, first.urls
    if repeated is not None:
        record = PublishedMessage(
            publish.destination, publish.method, publish.headers, publish.body,
            *repeated, now, publish.url_group, publish.queue, deduplicated=True,
        )  # fmt: skip
        outbox.published.append(record)
        return publish_answer(record), 202
    ids = store_messages(publish, now, outbox, new_id)
    record = PublishedMessage(
        publish.destination, publish.method, publish.headers, publish.body, tuple(ids),
        tuple(url for url, _ in publish.urls), now, publish.url_group, publish.queue,
    )  # fmt: skip
    outbox.published.append(record)
    if dedup is not None:
        outbox.deduplication[dedup] = record
    return publish_answer(record), 200


def store_messages(
    publish: Publish, now: int, outbox: Outbox, new_id: Callable[[str], str]
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
        if publish.workflow is not None:
            _join_run(message, publish.workflow, publish.invoker, now, outbox)
        outbox.add(message)
        ids.append(message_id)
    return ids


def _join_run(
    message: Message,
    workflow: tuple[str, bool, str],
    invoker: Invoker | None,
    now: int,
    outbox: Outbox,
) -> None:
    """The message is the run's next (its first makes the run)."""
    run_id, _, call_type = workflow
    message.run_id, message.call_type = run_id, call_type
    run = outbox.runs.get(run_id)
    if run is None:
        label = dict(message.headers).get("upstash-label")
        run = outbox.runs.start(run_id, message.url, now, label)
        run.invoker = invoker
        run.config = run_config(message.headers)
    run.messages.append(RunMessage(message.message_id, message.body, call_type, now, message.url))


def publish_again(
    message: Message,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> str:
    """Publish ``message`` again, as new (its settings as first sent: a retry from the
    DLQ, a failure function called again); the new message's id."""
    publish = check_publish(message.url, message.headers, message.body, now, outbox, publish_config)
    (message_id,) = store_messages(publish, now, outbox, new_id)
    return message_id


def publish_answer(record: PublishedMessage) -> Any:
    dedup = {"deduplicated": True} if record.deduplicated else {}
    if record.url_group is None:
        return {"messageId": record.message_ids[0], **dedup}
    return [
        {"messageId": message_id, "url": url, **dedup}
        for message_id, url in zip(record.message_ids, record.urls, strict=True)
    ]
