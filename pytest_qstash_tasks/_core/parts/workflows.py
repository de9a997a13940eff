"""``qstash_tasks.workflows``: the Upstash Workflow runs the fake holds, each with its steps
as the workflow recorded them, its state and result; a test starts runs and asserts on
how they ended."""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_qstash_tasks._core.api.publishing import PublishConfig
from pytest_qstash_tasks._core.api.refusals import Refused
from pytest_qstash_tasks._core.api.workflows import start_run
from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.workflows import Run

__all__ = ["WorkflowRun", "WorkflowStep", "Workflows"]


@dataclass(frozen=True)
class WorkflowStep:
    """One step a run took: its ``step_id``, ``name`` and ``type`` (``Run``,
    ``SleepFor``, ``SleepUntil``, ``Call``...), what it gave (``out``, parsed from JSON
    where it is JSON), how many ran beside it (``concurrent``), and the id and time of
    the message that recorded it."""

    step_id: int | None
    name: str
    type: str
    out: Any
    concurrent: int
    message_id: str
    created_at: int

    def describe(self) -> str:
        """One line: name, type and what it gave."""
        shown = "" if self.out is None else f" -> {json.dumps(self.out)[:80]}"
        return f"{self.name} ({self.type}){shown}"


@dataclass(frozen=True)
class WorkflowRun:
    """One run, as it was when read: its ``run_id``, the workflow's ``url``, its
    ``state`` (``RUN_STARTED``, ``RUN_SUCCESS``, ``RUN_FAILED``, ``RUN_CANCELED``),
    when it started and ended (unix ms), the initial ``payload``, the ``steps`` it took,
    its ``result`` (what the workflow ended it with, if anything) and, when it failed,
    the ``error`` the last attempt met."""

    run_id: str
    url: str
    state: str
    created_at: int
    completed_at: int | None
    payload: bytes
    steps: tuple[WorkflowStep, ...]
    result: bytes | None
    error: str | None

    @classmethod
    def of(cls, run: Run) -> WorkflowRun:
        """A snapshot of a stored run."""
        steps = []
        for message in run.messages[1:]:
            step = message.step()
            if step is None:
                continue
            out = step.get("out")
            if isinstance(out, str):
                with contextlib.suppress(ValueError):  # a run step's out is JSON
                    out = json.loads(out)
            taken = WorkflowStep(
                step.get("stepId"), str(step.get("stepName")), str(step.get("stepType")),
                out, int(step.get("concurrent") or 1), message.message_id,
                message.created_at,
            )  # fmt: skip
            steps.append(taken)
        payload = run.messages[0].body if run.messages else b""
        return cls(
            run.run_id, run.url, run.state, run.created_at, run.completed_at, payload,
            tuple(steps), run.result, run.error,
        )  # fmt: skip

    def describe(self) -> str:
        """The run and its steps, a line each."""
        ended = "" if self.completed_at is None else f" at {self.completed_at}"
        error = "" if self.error is None else f": {self.error}"
        lines = [f"{self.run_id} ({self.url}): {self.state}{ended}{error}"]
        lines += [f"    {n}. {step.describe()}" for n, step in enumerate(self.steps, 1)]
        if not self.steps:
            lines.append("    (no step yet)")
        return "\n".join(lines)


class Workflows:
    """The workflow runs: ``qstash_tasks.workflows``."""

    def __init__(
        self,
        outbox: Outbox,
        publish_config: PublishConfig,
        new_id: Callable[[str], str],
        clock: Clock,
        timeline: Timeline,
        lock: threading.Lock,
    ) -> None:
        self._outbox = outbox
        self._publish_config = publish_config
        self._new_id = new_id
        self._clock = clock
        self._timeline = timeline
        self._lock = lock

    def list(self) -> builtins.list[WorkflowRun]:
        """Every run, in the order started (events due by the clock's time run first)."""
        self._timeline.run_due()
        with self._lock:
            return [WorkflowRun.of(run) for run in self._outbox.runs]

    def get(self, run_id: str) -> WorkflowRun:
        """The run with that id; ``KeyError`` naming the runs there are if none."""
        runs = self.list()
        found = next((run for run in runs if run.run_id == run_id), None)
        if found is None:
            known = ", ".join(run.run_id for run in runs) or "none"
            raise KeyError(f"no workflow run {run_id!r} (there are: {known})")
        return found

    def trigger(
        self,
        url: str,
        body: str | bytes = b"",
        *,
        run_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int | None = None,
        failure_url: str | None = None,
    ) -> str:
        """Start a run of the workflow at ``url`` with ``body`` as its payload, as the
        Workflow client's ``trigger`` does: ``headers`` go to the workflow as
        ``Upstash-Forward-*`` would, ``retries`` is each step's (3 by default), and
        ``failure_url`` is called once a step's retries run out (the workflow's own URL
        when it serves a failure function). Returns the run's id: ``run_id`` with the
        ``wfr_`` the Workflow client puts in front of it, or a new ``wfr_...``. A
        ``ValueError`` says what QStash would refuse."""
        if not isinstance(url, str):
            raise TypeError(f"url is a str, not {type(url).__name__}")
        if run_id is None:
            run_id = self._new_id("wfr")
        elif not run_id.startswith("wfr_"):
            run_id = f"wfr_{run_id}"  # as the Workflow client's trigger does
        given = [(f"upstash-forward-{k.lower()}", str(v)) for k, v in (headers or {}).items()]
        if retries is not None:
            given.append(("upstash-retries", str(retries)))
        raw = body.encode() if isinstance(body, str) else bytes(body)
        self._timeline.run_due()
        with self._lock:
            now = self._clock.now
            try:
                start_run(
                    url, run_id, given, raw, failure_url, now, self._outbox,
                    self._publish_config, self._new_id,
                )  # fmt: skip
            except Refused as refused:
                raise ValueError(refused.text) from None
        return run_id

    def assert_run_succeeded(self, run_id: str | None = None) -> WorkflowRun:
        """Assert that the run (``None``: the only one) ended with success; returns it.
        The failure shows the run's state and steps, and every other run."""
        __tracebackhide__ = True  # show the user's line, not ours
        return self._assert_state(run_id, "RUN_SUCCESS", "succeeded")

    def assert_run_failed(self, run_id: str | None = None) -> WorkflowRun:
        """Assert that the run (``None``: the only one) failed: a step's retries ran out;
        returns it (its ``error`` says what the last attempt met)."""
        __tracebackhide__ = True
        return self._assert_state(run_id, "RUN_FAILED", "failed")

    def _assert_state(self, run_id: str | None, state: str, done: str) -> WorkflowRun:
        __tracebackhide__ = True
        runs = self.list()
        if run_id is None:
            if len(runs) != 1:
                shown = "\n".join(run.describe() for run in runs) or "(no run)"
                raise AssertionError(
                    f"expected one workflow run to check, found {len(runs)}: name the run "
                    f"(assert_run_{done}(run_id)). The runs:\n{shown}"
                )
            found: WorkflowRun | None = runs[0]
        else:
            found = next((run for run in runs if run.run_id == run_id), None)
        if found is not None and found.state == state:
            return found
        if found is None:
            shown = "\n".join(run.describe() for run in runs) or "(no run)"
            raise AssertionError(
                f"expected workflow run {run_id!r} to have {done}; there is no such run. "
                f"The runs:\n{shown}"
            )
        still = " (it is still going: move the clock, e.g. clock.run_all())"
        raise AssertionError(
            f"expected workflow run {found.run_id!r} to have {done}; it is {found.state}"
            + (still if found.state == "RUN_STARTED" else "")
            + f".\n{found.describe()}"
        )
