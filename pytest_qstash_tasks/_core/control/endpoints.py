"""The control endpoints of the standalone fake: its Python API as JSON over HTTP.

Under ``/_fake/``, a prefix no QStash path starts with, so a client of the real API
never meets them. A transport hands every request to ``ControlPlane.dispatch`` first;
``None`` means the request is not a control request. With a token set, every endpoint
but ``GET /_fake/health`` asks for it as QStash does (``Authorization: Bearer``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from pytest_qstash_tasks._core.engine.destinations import Destination
from pytest_qstash_tasks._core.errors import QStashTasksRunawayError
from pytest_qstash_tasks._core.exchange import JSON_HEADERS, Reply, Request, error_body, parse_json

if TYPE_CHECKING:
    from pytest_qstash_tasks._core.engine.receivers import DeliveryAttempt
    from pytest_qstash_tasks._core.fake import QStashTasksFake
    from pytest_qstash_tasks._core.state.calls import RecordedCall
    from pytest_qstash_tasks._core.state.faults import Fault
    from pytest_qstash_tasks._core.state.outbox import PublishedMessage

    from .data_file import DataFile

__all__ = [
    "CONTROL_PREFIX",
    "FAULT_KINDS",
    "ControlPlane",
    "call_json",
    "plan_fault",
    "published_json",
]

#: Where the control endpoints live.
CONTROL_PREFIX = "/_fake/"

_Handler = Callable[["ControlPlane", "dict[str, str]", Any], "tuple[int, object]"]
#: (method, path as documented, its pattern, handler)
_ROUTES: list[tuple[str, str, re.Pattern[str], _Handler]] = []


def _route(method: str, template: str) -> Callable[[_Handler], _Handler]:
    """Register ``handler`` for ``method`` on ``template`` (``/messages/{messageId}``)."""
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + r"\Z"

    def register(handler: _Handler) -> _Handler:
        _ROUTES.append((method, template, re.compile(pattern), handler))
        return handler

    return register


class ControlError(Exception):
    """A control request the fake refuses: its status and text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class ControlPlane:
    """Answers ``/_fake/...`` requests by calling ``fake``'s own API."""

    def __init__(self, fake: QStashTasksFake, token: str | None) -> None:
        self.fake = fake
        self.token = token
        #: What the fake was loaded with (``--data``): what a reset returns to.
        self.data: DataFile | None = None
        #: What a reset does again after forgetting everything (``--deliver``'s script).
        self.after_reset: list[Callable[[], None]] = []

    def dispatch(self, request: Request) -> Reply | None:
        """The reply to a control request; ``None`` for any other request."""
        path = request.raw_path
        if not path.startswith(CONTROL_PREFIX):
            return None
        if path == CONTROL_PREFIX + "ui" and request.method == "GET":
            from .ui import page

            return page()  # the page holds no data: what it shows, it asks with the token
        try:
            status, payload = self._answer(request, path[len(CONTROL_PREFIX) - 1 :])
        except ControlError as error:
            return Reply("answer", error.status, JSON_HEADERS, error_body(str(error)))
        body = json.dumps(payload).encode()
        return Reply("answer", status, JSON_HEADERS, body)

    def _answer(self, request: Request, path: str) -> tuple[int, object]:
        allowed = []
        for method, _, pattern, handler in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            if path != "/health":
                self._check_token(request)
            args = {**dict(parse_qsl(request.query)), **match.groupdict()}
            return handler(self, args, self._json(request, method))
        if allowed:
            raise ControlError(
                405, f"{request.method} /_fake{path} is not allowed; use {' or '.join(allowed)}"
            )
        listed = ", ".join(f"{method} /_fake{template}" for method, template, _, _ in _ROUTES)
        raise ControlError(404, f"no control endpoint /_fake{path}; there are {listed}")

    def _check_token(self, request: Request) -> None:
        if self.token is None:
            return
        if request.header("authorization") != f"Bearer {self.token}":
            raise ControlError(401, "the control endpoints take the fake's token (Bearer)")

    @staticmethod
    def _json(request: Request, method: str) -> Any:
        if method != "POST":
            return None
        if not request.body.strip():
            return {}
        try:
            return parse_json(request.body)
        except ValueError as error:  # UnicodeDecodeError is one
            raise ControlError(400, f"the body is not JSON: {error}") from None


