"""Upstash Workflow runs, as QStash keeps them. Pure data, no HTTP.

A Workflow SDK keeps no state: every message of a run (``Upstash-Workflow-RunId``) is
kept here in order, and each delivery of a step to the workflow's URL carries the run so
far as its body (``raw_steps``): the initial payload first, then every message of the
run up to the one delivered, bodies in base64, each with its ``callType``. The first
message (``Upstash-Workflow-Init: true``) makes the run; ``DELETE
/v2/workflows/runs/{runId}`` ends it (``RUN_SUCCESS``) or cancels it; a message of the
run that fails for good fails it.

It takes no lock of its own: the fake holds its lock around every use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CALL_TYPES", "STATES", "Invoker", "Run", "RunBook", "RunMessage", "Waiter"]

#: What a run's message is (``Upstash-Workflow-CallType``; ``step`` when not given).
CALL_TYPES = ("step", "toCallback", "fromCallback", "failureCall")
#: A run's states, as QStash names them.
STATES = ("RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED")


@dataclass(frozen=True)
class RunMessage:
    """One message of a run: its id, body, ``callType``, when it was made, and where it
    went (the workflow's URL, or a ``context.call``'s third party)."""

    message_id: str
    body: bytes
    call_type: str
    created_at: int
    url: str

    def raw(self) -> dict[str, Any]:
        """As a delivery's body lists it."""
        return {
            "messageId": self.message_id,
            "body": base64.b64encode(self.body).decode("ascii"),
            "callType": self.call_type,
        }

    def step(self) -> dict[str, Any] | None:
        """The step it records (its JSON body: ``stepId``, ``stepName``, ``stepType``,
        ``out``, ``concurrent``...), or ``None`` for what is no step: the calls' own
        messages (the run's first message is its initial payload: see ``Run``)."""
        if self.call_type != "step":
            return None
        try:
            step = json.loads(self.body)
        except ValueError:
            return None
        if not isinstance(step, dict) or "stepName" not in step:
            return None
        return step


@dataclass(frozen=True)
class Invoker:
    """The run that started another with ``context.invoke`` (``Upstash-Workflow-Invoke:
    true``, the publish's body naming the invoker): where the invoked run's outcome goes
    once it ends, as the ``Invoke`` step of the invoker."""

    url: str
    run_id: str
    #: The headers the invoker's next message is published with (lowercase names).
    headers: tuple[tuple[str, str], ...]
    #: The ``Invoke`` step the outcome completes (``stepId``, ``stepName``, ...).
    step: dict[str, Any]


@dataclass
class Run:
    """One workflow run: where it runs, its state and every message so far."""

    run_id: str
    url: str
    created_at: int
    state: str = "RUN_STARTED"
    completed_at: int | None = None
    #: What ``DELETE /v2/workflows/runs/{runId}?cancel=false`` was given (the result).
    result: bytes | None = None
    #: Why it failed: the error the last attempt met.
    error: str | None = None
    label: str | None = None
    messages: list[RunMessage] = field(default_factory=list)
    #: The run that invoked it, if one (``context.invoke``).
    invoker: Invoker | None = None
    #: What its first message set for the whole run (retries, retry delay, flow
    #: control, failure callback, forwarded headers): what QStash applies to the run's
    #: later steps that set none of it (``Upstash-Feature-Set: WF_TriggerOnConfig``).
    config: tuple[tuple[str, str], ...] = ()

    @property
    def over(self) -> bool:
        """Whether the run has ended (succeeded, failed or cancelled)."""
        return self.state != "RUN_STARTED"

    def raw_steps(self, up_to: str | None = None) -> list[dict[str, Any]]:
        """The body of a delivery to the workflow: every message up to and including
        ``up_to`` (``None``: all), the initial payload first."""
        steps = []
        for message in self.messages:
            steps.append(message.raw())
            if message.message_id == up_to:
                break
        return steps

    def end(self, state: str, now: int) -> None:
        """The run reaches ``state`` at ``now`` (once: a run that ended stays so)."""
        if not self.over:
            self.state, self.completed_at = state, now

    def steps(self) -> list[dict[str, Any]]:
        """The steps the run recorded, in order (the initial payload not among them)."""
        return [step for message in self.messages[1:] if (step := message.step()) is not None]

    def to_log_json(self) -> dict[str, Any]:
        """The run as ``GET /v2/workflows/logs`` lists it: its steps in groups, a
        parallel group for steps run side by side (``concurrent`` > 1)."""
        groups: list[dict[str, Any]] = []
        for index, message in enumerate(self.messages):
            entry = _log_step(message, initial=index == 0)
            if entry is None:
                continue
            kind = "parallel" if entry.get("concurrent", 1) > 1 else "sequential"
            if groups and groups[-1]["type"] == kind == "parallel":
                groups[-1]["steps"].append(entry)
            else:
                groups.append({"steps": [entry], "type": kind})
        answer: dict[str, Any] = {
            "workflowRunId": self.run_id,
            "workflowUrl": self.url,
            "workflowState": self.state,
            "workflowRunCreatedAt": self.created_at,
            "steps": groups,
        }
        if self.completed_at is not None:
            answer["workflowRunCompletedAt"] = self.completed_at
        if self.label:
            answer["label"] = self.label
        if self.result is not None:
            answer["workflowRunResponse"] = self.result.decode("utf-8", "replace")
        return answer


