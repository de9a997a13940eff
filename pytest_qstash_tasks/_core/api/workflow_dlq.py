"""The Workflow DLQ: the runs that failed, as the DLQ holds them (the entry of the step
whose retries ran out), seen and acted on as runs.

``GET /v2/workflows/dlq`` (and ``GET /v2/dlq?source=workflow``, what
``@upstash/workflow``'s ``dlq.list`` calls) pages them with the run's fields;
``GET``/``DELETE /v2/workflows/dlq/{dlqId}`` one, bulk ``DELETE /v2/workflows/dlq`` many;
``POST /v2/workflows/dlq/resume[/{dlqId}]`` starts a new run from the failed step, with the
steps before it; ``POST /v2/workflows/dlq/restart[/{dlqId}]`` a new run from the initial
payload; ``POST /v2/workflows/dlq/callback/{dlqId}`` calls a failure function that failed
again, ``DELETE`` there cancels one still running. An entry resumed or restarted leaves the
DLQ, as a retried one does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from pytest_qstash_tasks._core.exchange import Request
from pytest_qstash_tasks._core.state.dlq import DeadLetter, DeadLetterQueue
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.workflows import Run

from .filters import FilterError, Filters, read_selection
from .publishing import PublishConfig, check_publish, publish_again, store_messages
from .refusals import Refused, allow, dlq_entry, page_count, page_cursor

__all__ = ["FAILURE_FUNCTION_STATES", "list_entries", "respond"]

#: A failed run's failure function, as the Workflow DLQ shows it (``failureFunctionState``).
FAILURE_FUNCTION_STATES = (
    "CALLBACK_INPROGRESS", "CALLBACK_SUCCESS", "CALLBACK_FAIL", "CALLBACK_CANCELED",
)  # fmt: skip
#: The filters of the Workflow DLQ's list and bulk calls (the Workflow OpenAPI), and
#: ``responseStatus``, which ``@upstash/workflow``'s list still passes on.
_FILTERS = (
    "workflowUrl", "workflowRunId", "workflowCreatedAt", "label", "failureFunctionState",
    "callerIp", "flowControlKey", "responseStatus",
)  # fmt: skip
_PREFIX = "/v2/workflows/dlq"
_MAX_PAGE = 100
#: A bulk call's largest ``count`` (nine digits: what a count is read as).
_MAX_BULK = 999_999_999
#: What a resume or a restart may set anew for the run it starts (its OpenAPI).
_OVERRIDES = (
    "upstash-retries", "upstash-delay", "upstash-retry-delay", "upstash-flow-control-key",
    "upstash-flow-control-value", "upstash-label", "upstash-failure-callback",
)  # fmt: skip


@dataclass(frozen=True)
class _Context:
    """What the Workflow DLQ's calls act on."""

    now: int
    outbox: Outbox
    dlq: DeadLetterQueue
    publish_config: PublishConfig
    new_id: Callable[[str], str]


def respond(
    request: Request,
    now: int,
    outbox: Outbox,
    dlq: DeadLetterQueue,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
    rest: Sequence[str],
) -> tuple[int, Any]:
    """The status and JSON (``None``: an empty body) of one request under
    ``/v2/workflows/dlq``; ``rest`` is the path after it, split at ``/``. Raises
    ``Refused``."""
    context = _Context(now, outbox, dlq, publish_config, new_id)
    if not rest:
        allow(request, "GET", "DELETE")
        if request.method == "GET":
            return 200, list_entries(request.query, now, dlq, outbox, ignored=())
        entries, cursor = _chosen(request.query, context)
        dlq.remove([entry.dlq_id for entry in entries])
        return 200, _with_cursor({"deleted": len(entries)}, cursor)
    if rest[0] in ("resume", "restart") and len(rest) <= 2:
        allow(request, "POST")
        restart = rest[0] == "restart"
        if len(rest) == 2:
            entry = _entry(dlq, rest[1])
            return 200, _start_again(entry, _run(entry, outbox), restart, request, context)
        entries, cursor = _chosen(request.query, context)
        runs = [(entry, _run(entry, outbox)) for entry in entries]
        started = [_start_again(entry, run, restart, request, context) for entry, run in runs]
        return 200, _with_cursor({"workflowRuns": started}, cursor)
    if rest[0] == "callback" and len(rest) == 2:
        allow(request, "POST", "DELETE")
        entry = _entry(dlq, rest[1])
        return _failure_function(entry, _run(entry, outbox), request.method == "POST", context)
    if len(rest) != 1:
        where = f"{_PREFIX}/{'/'.join(rest)}"
        raise Refused(404, f"no Workflow DLQ endpoint at {where}", "unknown_path")
    allow(request, "GET", "DELETE")
    entry = _entry(dlq, rest[0])
    run = _run(entry, outbox, missing=404)
    if request.method == "GET":
        return 200, to_json(entry, run, outbox, now)
    dlq.remove([entry.dlq_id])
    return 200, None


