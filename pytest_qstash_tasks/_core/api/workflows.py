"""Upstash Workflow's side of QStash: ``GET /v2/workflows/runs/{runId}`` (the run so far,
as a step's delivery carries it: what the SDKs fetch lazily), ``DELETE
/v2/workflows/runs/{runId}`` (``cancel=false``: the run ends with the body as its result;
``cancel=true``: it is cancelled), bulk ``DELETE /v2/workflows/runs``, and the runs'
logs, ``GET /v2/workflows/logs`` and ``GET /v2/workflows/events`` (what the SDKs call).
And a run's events (``context.waitForEvent``, ``notify``): ``POST /v2/wait/{eventId}``
(a run waits), ``POST /v2/notify/{eventId}`` (every waiter gets the event; none: it is
lost) and ``POST /v2/notify/{runId}/{eventId}`` (kept until that run waits), ``GET
/v2/waiters/{eventId}``, and ``WaitTimeouts``, the timeline's kind of event for a wait
whose time runs out. Runs are made and fed by publishing (``publishing``); they live in
``state/workflows.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.agenda import Agenda
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.workflows import STATES, Run, Waiter

from .publishing import PublishConfig, check_publish, delay_ms, store_publish
from .refusals import Refused, allow, json_body, page_count

__all__ = [
    "WaitTimeout",
    "WaitTimeouts",
    "is_events_path",
    "is_triggers_path",
    "is_workflows_path",
    "respond",
    "start_run",
    "trigger",
]

_PREFIX = "/v2/workflows"
_EVENTS = ("/v2/wait/", "/v2/notify/", "/v2/waiters/")
#: How long a run waits for an event when the wait does not say (the SDKs' default).
_DEFAULT_TIMEOUT = "7d"
_LOG_FILTERS = ("workflowRunId", "workflowUrl", "state", "fromDate", "toDate", "label")


def is_workflows_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is under ``/v2/workflows``, but for the Workflow DLQ (not
    served yet: in-process, another mock may answer it)."""
    rest = raw_path[len(base_path) :]
    return rest.startswith(_PREFIX + "/") and not _is_workflow_dlq(rest)


def _is_workflow_dlq(rest: str) -> bool:
    return rest == _PREFIX + "/dlq" or rest.startswith(_PREFIX + "/dlq/")


