"""A workflow run's events (``context.waitForEvent`` and ``notify``), as QStash serves
them: ``POST /v2/wait/{eventId}`` (a run waits), ``POST /v2/notify/{eventId}`` (every
waiter gets the event; none: it is lost) and ``POST /v2/notify/{runId}/{eventId}`` (kept
until that run waits), ``GET /v2/waiters/{eventId}``; and ``WaitTimeouts``, the
timeline's kind of event for a wait whose time runs out. The event reaches the run as a
step published to the workflow (``publishing``); the waiters live in
``state/workflows.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.agenda import Agenda
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.workflows import Waiter

from .publishing import PublishConfig, check_publish, delay_ms, store_publish
from .refusals import Refused, allow, json_body

__all__ = ["WaitTimeout", "WaitTimeouts", "is_events_path"]

_EVENTS = ("/v2/wait/", "/v2/notify/", "/v2/waiters/")
#: How long a run waits for an event when the wait does not say (the SDKs' default).
_DEFAULT_TIMEOUT = "7d"


def is_events_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is under ``/v2/wait``, ``/v2/notify`` or ``/v2/waiters``."""
    rest = raw_path[len(base_path) :]
    return rest.startswith(_EVENTS)


@dataclass(frozen=True)
class WaitTimeout:
    """An event: ``waiter``'s time runs out."""

    waiter: Waiter


class WaitTimeouts:
    """Runs' events (wait and notify, and the timeline's kind for ``WaitTimeout``): what
    the event publishes, a step the workflow's SDK reads as the wait's result."""

    def __init__(
        self,
        outbox: Outbox,
        agenda: Agenda,
        publish_config: PublishConfig,
        new_id: Callable[[str], str],
    ) -> None:
        self.outbox = outbox
        self.agenda = agenda
        self.publish_config = publish_config
        self.new_id = new_id

    # -- the timeline's kind of event ------------------------------------------------

    def pending(self, event: WaitTimeout) -> bool:
        """Whether the waiter still waits (not notified since)."""
        return self.outbox.runs.is_waiting(event.waiter)

    def begin(self, due: int, event: WaitTimeout) -> None:
        """The wait's time ran out: the timeout's step goes to the workflow."""
        self.outbox.runs.stop_waiting(event.waiter)
        self._publish(event.waiter, None, due)

    def lasts_ms(self, event: WaitTimeout) -> int:
        """Over as soon as made (the step it publishes is a message of its own)."""
        return 0

    def chain_entry(self, event: WaitTimeout) -> tuple[str, str]:
        """Where the timeout's step goes, and the event waited for."""
        return event.waiter.timeout_url, event.waiter.event_id

    # -- requests ----------------------------------------------------------------------

    def respond(self, request: Request, now: int, rest: str) -> tuple[int, Any]:
        """The answer to a request under ``/v2/wait``, ``/v2/notify`` or ``/v2/waiters``
        (``rest``: the path from ``/v2/``). Raises ``Refused``."""
        kind, _, tail = rest[len("/v2/") :].partition("/")
        parts = [unquote(part) for part in tail.split("/")]
        if kind == "waiters" and len(parts) == 1:
            allow(request, "GET")
            return 200, [w.to_json() for w in self.outbox.runs.waiters.get(parts[0], [])]
        if kind == "wait" and len(parts) == 1:
            allow(request, "POST")
            return 200, self._wait(request, parts[0], now)
        if kind == "notify" and len(parts) in (1, 2):
            allow(request, "POST")
            if len(parts) == 1:
                return 200, self._notify(parts[0], None, request.body, now)
            run_id, event_id = parts
            sent = self._notify(event_id, run_id, request.body, now)
            if sent:
                return 200, sent[0]
            self.outbox.runs.kept[(run_id, event_id)] = request.body
            return 200, {"waiter": None, "messageId": "", "error": ""}
        raise Refused(404, f"no such event path {request.raw_path!r}", "unknown_path")

    def _wait(self, request: Request, event_id: str, now: int) -> dict[str, Any]:
        wait = json_body(request)
        if not isinstance(wait, dict) or not isinstance(wait.get("url"), str):
            raise Refused(400, 'a wait is a JSON object with the "url" its event goes to')
        step = wait.get("step")
        if not isinstance(step, dict):
            raise Refused(400, 'a wait names the "step" its event completes')
        headers = wait.get("timeoutHeaders") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in headers.values()
        ):
            raise Refused(400, "timeoutHeaders must be an object of string lists")
        timeout = wait.get("timeout") or _DEFAULT_TIMEOUT
        try:
            lasts = int(timeout) * 1000 if str(timeout).isdigit() else delay_ms(str(timeout))
        except Refused:
            raise Refused(400, f"invalid timeout {timeout!r}: e.g. 30s, 1h, 7d") from None
        run_id = next(
            (v[0] for k, v in headers.items() if k.lower() == "upstash-workflow-runid"), None
        )
        waiter = Waiter(
            event_id, run_id, wait["url"], now + lasts, headers,
            wait.get("timeoutUrl") or wait["url"], wait.get("timeoutBody"), step, str(timeout),
        )  # fmt: skip
        kept = None if run_id is None else self.outbox.runs.kept.pop((run_id, event_id), None)
        if kept is not None:  # notified before it waited ("safe" notify)
            message_id = self._publish(waiter, kept, now)
            return {"messageId": message_id}
        self.outbox.runs.wait(waiter)
        self.agenda.push(waiter.deadline, WaitTimeout(waiter))
        return {"messageId": ""}

    def _notify(
        self, event_id: str, run_id: str | None, data: bytes, now: int
    ) -> list[dict[str, Any]]:
        sent = []
        for waiter in list(self.outbox.runs.waiters.get(event_id, [])):
            if run_id is not None and waiter.run_id != run_id:
                continue
            self.outbox.runs.stop_waiting(waiter)
            message_id = self._publish(waiter, data, now)
            sent.append({"waiter": waiter.to_json(), "messageId": message_id, "error": ""})
        return sent

    def _publish(self, waiter: Waiter, data: bytes | None, now: int) -> str:
        """The wait's step, with the event's data (``None``: the time ran out), published
        to the workflow as the SDKs read it; its message id ("" if refused: the run was
        cancelled since)."""
        step = dict(waiter.step)
        step.update(waitEventId=waiter.event_id, timeout=waiter.timeout, waitTimeout=data is None)
        if data is not None:
            step["out"] = base64.b64encode(data).decode("ascii")
        headers = tuple(
            (name.lower(), value) for name, values in waiter.headers.items() for value in values
        )
        url = waiter.url if data is not None else waiter.timeout_url
        try:
            publish = check_publish(
                url, headers, json.dumps(step).encode(), now, self.outbox, self.publish_config
            )
        except Refused:
            return ""
        answer, _ = store_publish(publish, now, self.outbox, self.new_id)
        return str(answer["messageId"]) if isinstance(answer, dict) else ""