def call_json(call: RecordedCall) -> dict[str, Any]:
    """One recorded call as JSON."""
    return {
        "method": call.method,
        "url": call.url,
        "status": call.status,
        "messageId": call.message_id,
        "cursor": call.cursor,
        "served": call.served,
        "taskCount": call.task_count,
        "nextCursor": call.next_cursor,
        "unservedReason": call.unserved_reason,
        "detail": call.detail,
        "fault": call.fault,
        "action": call.action,
        "description": call.describe(),
    }


def published_json(record: PublishedMessage) -> dict[str, Any]:
    """One publish as JSON (the body as text, or base64 when it is not UTF-8)."""
    answer: dict[str, Any] = {
        "destination": record.destination,
        "method": record.method,
        "headers": dict(record.headers),
        "messageIds": list(record.message_ids),
        "urls": list(record.urls),
        "publishedAt": record.published_at,
        "urlGroup": record.url_group,
        "queue": record.queue,
        "deduplicated": record.deduplicated,
    }
    try:
        answer["body"] = record.body.decode()
    except UnicodeDecodeError:
        import base64

        answer["bodyBase64"] = base64.b64encode(record.body).decode()
    return answer


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ControlError(400, f"{what} takes a JSON object, got {json.dumps(body)}")
    return body


def _refused(action: Callable[[], object]) -> object:
    """Run one call of the fake's API; its refusals become a 400."""
    try:
        return action()
    except (ValueError, TypeError) as error:  # SpecError included
        raise ControlError(400, str(error)) from None


@_route("GET", "/health")
def _health(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"status": "ok", "baseUrl": plane.fake.base_url}


@_route("POST", "/reset")
def _reset(plane: ControlPlane, _: dict[str, str], body: Any) -> tuple[int, object]:
    options = _object(body, "POST /_fake/reset")
    if set(options) - {"empty"} or not isinstance(options.get("empty", False), bool):
        raise ControlError(400, 'POST /_fake/reset takes {} or {"empty": true}')
    plane.fake.reset()
    for again in plane.after_reset:
        again()
    if not options.get("empty", False) and plane.data is not None:
        from .data_file import apply_data

        apply_data(plane.fake, plane.data)  # loaded once already: it applies again
    return 200, {"reset": True, "now": plane.fake.clock.now, "messages": plane.fake.message_ids()}


@_route("GET", "/messages")
def _messages(plane: ControlPlane, args: dict[str, str], __: Any) -> tuple[int, object]:
    if "count" not in args:
        return 200, {"messages": plane.fake.message_ids()}
    # A page of summaries, newest first (what the page at /_fake/ui lists): the cursor
    # is how many newer ones were shown before.
    count, start = _count(args), _cursor(args)
    ids = plane.fake.message_ids()
    newest_first = ids[::-1][start : start + count]
    more = start + count < len(ids)
    return 200, {
        "messages": [_summary(plane.fake, message_id) for message_id in newest_first],
        "cursor": str(start + count) if more else None,
        "total": len(ids),
    }


def _count(args: dict[str, str]) -> int:
    raw = args["count"]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise ControlError(400, f"count is a number 1-1000, got {raw!r}")
    return int(raw)


def _cursor(args: dict[str, str]) -> int:
    raw = args.get("cursor", "0")
    if not (raw.isascii() and raw.isdigit()):
        raise ControlError(400, f"cursor is what the last page gave, got {raw!r}")
    return int(raw)


def _summary(fake: QStashTasksFake, message_id: str) -> dict[str, Any]:
    tasks = fake.tasks(message_id)
    if not tasks:
        return {"messageId": message_id, "url": None, "state": None, "tasks": 0, "at": None}
    latest = tasks[0]  # newest first
    return {
        "messageId": message_id,
        "url": latest.url,
        "state": getattr(latest.state, "value", latest.state),
        "tasks": len(tasks),
        # When it last moved, or moves next: what a list of messages sorts by eye.
        "at": latest.completed_at or latest.next_process_at or latest.last_error_at or None,
    }


@_route("POST", "/messages")
def _add_message(plane: ControlPlane, _: dict[str, str], body: Any) -> tuple[int, object]:
    from .data_file import MessageSpec, apply_message, parse

    spec = _refused(lambda: parse(MessageSpec, _object(body, "POST /_fake/messages"), "body"))
    assert isinstance(spec, MessageSpec)
    return 201, _refused(lambda: apply_message(plane.fake, spec))


