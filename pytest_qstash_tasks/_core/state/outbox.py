"""Published messages, their deliveries and the URL groups they go to. Pure data, no HTTP.

A publish makes one message per destination (a URL, or each endpoint of a URL group),
and each message one delivery: a task in the ``TaskStore`` whose state follows the
clock (``lifecycle.Delivery``). Each delivery's next attempt waits on the fake's
``Agenda``; the engine runs it when the clock reaches it and records here what it met
(``attempted``), which schedules the next attempt, if any.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .agenda import Agenda
from .flow_control import FlowControl, FlowLimits
from .lifecycle import QUEUED, STEP_MS, Delivery
from .logs import MessageLog
from .queues import QueueBook
from .store import TaskStore
from .workflows import RunBook

__all__ = [
    "ACTIVE_MS",
    "Message",
    "Outbox",
    "PublishedDelivery",
    "PublishedMessage",
    "UrlGroupState",
    "v2_backoff_ms",
]

#: How long each attempt of a published message shows ``active`` (ms).
ACTIVE_MS = 500


def v2_backoff_ms(retried: int) -> int:
    """QStash's default delay before a published message's next attempt, after
    ``retried`` retries (1 before the first retry): ``min(86400, e ** (2.5 * n))`` s."""
    return int(min(86_400.0, math.exp(min(2.5 * retried, 50.0))) * 1000)


@dataclass(frozen=True)
class PublishedMessage:
    """One publish the code under test sent: a request to ``/v2/publish`` or
    ``/v2/enqueue``, or one entry of ``/v2/batch``.

    ``destination`` is as written: a URL, or a URL group's name (then ``url_group``
    is that name and ``urls`` its endpoints). ``method`` is the delivery method
    (``Upstash-Method``, POST by default). ``headers`` are the publish's headers,
    names lowercase; ``body`` its raw body. ``message_ids`` holds one id per
    destination URL, in the order of ``urls``; a deduplicated publish holds the ids
    of the messages it repeats (``deduplicated``). ``published_at`` is the fake
    clock's time (unix ms).
    """

    destination: str
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    message_ids: tuple[str, ...]
    urls: tuple[str, ...]
    published_at: int
    url_group: str | None = None
    queue: str | None = None
    deduplicated: bool = False

    @property
    def message_id(self) -> str:
        """The one message id of a publish to a URL (a URL group's publish has many:
        see ``message_ids``)."""
        if len(self.message_ids) != 1:
            raise ValueError(
                f"the publish to URL group {self.destination!r} made "
                f"{len(self.message_ids)} messages: read message_ids"
            )
        return self.message_ids[0]

    def header(self, name: str) -> str | None:
        """The publish's header ``name`` (any case), or ``None``."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    @property
    def forwarded_headers(self) -> dict[str, str]:
        """What the destination receives besides QStash's own headers: each
        ``Upstash-Forward-<Name>`` as ``<Name>``, and ``Content-Type``."""
        return forwarded_headers(self.headers)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def describe(self) -> str:
        """One line: method, destination, body (cut), ids."""
        body = self.body[:60].decode("utf-8", "replace") + ("..." if len(self.body) > 60 else "")
        ids = ", ".join(self.message_ids)
        dedup = " (deduplicated)" if self.deduplicated else ""
        return f"{self.method} {self.destination} body={body!r} -> {ids}{dedup}"


