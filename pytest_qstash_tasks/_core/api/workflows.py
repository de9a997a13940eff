"""Upstash Workflow's side of QStash: ``GET /v2/workflows/runs/{runId}`` (the run so far,
as a step's delivery carries it: what the SDKs fetch lazily), ``DELETE
/v2/workflows/runs/{runId}`` (``cancel=false``: the run ends with the body as its result;
``cancel=true``: it is cancelled), bulk ``DELETE /v2/workflows/runs``, and the runs'
logs, ``GET /v2/workflows/logs`` and ``GET /v2/workflows/events`` (what the SDKs call).
Runs are made and fed by publishing (``publishing``); they live in ``state/workflows.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.workflows import STATES, Run

from .refusals import Refused, allow, page_count

__all__ = ["is_workflows_path", "respond"]

_PREFIX = "/v2/workflows"
_LOG_FILTERS = ("workflowRunId", "workflowUrl", "state", "fromDate", "toDate", "label")


def is_workflows_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is under ``/v2/workflows``."""
    rest = raw_path[len(base_path) :]
    return rest.startswith(_PREFIX + "/")


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