def _log_step(message: RunMessage, *, initial: bool) -> dict[str, Any] | None:
    entry: dict[str, Any] = {
        "callType": message.call_type,
        "messageId": message.message_id,
        "state": "STEP_SUCCESS",
        "createdAt": message.created_at,
    }
    if initial:  # the initial payload
        entry.update(stepName="init", stepType="Initial", concurrent=1)
        entry["out"] = message.body.decode("utf-8", "replace")
        return entry
    step = message.step()
    if step is None:
        return None  # a call's own messages show in its step
    for key in ("stepId", "stepName", "stepType", "out", "concurrent", "sleepFor", "sleepUntil"):
        if key in step:
            entry[key] = step[key]
    return entry


@dataclass(eq=False)
class Waiter:
    """A run waiting for an event (``context.waitForEvent``: ``POST /v2/wait/{eventId}``):
    where the event's step goes (``url``, with ``headers``), until when (``deadline``,
    unix ms), where the timeout's step goes, and the step it completes."""

    event_id: str
    run_id: str | None
    url: str
    deadline: int
    headers: dict[str, list[str]]
    timeout_url: str
    timeout_body: Any
    step: dict[str, Any]
    timeout: str

    def to_json(self) -> dict[str, Any]:
        """As ``GET /v2/waiters/{eventId}`` and a notify's answer show it (``deadline``
        in seconds)."""
        return {
            "url": self.url,
            "deadline": self.deadline // 1000,
            "headers": self.headers,
            "timeoutUrl": self.timeout_url,
            "timeoutBody": self.timeout_body,
            "timeoutHeaders": self.headers,
        }


class RunBook:
    """The runs by id, in the order started, and the runs waiting for events."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        #: The waiters of each event, in the order they came.
        self.waiters: dict[str, list[Waiter]] = {}
        #: Events notified to a run not waiting for them yet (the "safe" notify), kept
        #: until it waits: (run id, event id) -> the event's data.
        self.kept: dict[tuple[str, str], bytes] = {}

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs.values()))

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: str) -> Run | None:
        """The run with that id, if there is one."""
        return self._runs.get(run_id)

    def of_delivery(self, run_id: str | None, url: str, call_type: str) -> Run | None:
        """The run a message with these fields takes a step of (a delivery to the
        workflow's URL, but for the failure function's): the run that fails when its
        retries run out, and whose entry the Workflow DLQ shows."""
        run = None if run_id is None else self._runs.get(run_id)
        if run is None or url != run.url or call_type == "failureCall":
            return None
        return run

    def start(self, run_id: str, url: str, now: int, label: str | None) -> Run:
        """A new run."""
        run = self._runs[run_id] = Run(run_id, url, now, label=label)
        return run

    def wait(self, waiter: Waiter) -> None:
        """A run starts waiting for an event."""
        self.waiters.setdefault(waiter.event_id, []).append(waiter)

    def is_waiting(self, waiter: Waiter) -> bool:
        """Whether ``waiter`` still waits (neither notified nor timed out)."""
        return any(w is waiter for w in self.waiters.get(waiter.event_id, ()))

    def stop_waiting(self, waiter: Waiter) -> None:
        """``waiter`` got its event, or its time ran out."""
        left = [w for w in self.waiters.get(waiter.event_id, ()) if w is not waiter]
        if left:
            self.waiters[waiter.event_id] = left
        else:
            self.waiters.pop(waiter.event_id, None)

    def clear(self) -> None:
        """Forget every run, waiter and kept event."""
        self._runs.clear()
        self.waiters.clear()
        self.kept.clear()
