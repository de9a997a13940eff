"""Upstash Workflow's side of QStash: ``GET /v2/workflows/runs/{runId}`` (the run so far,
as a step's delivery carries it: what the SDKs fetch lazily), ``DELETE
/v2/workflows/runs/{runId}`` (``cancel=false``: the run ends with the body as its result;
``cancel=true``: it is cancelled), bulk ``DELETE /v2/workflows/runs``, and the runs'
logs, ``GET /v2/workflows/logs`` and ``GET /v2/workflows/events`` (what the SDKs call),
and the REST triggers, ``POST /v2/trigger/{workflowUrl}`` and ``POST /v2/batch/trigger``.
Runs are made and fed by publishing (``publishing``), their events are
``workflow_events``; they live in ``state/workflows.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.workflows import STATES, Run

from .publishing import PublishConfig, check_publish, store_messages, store_publish
from .refusals import Refused, allow, json_body, page_count

__all__ = [
    "end_run",
    "is_triggers_path",
    "is_workflow_dlq_path",
    "is_workflows_path",
    "respond",
    "start_run",
    "trigger",
]

_PREFIX = "/v2/workflows"
_LOG_FILTERS = ("workflowRunId", "workflowUrl", "state", "fromDate", "toDate", "label")


def is_workflows_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is under ``/v2/workflows``, but for the Workflow DLQ (its own
    module, ``workflow_dlq``)."""
    rest = raw_path[len(base_path) :]
    return rest.startswith(_PREFIX + "/") and not _is_workflow_dlq(rest)


def _is_workflow_dlq(rest: str) -> bool:
    return rest == _PREFIX + "/dlq" or rest.startswith(_PREFIX + "/dlq/")


def is_workflow_dlq_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is ``/v2/workflows/dlq`` or under it (``workflow_dlq``'s,
    imported at its first request: the standalone command starts without it)."""
    return _is_workflow_dlq(raw_path[len(base_path) :])


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


def end_run(
    run: Run,
    state: str,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
) -> None:
    """The run ends (``state``) at ``now``, once. A run another one invoked
    (``context.invoke``) gives it its outcome, as the invoker's ``Invoke`` step: its
    ``out`` is ``{"body", "isFailed", "isCanceled"}``, ``body`` the result of a run that
    succeeded. An invoker that has ended meanwhile is told nothing."""
    if run.over:
        return
    run.end(state, now)
    invoker = run.invoker
    if invoker is None:
        return
    invoking = outbox.runs.get(invoker.run_id)
    if invoking is not None and invoking.over:
        return
    outcome: dict[str, Any] = {}
    if state == "RUN_SUCCESS" and run.result is not None:
        outcome["body"] = run.result.decode("utf-8", "replace")
    outcome.update(isFailed=state == "RUN_FAILED", isCanceled=state == "RUN_CANCELED")
    step = {**invoker.step, "stepType": "Invoke", "out": json.dumps(outcome)}
    headers = [(name, value) for name, value in invoker.headers if name != "authorization"]
    publish = check_publish(
        invoker.url, headers, json.dumps(step).encode(), now, outbox, publish_config
    )
    store_messages(publish, now, outbox, new_id)


def respond(
    request: Request,
    now: int,
    outbox: Outbox,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
    rest: Sequence[str],
) -> tuple[int, Any]:
    """The status and JSON (``None``: an empty body) of one request under
    ``/v2/workflows``; ``rest`` is the path after it, split at ``/``. Raises ``Refused``."""

    def end(run: Run, state: str) -> None:
        end_run(run, state, now, outbox, publish_config, new_id)

    if rest and rest[0] in ("logs", "events") and len(rest) == 1:
        allow(request, "GET")
        return 200, _logs(request, outbox)
    if rest and rest[0] == "runs" and len(rest) == 1:
        allow(request, "DELETE")
        return 200, {"cancelled": _cancel_many(request, now, outbox, end)}
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
        _cancel(run, now, outbox, end)
    else:
        run.result = request.body
        end(run, "RUN_SUCCESS")
    return 200, None


def _known(outbox: Outbox, raw_id: str) -> Run:
    run_id = unquote(raw_id)
    run = outbox.runs.get(run_id)
    if run is None:
        raise Refused(404, f"workflow run {run_id!r} not found")
    return run


def _cancel(run: Run, now: int, outbox: Outbox, end: Callable[[Run, str], None]) -> None:
    """Cancel the run and whatever of it is still to be delivered."""
    outbox.cancel([message.message_id for message in run.messages], now)
    end(run, "RUN_CANCELED")


def _cancel_many(
    request: Request, now: int, outbox: Outbox, end: Callable[[Run, str], None]
) -> int:
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
        _cancel(run, now, outbox, end)
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