@_route("GET", "/messages/{messageId}")
def _message_tasks(plane: ControlPlane, args: dict[str, str], _: Any) -> tuple[int, object]:
    message_id = args["messageId"]
    try:
        tasks = plane.fake.tasks(message_id)
    except KeyError:
        known = ", ".join(repr(m) for m in plane.fake.message_ids()) or "none"
        raise ControlError(404, f"unknown message {message_id!r} (known: {known})") from None
    return 200, {"messageId": message_id, "tasks": [t.model_dump(by_alias=True) for t in tasks]}


@_route("POST", "/messages/{messageId}/deliveries")
def _delivery(plane: ControlPlane, args: dict[str, str], body: Any) -> tuple[int, object]:
    from .data_file import DeliverySpec, MessageSpec, apply_message, parse

    spec = _refused(lambda: parse(DeliverySpec, _object(body, "a delivery"), "body"))
    assert isinstance(spec, DeliverySpec)
    message = MessageSpec(messageId=args["messageId"], deliveries=[spec])  # type: ignore[call-arg]
    return 201, _refused(lambda: apply_message(plane.fake, message))


@_route("GET", "/dlq")
def _dlq(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    from .data_file import dead_letter_json

    return 200, {"dlq": [dead_letter_json(entry) for entry in plane.fake.dlq.list()]}


@_route("POST", "/dlq")
def _add_dead_letter(plane: ControlPlane, _: dict[str, str], body: Any) -> tuple[int, object]:
    from .data_file import DeadLetterSpec, apply_dead_letter, parse

    spec = _refused(lambda: parse(DeadLetterSpec, _object(body, "POST /_fake/dlq"), "body"))
    assert isinstance(spec, DeadLetterSpec)
    return 201, _refused(lambda: apply_dead_letter(plane.fake, spec))


@_route("GET", "/clock")
def _clock(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"now": plane.fake.clock.now, "start": plane.fake.clock.start}


@_route("POST", "/clock")
def _move_clock(plane: ControlPlane, _: dict[str, str], body: Any) -> tuple[int, object]:
    moves = _object(body, "POST /_fake/clock")
    clock = plane.fake.clock
    before = clock.now
    try:
        if set(moves) == {"advanceMs"}:
            _refused(lambda: clock.advance(moves["advanceMs"]))
        elif set(moves) == {"set"}:
            _refused(lambda: clock.set(moves["set"]))
        elif set(moves) == {"runAll"} and moves["runAll"] is True:
            clock.run_all()
        elif set(moves) == {"runAll"} and not isinstance(moves["runAll"], bool):
            _refused(lambda: clock.run_all(moves["runAll"]))
        else:
            raise ControlError(
                400,
                'POST /_fake/clock takes {"advanceMs": <int>}, {"set": <unix ms or ISO 8601>} '
                'or {"runAll": true | <horizon ms>}',
            )
    except QStashTasksRunawayError as runaway:
        # The move stopped where the chain was cut; GET /_fake/problems lists it too.
        raise ControlError(409, str(runaway)) from None
    return 200, {"now": clock.now, "start": clock.start, "movedMs": clock.now - before}


@_route("GET", "/faults")
def _faults(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"faults": [fault.describe() for fault in plane.fake.faults]}


@_route("POST", "/faults")
def _plan_fault(plane: ControlPlane, _: dict[str, str], body: Any) -> tuple[int, object]:
    fault = _refused(lambda: plan_fault(plane.fake, _object(body, "POST /_fake/faults")))
    return 201, {"fault": getattr(fault, "label", "")}


@_route("GET", "/calls")
def _calls(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"calls": [call_json(call) for call in plane.fake.calls]}


@_route("GET", "/published")
def _published(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"published": [published_json(record) for record in plane.fake.published]}


@_route("GET", "/destinations")
def _destinations(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"destinations": [_script_json(s) for s in plane.fake.messages.scripts()]}


def _script_json(script: Destination) -> dict[str, Any]:
    """A destination script as JSON: an outcome that is an exception as its error text."""
    from pytest_qstash_tasks._core.state.lifecycle import error_text

    target = script.target if isinstance(script.target, str) else script.target.pattern
    remaining = [a if isinstance(a, (int, str)) else error_text(a) for a in script.remaining]
    return {"target": target, "remaining": remaining, "used": len(script.used)}


@_route("POST", "/destinations")
def _script_destination(plane: ControlPlane, _: dict[str, str], body: Any) -> tuple[int, object]:
    script = _object(body, "POST /_fake/destinations")
    target, answers = script.get("target"), script.get("answers")
    if (
        set(script) != {"target", "answers"}
        or not isinstance(target, str)
        or not isinstance(answers, list)
        or not all(isinstance(a, (int, str)) and not isinstance(a, bool) for a in answers)
    ):
        raise ControlError(
            400,
            'POST /_fake/destinations takes {"target": <URL, or a prefix ending in *>, '
            '"answers": [<HTTP status or error text>, ...]}',
        )
    destination = _refused(lambda: plane.fake.destination(target).answers(*answers))
    assert isinstance(destination, Destination)
    return 201, _script_json(destination)


@_route("GET", "/deliveries")
def _deliveries(plane: ControlPlane, args: dict[str, str], __: Any) -> tuple[int, object]:
    attempts = plane.fake.deliveries
    if "messageId" in args:
        attempts = [a for a in attempts if a.message_id == args["messageId"]]
    if "count" in args:  # the latest ones, newest first
        attempts = attempts[::-1][: _count(args)]
    return 200, {"deliveries": [_attempt_json(a) for a in attempts]}


def _attempt_json(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "messageId": attempt.message_id,
        "url": attempt.url,
        "method": attempt.method,
        "headers": dict(attempt.headers),
        "body": attempt.body.decode(errors="replace"),
        "retried": attempt.retried,
        "at": attempt.at,
        "status": attempt.status,
        "answerBody": attempt.answer_body.decode(errors="replace"),
        "durationMs": attempt.duration_ms,
        "error": attempt.error,
        "receiver": attempt.receiver,
    }


@_route("GET", "/signing-keys")
def _signing_keys(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"current": plane.fake.current_signing_key, "next": plane.fake.next_signing_key}


@_route("POST", "/signing-keys/rotate")
def _rotate(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    plane.fake.rotate_signing_keys()
    return _signing_keys(plane, {}, None)


@_route("GET", "/problems")
def _problems(plane: ControlPlane, _: dict[str, str], __: Any) -> tuple[int, object]:
    return 200, {"problems": plane.fake.problems()}


#: What every kind takes besides its own keys: how often, and which requests.
_TARGET = {"times": "times", "messageId": "message_id", "cursor": "cursor", "page": "page"}

#: kind -> its own keys (JSON name -> the fake's argument)
FAULT_KINDS: dict[str, dict[str, str]] = {
    "fail": {"status": "status", "error": "error", "delay": "delay"},
    "rateLimit": {
        "daily": "daily",
        "limit": "limit",
        "remaining": "remaining",
        "reset": "reset",
        "delay": "delay",
    },
    "close": {"delay": "delay"},  # the connection closed without an answer
    "timeout": {"delay": "delay"},  # no answer until the client gives up
    "delay": {"seconds": "seconds"},
}


def plan_fault(fake: QStashTasksFake, body: dict[str, Any]) -> Fault:
    """Plan the fault ``body`` describes (``{"kind": "fail", "status": 503, ...}``)."""
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"a fault's kind is one of {', '.join(FAULT_KINDS)}; got {kind!r}")
    keys = {**FAULT_KINDS[kind], **_TARGET}
    unknown = sorted(set(body) - {"kind", *keys})
    if unknown:
        raise ValueError(f"a {kind} fault takes {', '.join(keys)}; not {', '.join(unknown)}")
    args = {keys[key]: value for key, value in body.items() if key != "kind"}
    if kind == "fail":
        if "status" not in args:
            raise ValueError("a fail fault takes a status (400-599)")
        return fake.fail_next(**args)
    if kind == "rateLimit":
        return fake.rate_limit_next(**args)
    if kind == "delay":
        if "seconds" not in args:
            raise ValueError("a delay fault takes seconds (> 0)")
        return fake.delay_next(**args)
    error = ConnectionError if kind == "close" else TimeoutError
    return fake.raise_next(error, **args)