def forwarded_headers(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``Upstash-Forward-<Name>`` as ``<Name>`` (capitalised per word), and Content-Type."""
    forwarded: dict[str, str] = {}
    for name, value in headers:
        if name == "content-type":
            forwarded["Content-Type"] = value
        elif name.startswith("upstash-forward-") and len(name) > len("upstash-forward-"):
            plain = name[len("upstash-forward-") :]
            forwarded["-".join(part.capitalize() for part in plain.split("-"))] = value
    return forwarded


class PublishedDelivery(Delivery):
    """A published message's delivery: attempts run as the clock reaches them."""

    def __init__(
        self,
        task_id: str,
        message_id: str,
        url: str,
        max_retry: int,
        created_at: int,
        first_attempt_at: int,
        retry_delay: str | None,
        retry_delays: Sequence[int] | None,
    ) -> None:
        self.task_id = task_id
        self.message_id = message_id
        self.url = url
        self.max_retry = max_retry
        self.created_at = created_at
        self.active_ms = ACTIVE_MS
        #: The ``Upstash-Retry-Delay`` expression, as sent, if there was one.
        self.retry_delay = retry_delay
        #: ``retry_delay`` computed at publish for each retry (``retry_delays[n - 1]``
        #: before retry ``n``): an attempt computes nothing that can fail.
        self.retry_delays = retry_delays
        #: When each attempt starts: those made, then the one due next (if any).
        self.starts = [max(first_attempt_at, created_at + 2 * STEP_MS)]
        #: The ``error`` of each attempt made (``None``: delivered).
        self.errors: list[str | None] = []
        self._canceled_at: int | None = None
        #: The message it delivers (set when the outbox keeps it): an attempt reaches it
        #: without a lookup among every message.
        self.message: Message | None = None
        #: Let go by its flow-control key, whose place it took then (``flow_control``).
        self.flow_admitted = False

    def attempt_starts(self) -> list[int]:
        return self.starts

    def outcome_errors(self) -> Sequence[str | None]:
        return self.errors

    @property
    def canceled_at(self) -> int | None:
        return self._canceled_at

    @property
    def settled(self) -> bool:
        """Whether the delivery is over: delivered, failed or cancelled."""
        if self._canceled_at is not None:
            return True
        if not self.errors:
            return False
        return self.errors[-1] is None or len(self.errors) == self.max_retry + 1

    def settled_by(self, now: int) -> bool:
        """Whether the delivery is over at ``now`` (its last attempt finished)."""
        if self._canceled_at is not None:
            return now >= self._canceled_at
        return self.settled and now >= self.starts[-1] + self.active_ms

    def finished_at(self) -> int | None:
        if self._canceled_at is not None:
            return self._canceled_at
        if self.starts[-1] == QUEUED:
            return None  # waiting in a queue or for its flow-control key: not known yet
        # Not over yet: when the next attempt ends (the next time it may be).
        return self.starts[-1] + self.active_ms

    def backoff_ms(self, retried: int) -> int:
        """The wait before the next attempt after ``retried`` retries (1 before the first
        retry): the ``Upstash-Retry-Delay`` expression (over ``retried - 1``: QStash counts
        from 0 there) or the default backoff."""
        if self.retry_delays is not None:
            return self.retry_delays[retried - 1]
        return v2_backoff_ms(retried)

    def attempt(self, error: str | None) -> int | None:
        """Record what the attempt due now met; returns when the next is due, if any.
        The next time is computed before anything is recorded: whatever it raised, the
        delivery would be left as it was, never half-updated."""
        retried = len(self.errors) + 1
        due = None
        if error is not None and retried <= self.max_retry:
            due = self.starts[-1] + self.active_ms + self.backoff_ms(retried)
            self.starts.append(due)
        self.errors.append(error)
        return due


@dataclass
class Message:
    """One published message as QStash keeps it until its delivery is over."""

    message_id: str
    url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created_at: int
    not_before: int
    delivery: PublishedDelivery
    url_group: str | None = None
    endpoint_name: str | None = None
    queue: str | None = None
    #: ``Upstash-Timeout``: how long a receiver may take, in seconds, if the publish said.
    timeout_s: float | None = None
    #: Its callbacks' publishes, checked at its own (``upstash-callback`` and
    #: ``upstash-failure-callback``; the message API's type, opaque here).
    callbacks: dict[str, object] = field(default_factory=dict, repr=False)
    #: The schedule whose firing made it, if one (``Upstash-Schedule-Id``).
    schedule_id: str | None = None
    #: The queue place it keeps taken while it runs: (queue, the id of the enqueued
    #: message the place is for: itself, or the message whose callback it is).
    queue_place: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    #: Its ``Upstash-Flow-Control-Key``, if it has one.
    flow_key: str | None = None
    #: The workflow run it belongs to, if one, and what it is in it (``callType``).
    run_id: str | None = None
    call_type: str = "step"
    _log_fields: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def log_fields(self) -> dict[str, Any]:
        """What each of the message's log entries carries besides its state (made once:
        a message's entries all carry the same)."""
        if self._log_fields is not None:
            return self._log_fields
        fields: dict[str, Any] = {"method": self.method, "maxRetries": self.delivery.max_retry}
        for key, value in (
            ("topicName", self.url_group),
            ("endpointName", self.endpoint_name),
            ("queueName", self.queue),
            ("scheduleId", self.schedule_id),
            ("label", _header(self.headers, "upstash-label")),
        ):
            if value:
                fields[key] = value
        self._log_fields = fields
        return fields

    def to_json(self) -> dict[str, Any]:
        """The message as ``GET /v2/messages/{messageId}`` answers it."""
        header: dict[str, list[str]] = {}
        for name, value in forwarded_headers(self.headers).items():
            header.setdefault(name, []).append(value)
        answer: dict[str, Any] = {
            "messageId": self.message_id,
            "url": self.url,
            "method": self.method,
            "header": header,
            "maxRetries": self.delivery.max_retry,
            "notBefore": self.not_before,
            "createdAt": self.created_at,
            "callerIP": "127.0.0.1",
        }
        try:
            answer["body"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            answer["bodyBase64"] = base64.b64encode(self.body).decode("ascii")
        optional = {
            "topicName": self.url_group,
            "endpointName": self.endpoint_name,
            "queueName": self.queue,
            "scheduleId": self.schedule_id,
            "retryDelayExpression": self.delivery.retry_delay,
        }
        answer.update({key: value for key, value in optional.items() if value})
        answer.update(publish_fields(self.headers))
        return answer


def publish_fields(headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """What a message's (or a schedule's) JSON echoes of its publish headers: ``label``
    and ``labels``, ``callback``, ``failureCallback``, their forwarded headers, and the
    flow-control fields; only those sent."""
    answer: dict[str, Any] = {}
    for key, name in (
        ("label", "upstash-label"),
        ("callback", "upstash-callback"),
        ("failureCallback", "upstash-failure-callback"),
    ):
        value = _header(headers, name)
        if value:
            answer[key] = value
    label = _header(headers, "upstash-label")
    if label:
        answer["labels"] = [part.strip() for part in label.split(",") if part.strip()]
    for key, prefix in (
        ("callbackHeader", "upstash-callback-forward-"),
        ("failureCallbackHeader", "upstash-failure-callback-forward-"),
    ):
        given = _prefixed(headers, prefix)
        if given:
            answer[key] = given
    answer.update(_flow_control(headers))
    return answer


def _prefixed(headers: Sequence[tuple[str, str]], prefix: str) -> dict[str, list[str]]:
    """The headers under ``prefix``, as ``{Name: [values]}`` (the name capitalised)."""
    found: dict[str, list[str]] = {}
    for name, value in headers:
        if name.startswith(prefix) and len(name) > len(prefix):
            plain = "-".join(part.capitalize() for part in name[len(prefix) :].split("-"))
            found.setdefault(plain, []).append(value)
    return found


def _flow_control(headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``flowControlKey`` and the limits of ``Upstash-Flow-Control-Value`` (``period`` in
    seconds, given with a rate), as QStash's message JSON carries them."""
    key = _header(headers, "upstash-flow-control-key")
    if not key:
        return {}
    fields: dict[str, Any] = {"flowControlKey": key}
    try:  # checked at publish; a schedule's too
        limits = FlowLimits.parse(_header(headers, "upstash-flow-control-value") or "")
    except ValueError:
        return fields
    if limits.parallelism:
        fields["parallelism"] = limits.parallelism
    if limits.rate:
        fields["rate"], fields["period"] = limits.rate, limits.period_s
    return fields


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


@dataclass
class UrlGroupState:
    """A URL group (formerly "topic") as the fake keeps it: a name and its endpoints."""

    name: str
    created_at: int
    updated_at: int
    #: ``(url, name)`` pairs, in the order added.
    endpoints: list[tuple[str, str | None]] = field(default_factory=list)

    def upsert(self, url: str, name: str | None, now: int) -> None:
        """Add an endpoint, or update the one with the same URL or name."""
        for index, (old_url, old_name) in enumerate(self.endpoints):
            if old_url == url or (name and old_name == name):
                self.endpoints[index] = (url, name)
                break
        else:
            self.endpoints.append((url, name))
        self.updated_at = now

    def remove(self, url: str | None, name: str | None, now: int) -> None:
        """Remove the endpoints with that URL or name (none there: nothing changes but
        the update time, as QStash's own answer does not say either)."""
        self.endpoints = [
            (u, n)
            for u, n in self.endpoints
            if not ((url is not None and u == url) or (name is not None and n == name))
        ]
        self.updated_at = now

    def to_json(self) -> dict[str, Any]:
        """The group as ``GET /v2/topics/{name}`` answers it."""
        return {
            "name": self.name,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "endpoints": [
                {"url": url, **({"name": name} if name else {})} for url, name in self.endpoints
            ],
        }


class Outbox:
    """The published messages, the URL groups and the deduplication ids. Deliveries'
    tasks go into the fake's ``TaskStore``, their attempts onto its ``Agenda``.

    It takes no lock of its own: the fake holds its lock around every use.
    """

    def __init__(self, store: TaskStore, agenda: Agenda, log: MessageLog) -> None:
        self._store = store
        self._agenda = agenda
        self.log = log
        self.published: list[PublishedMessage] = []
        self.messages: dict[str, Message] = {}
        self.url_groups: dict[str, UrlGroupState] = {}
        #: Deduplication id -> the publish it made first.
        self.deduplication: dict[str, PublishedMessage] = {}
        #: The queues, whose messages wait their turn before their first attempt.
        self.queues = QueueBook(agenda)
        #: The flow-control keys, whose messages' attempts wait for room.
        self.flow = FlowControl(agenda, ACTIVE_MS)
        #: The Upstash Workflow runs, whose messages carry the run so far.
        self.runs = RunBook()

    def add(self, message: Message) -> None:
        """Keep a new message and schedule its first attempt."""
        self.messages[message.message_id] = message
        message.delivery.message = message
        self._store.add_simulated(message.delivery)
        self._write(message, message.created_at, "CREATED")
        if message.queue is None:
            self._agenda.push(message.delivery.starts[0], message.delivery)
        else:
            self.queues.enqueue(message, message.created_at)

    def add_failed(self, message: Message, error: str) -> None:
        """Keep a message whose every attempt already met ``error``: its delivery's
        attempts are recorded as they would have run, nothing goes on the agenda (a DLQ
        entry given to the fake, not earned: ``qstash_tasks.dlq.add``)."""
        self.messages[message.message_id] = message
        delivery = message.delivery
        delivery.message = message
        self._store.add_simulated(delivery)
        self._write(message, message.created_at, "CREATED")
        while not delivery.settled:
            self.starting(delivery)
            self.attempted(delivery, error, schedule=False)

    def starting(self, delivery: PublishedDelivery) -> None:
        """The attempt due now starts (its log entry: ``ACTIVE``)."""
        assert delivery.message is not None  # kept by add()
        self._write(delivery.message, delivery.starts[-1], "ACTIVE")

    def attempted(
        self, delivery: PublishedDelivery, error: str | None, *, schedule: bool = True
    ) -> None:
        """Record what the attempt just made met, and schedule the next, if any (unless
        ``schedule`` is false). Its log entries are timed when the attempt ends, as the
        task shows it."""
        ends = delivery.starts[-1] + delivery.active_ms
        next_due = delivery.attempt(error)
        message = delivery.message
        assert message is not None  # kept by add()
        if error is None:
            self._write(message, ends, "DELIVERED")
        elif next_due is None:
            self._write(message, ends, "FAILED", error=error)
        else:
            self._write(message, ends, "ERROR", error=error)
            self._write(message, ends, "RETRY", error=error, nextDeliveryTime=next_due)
        if next_due is not None and schedule:
            self._agenda.push(next_due, delivery)
        self._store.version = object()

    def release(self, delivery: PublishedDelivery) -> None:
        """Give back the queue place a message whose delivery is over kept taken (called
        once the callbacks of its last attempt are made: they keep it until theirs are)."""
        message = delivery.message
        if message is not None and message.queue_place is not None and delivery.settled:
            self.queues.settled(message, delivery.starts[-1] + delivery.active_ms)

    def _write(self, message: Message, time: int, state: str, **fields: Any) -> None:
        shared = message.log_fields()  # one dict for the message's plain entries
        kept = {**shared, **fields} if fields else shared
        self.log.write(time, message.message_id, state, message.url, kept, message.flow_key)

    def live(self, message_id: str, now: int) -> Message | None:
        """The message, while QStash still keeps it (its delivery not over at ``now``)."""
        message = self.messages.get(message_id)
        if message is None or message.delivery.settled_by(now):
            return None
        return message

    def cancel(self, message_ids: Sequence[str] | None, now: int) -> list[str]:
        """Cancel the given messages (``None``: every one) still kept; returns the ids
        cancelled. A cancelled message's attempts stop; its task shows ``canceled``."""
        candidates = self.messages if message_ids is None else dict.fromkeys(message_ids)
        cancelled = []
        for message_id in candidates:
            message = self.live(message_id, now)
            if message is not None:
                message.delivery._canceled_at = now
                cancelled.append(message_id)
                if message.queue_place is not None:
                    self.queues.settled(message, now)
                elif message.delivery.starts[0] == QUEUED:
                    self.queues.withdraw(message)
                self.log.drop_after(message_id, now)  # an outcome the cancel overtook
                self._write(message, now, "CANCEL_REQUESTED")
                self._write(message, now, "CANCELED")
        if cancelled:
            self._store.version = object()
        return cancelled

    def clear(self) -> None:
        """Forget every message and group (the fake clears its agenda itself)."""
        self.published.clear()
        self.messages.clear()
        self.url_groups.clear()
        self.deduplication.clear()
        self.queues.clear()
        self.flow.clear()
        self.runs.clear()


#: Makes a fresh QStash-shaped id with a prefix (``msg``, ``tsk``).
NewId = Callable[[str], str]