def is_triggers_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/trigger/{workflowUrl}`` or ``/v2/batch/trigger``."""
    rest = raw_path[len(base_path) :]
    return rest.startswith("/v2/trigger/") or rest == "/v2/batch/trigger"


def start_run(
    url: str,
    run_id: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    failure_url: str | None,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> tuple[Any, int]:
    """Publish a run's first message, as the Workflow client's trigger does (``headers``
    are the publish's own, lowercase: forwarded ones, retries, delay...); with
    ``failure_url``, the failure callback the SDKs' failure function answers. Its answer
    and status, as ``store_publish`` gives them. Raises ``Refused``."""
    given = [
        ("upstash-workflow-init", "true"),
        ("upstash-workflow-runid", run_id),
        ("upstash-workflow-url", url),
        ("upstash-feature-set", "LazyFetch,InitialBody"),
        ("upstash-forward-upstash-workflow-sdk-version", "1"),
        ("content-type", "application/json"),
        *headers,
    ]
    if failure_url is not None:
        # What the Workflow SDKs send for their failure function (workflow-py's
        # _get_headers): the failure callback reaches the run as a failureCall.
        prefix = "upstash-failure-callback"
        given += [
            (prefix, failure_url),
            (f"{prefix}-forward-upstash-workflow-is-failure", "true"),
            (f"{prefix}-forward-upstash-workflow-failure-callback", "true"),
            (f"{prefix}-workflow-runid", run_id),
            (f"{prefix}-workflow-init", "false"),
            (f"{prefix}-workflow-url", url),
            (f"{prefix}-workflow-calltype", "failureCall"),
        ]
        retries = next((value for name, value in headers if name == "upstash-retries"), None)
        if retries is not None:
            given.append((f"{prefix}-retries", retries))
    publish = check_publish(url, tuple(given), body, now, outbox, publish_config)
    return store_publish(publish, now, outbox, new_id)


def trigger(
    request: Request,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> tuple[int, Any]:
    """``POST /v2/trigger/{workflowUrl}`` (the request's headers as a publish's; the
    run's id from ``Upstash-Workflow-RunId``, a new one else) and ``POST
    /v2/batch/trigger`` (``[{"destination", "body", "headers"}]``). Raises ``Refused``."""
    allow(request, "POST")
    rest = request.raw_path.partition("/v2/")[2]
    if rest == "batch/trigger":
        entries = json_body(request)
        if not isinstance(entries, list) or not entries:
            raise Refused(400, "a batch trigger is a non-empty JSON array of runs")
        answers = []
        for index, entry in enumerate(entries):
            try:
                answers.append(_trigger_entry(entry, now, outbox, publish_config, new_id))
            except Refused as refused:
                raise Refused(refused.status, f"run {index}: {refused.text}") from None
        return 200, answers
    url = rest[len("trigger/") :] + (f"?{request.query}" if request.query else "")
    return 200, _trigger_one(
        url, request.headers, request.body, now, outbox, publish_config, new_id
    )


def _trigger_entry(
    entry: object,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("destination"), str):
        raise Refused(400, 'each run is a JSON object with the workflow\'s URL as "destination"')
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise Refused(400, "headers must be an object of strings")
    body = entry.get("body") or ""
    if not isinstance(body, str):
        raise Refused(400, "body must be a string")
    lowered = tuple((name.lower(), value) for name, value in headers.items())
    return _trigger_one(
        entry["destination"], lowered, body.encode(), now, outbox, publish_config, new_id
    )


def _trigger_one(
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> dict[str, Any]:
    given = dict(headers)
    run_id = given.pop("upstash-workflow-runid", None) or new_id("wfr")
    # The failure function is called by default, as the Workflow client's trigger does.
    failure_url = given.pop("upstash-failure-callback", None) or url
    kept = [
        (name, value)
        for name, value in given.items()
        if name not in ("authorization", "content-length", "host")
        and not name.startswith("upstash-workflow-")
    ]
    answer, _ = start_run(url, run_id, kept, body, failure_url, now, outbox, publish_config, new_id)
    run = outbox.runs.get(run_id)
    assert run is not None  # made by start_run, or there before
    made: dict[str, Any] = {"workflowRunId": run_id, "workflowCreatedAt": run.created_at}
    if isinstance(answer, dict) and answer.get("deduplicated"):
        made["deduplicated"] = True
    return made


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


def respond(request: Request, now: int, outbox: Outbox, rest: Sequence[str]) -> tuple[int, Any]:
    """The status and JSON (``None``: an empty body) of one request under
    ``/v2/workflows``; ``rest`` is the path after it, split at ``/``. Raises ``Refused``."""
    if rest and rest[0] in ("logs", "events") and len(rest) == 1:
        allow(request, "GET")
        return 200, _logs(request, outbox)
    if rest and rest[0] == "runs" and len(rest) == 1:
        allow(request, "DELETE")
        return 200, {"cancelled": _cancel_many(request, now, outbox)}
    if len(rest) != 2 or rest[0] != "runs":
        raise Refused(404, f"no such workflow path {request.raw_path!r}", "unknown_path")
    allow(request, "GET", "DELETE")
    run = _known(outbox, rest[1])
    if request.method == "GET":
        return 200, run.raw_steps()
    params = dict(parse_qsl(request.query))
    cancel = params.get("cancel", "false")
    if cancel not in ("true", "false"):
        raise Refused(400, f"invalid cancel {cancel!r}: want true or false")
    if run.over:
        raise Refused(400, f"workflow run {run.run_id!r} has already ended ({run.state})")
    if cancel == "true":
        _cancel(run, now, outbox)
    else:
        run.result = request.body
        run.end("RUN_SUCCESS", now)
    return 200, None


def _known(outbox: Outbox, raw_id: str) -> Run:
    run_id = unquote(raw_id)
    run = outbox.runs.get(run_id)
    if run is None:
        raise Refused(404, f"workflow run {run_id!r} not found")
    return run


def _cancel(run: Run, now: int, outbox: Outbox) -> None:
    """Cancel the run and whatever of it is still to be delivered."""
    run.end("RUN_CANCELED", now)
    outbox.cancel([message.message_id for message in run.messages], now)


def _cancel_many(request: Request, now: int, outbox: Outbox) -> int:
    """Cancel the runs the query names (``workflowRunIds``, repeated) or matches
    (``workflowUrl``, ``fromDate``, ``toDate``), every run still going when it names
    none; how many were cancelled."""
    params = parse_qsl(request.query)
    unknown = sorted(
        {key for key, _ in params} - {"workflowRunIds", "workflowUrl", "fromDate", "toDate"}
    )
    if unknown:
        raise Refused(
            400, f"unknown filter(s) {unknown}: workflowRunIds, workflowUrl, fromDate, toDate"
        )
    ids = [value for key, value in params if key == "workflowRunIds"]
    given = dict(params)
    cancelled = 0
    for run in outbox.runs:
        if run.over or (ids and run.run_id not in ids):
            continue
        if "workflowUrl" in given and run.url != given["workflowUrl"]:
            continue
        if not _in_dates(run.created_at, given):
            continue
        _cancel(run, now, outbox)
        cancelled += 1
    return cancelled


def _in_dates(at: int, given: dict[str, str]) -> bool:
    for key in ("fromDate", "toDate"):
        if key in given and not given[key].isdigit():
            raise Refused(400, f"invalid {key} {given[key]!r}: want unix ms")
    if "fromDate" in given and at < int(given["fromDate"]):
        return False
    return not ("toDate" in given and at > int(given["toDate"]))


def _logs(request: Request, outbox: Outbox) -> dict[str, Any]:
    """The runs, newest first, filtered, ``count`` a page (cursor: where the page starts)."""
    params = dict(parse_qsl(request.query))
    params.pop("groupBy", None)  # the SDKs' events call groups by run: the only way here
    count = page_count(params, default=10, maximum=100)
    state = params.get("state")
    if state is not None and state not in STATES:
        raise Refused(400, f"invalid state {state!r}: one of {', '.join(STATES)}")
    given = {key: value for key, value in params.items() if key in _LOG_FILTERS}
    runs = [
        run
        for run in reversed(list(outbox.runs))
        if ("workflowRunId" not in given or run.run_id == given["workflowRunId"])
        and ("workflowUrl" not in given or run.url == given["workflowUrl"])
        and (state is None or run.state == state)
        and ("label" not in given or run.label == given["label"])
        and _in_dates(run.created_at, given)
    ]
    cursor = params.get("cursor", "")
    start = 0
    if cursor:
        if not cursor.isdigit():
            raise Refused(400, f"invalid cursor {cursor!r}")
        start = int(cursor)
    page = runs[start : start + count]
    answer: dict[str, Any] = {"runs": [run.to_log_json() for run in page]}
    if start + count < len(runs):
        answer["cursor"] = str(start + count)
    return answer