def list_entries(
    query: str, now: int, dlq: DeadLetterQueue, outbox: Outbox, *, ignored: Sequence[str]
) -> dict[str, Any]:
    """A page of the failed runs (``{"messages", "cursor"}``), oldest first: ``count``
    1-100 (100 by default), ``cursor``, the filters; query keys in ``ignored`` are taken
    and not acted on (``source``). Raises ``Refused``."""
    params = parse_qsl(query, keep_blank_values=True)
    count = page_count(dict(params), default=_MAX_PAGE, maximum=_MAX_PAGE)
    selection = _selection(urlencode([(key, value) for key, value in params if key not in ignored]))
    if selection.ids is not None:
        raise Refused(400, "dlqIds names entries to act on: list with filters")
    keep = _keeper(selection.filters, outbox, now)
    entries, cursor = dlq.page(page_cursor(dict(params)), count, keep)
    messages = [to_json(entry, _run(entry, outbox), outbox, now) for entry in entries]
    return _with_cursor({"messages": messages}, cursor)


def to_json(entry: DeadLetter, run: Run, outbox: Outbox, now: int) -> dict[str, Any]:
    """The entry as the Workflow DLQ shows it (its OpenAPI's ``WorkflowDLQMessage``):
    the failed step's message and last answer, with the run's fields."""
    answer = entry.to_json()
    answer.update(
        workflowRunId=run.run_id,
        workflowCreatedAt=run.created_at,
        workflowUrl=run.url,
    )
    state = _failure_function_state(entry, outbox, now)
    if state is not None:
        answer["failureFunctionState"] = state
        answer["failureCallbackInfo"] = {"state": state}
    return answer


def _failure_function_state(entry: DeadLetter, outbox: Outbox, now: int) -> str | None:
    """Where the run's failure function stands (``None``: the run named none)."""
    if entry.failure_callback is None:
        return None
    delivery = outbox.messages[entry.failure_callback].delivery
    if delivery.canceled_at is not None:
        return "CALLBACK_CANCELED"
    if not delivery.settled_by(now):
        return "CALLBACK_INPROGRESS"
    return "CALLBACK_SUCCESS" if delivery.errors[-1] is None else "CALLBACK_FAIL"


def _run(entry: DeadLetter, outbox: Outbox, missing: int = 400) -> Run:
    """The run whose step the entry holds; refused (``missing``) for another message's."""
    run = outbox.runs.of_delivery(entry.message.run_id, entry.message.url, entry.message.call_type)
    if run is None:
        raise Refused(missing, f"DLQ entry {entry.dlq_id!r} is not a workflow run's step")
    return run


def _entry(dlq: DeadLetterQueue, raw_id: str) -> DeadLetter:
    return dlq_entry(dlq, unquote(raw_id))


