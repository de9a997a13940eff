"""Queues, as QStash serves them: ``POST /v2/queues`` (an upsert: ``queueName``,
``parallelism``, ``paused``), ``GET /v2/queues`` (a plain array), ``GET``/``DELETE
/v2/queues/{queueName}`` and ``POST /v2/queues/{queueName}/pause|resume``. Messages come
in by ``/v2/enqueue`` (``messages``); the line they wait in is ``state/queues.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.queues import Queue

from .refusals import NAME_RE, Refused, allow, json_body

__all__ = ["is_queues_path", "respond"]

_PREFIX = "/v2/queues"
_UPSERT_KEYS = frozenset({"queueName", "parallelism", "paused"})


def is_queues_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/queues`` or under it."""
    rest = raw_path[len(base_path) :]
    return rest == _PREFIX or rest.startswith(_PREFIX + "/")


def respond(request: Request, now: int, outbox: Outbox, rest: Sequence[str]) -> tuple[int, Any]:
    """The status and JSON (``None``: an empty body) of one request under ``/v2/queues``;
    ``rest`` is the path after it, split at ``/``. Raises ``Refused``."""
    book = outbox.queues
    if not rest:
        allow(request, "GET", "POST")
        if request.method == "GET":
            return 200, [queue.to_json() for queue in book]
        name, parallelism, paused = _upsert(request)
        book.upsert(name, parallelism, paused, now)
        return 200, None
    if len(rest) == 2 and rest[1] in ("pause", "resume"):
        allow(request, "POST")
        book.set_paused(_known(outbox, rest[0]), rest[1] == "pause", now)
        return 200, None
    if len(rest) != 1:
        raise Refused(404, f"no such queue path {request.raw_path!r}", "unknown_path")
    allow(request, "GET", "DELETE")
    queue = _known(outbox, rest[0])
    if request.method == "GET":
        return 200, queue.to_json()
    # What has not started yet is cancelled (it shows so: nothing the app enqueued
    # vanishes): the messages waiting in line, and those let go whose first attempt is
    # still to come. What is under way runs on, in no queue.
    unstarted = [
        message_id
        for message_id in queue.active
        if outbox.messages[message_id].delivery.starts[0] > now
    ]
    waiting = [message.message_id for message in book.remove(queue.name)]
    outbox.cancel(unstarted + waiting, now)
    return 200, None


def _known(outbox: Outbox, raw_name: str) -> Queue:
    name = unquote(raw_name)
    queue = outbox.queues.get(name)
    if queue is None:
        known = ", ".join(repr(q.name) for q in outbox.queues) or "none"
        raise Refused(404, f"queue {name!r} not found (queues: {known})")
    return queue


def _upsert(request: Request) -> tuple[str, int, bool]:
    """The queue's name, parallelism and paused flag of ``POST /v2/queues``'s body."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise Refused(400, 'the body must be a JSON object: {"queueName": ..., "parallelism": 1}')
    unknown = sorted(set(body) - _UPSERT_KEYS)
    if unknown:
        raise Refused(400, f"unknown field(s) {unknown}: a queue takes {sorted(_UPSERT_KEYS)}")
    name = body.get("queueName")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Refused(
            400,
            f"invalid queueName {name!r}: 1-256 letters, digits, '.', '_', '-'",
        )
    parallelism = body.get("parallelism", 1)
    if type(parallelism) is not int or parallelism < 1:
        raise Refused(400, f"invalid parallelism {parallelism!r}: want a whole number >= 1")
    paused = body.get("paused", False)
    if type(paused) is not bool:
        raise Refused(400, f"invalid paused {paused!r}: want true or false")
    return name, parallelism, paused