def _chosen(query: str, context: _Context) -> tuple[list[DeadLetter], int | None]:
    """The failed runs a bulk call names (``dlqIds``, else filters, else every one), up
    to ``count`` (all when not given), from ``cursor``; and where the next call goes on.
    A named entry that is not a run's step is refused."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    count = page_count(params, default=max(len(context.dlq), 1), maximum=_MAX_BULK)
    selection = _selection(query)
    if selection.ids is not None:
        named = []
        for dlq_id in selection.ids:
            entry = _entry(context.dlq, dlq_id)
            _run(entry, context.outbox)
            named.append(entry)
        return named, None
    keep = _keeper(selection.filters, context.outbox, context.now)
    return context.dlq.page(page_cursor(params), count, keep)


def _start_again(
    entry: DeadLetter, run: Run, restart: bool, request: Request, context: _Context
) -> dict[str, Any]:
    """A new run in place of the failed one: from its initial payload (``restart``), or
    from the step that failed, with the steps before it (resume). The entry leaves the
    DLQ. Its id and creation time, as the answer lists them."""
    outbox = context.outbox
    run_id = context.new_id("wfr")
    if restart:
        source, before = outbox.messages[run.messages[0].message_id], []
    else:
        source = entry.message
        index = next(i for i, m in enumerate(run.messages) if m.message_id == source.message_id)
        before = run.messages[:index]
    headers = _renamed(source.headers, run.run_id, run_id, request)
    if before:  # the steps taken: the new run goes on from them
        label = dict(headers).get("upstash-label", run.label)
        outbox.runs.start(run_id, run.url, context.now, label).messages.extend(before)
    publish = check_publish(
        source.url, headers, source.body, context.now, outbox, context.publish_config
    )
    store_messages(publish, context.now, outbox, context.new_id)
    context.dlq.remove([entry.dlq_id])
    started = outbox.runs.get(run_id)
    assert started is not None  # made above, or by its first message
    return {"workflowRunId": run_id, "workflowCreatedAt": started.created_at}


def _renamed(
    headers: Sequence[tuple[str, str]], old: str, new: str, request: Request
) -> list[tuple[str, str]]:
    """The failed message's headers for the new run: the run's id changed wherever it is
    named (the message's own, its callbacks', forwarded), and what the request sets."""
    overrides = [(name, value) for name, value in request.headers if name in _OVERRIDES]
    replaced = {name for name, _ in overrides}
    kept = [(name, value.replace(old, new)) for name, value in headers if name not in replaced]
    return kept + overrides


def _failure_function(
    entry: DeadLetter, run: Run, retry: bool, context: _Context
) -> tuple[int, Any]:
    """``POST``: call the run's failure function again, once it has failed;
    ``DELETE``: cancel the one still running (302, as the Workflow OpenAPI answers)."""
    state = _failure_function_state(entry, context.outbox, context.now)
    if not retry:
        if state != "CALLBACK_INPROGRESS":
            raise Refused(400, f"no failure function in progress for {entry.dlq_id!r} ({state})")
        assert entry.failure_callback is not None  # it has a state
        context.outbox.cancel([entry.failure_callback], context.now)
        return 302, None
    if state != "CALLBACK_FAIL":
        raise Refused(
            400,
            f"the failure function of {entry.dlq_id!r} has not failed ({state}): only a "
            "failed one is called again",
        )
    assert entry.failure_callback is not None  # it has a state
    entry.failure_callback = publish_again(
        context.outbox.messages[entry.failure_callback], context.now, context.outbox,
        context.publish_config, context.new_id,
    )  # fmt: skip
    return 200, {"workflowRunId": run.run_id, "workflowCreatedAt": run.created_at}


def _selection(query: str) -> Any:
    try:
        return read_selection(query, None, id_key="dlqIds", keys=_FILTERS)
    except FilterError as error:
        raise Refused(400, str(error)) from None


def _keeper(filters: Filters, outbox: Outbox, now: int) -> Callable[[DeadLetter], bool]:
    """What a page keeps: a run's failed step the filters match."""

    def keep(entry: DeadLetter) -> bool:
        message = entry.message
        run = outbox.runs.of_delivery(message.run_id, message.url, message.call_type)
        if run is None:
            return False
        if not filters:
            return True
        header = dict(message.headers)
        fields = {
            "workflowUrl": run.url,
            "workflowRunId": run.run_id,
            "workflowCreatedAt": str(run.created_at),
            "label": run.label,
            "failureFunctionState": _failure_function_state(entry, outbox, now),
            "callerIp": "127.0.0.1",
            "flowControlKey": header.get("upstash-flow-control-key"),
            "responseStatus": str(entry.response_status),
        }
        return filters.matches(fields, entry.failed_at)

    return keep


def _with_cursor(answer: dict[str, Any], cursor: int | None) -> dict[str, Any]:
    if cursor is not None:
        answer["cursor"] = str(cursor)
    return answer
