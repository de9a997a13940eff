"""The request pipeline: one neutral request in, one reply out.

A transport turns its library's request into a ``Request`` and hands it to the fake,
whose ``Dispatcher`` answers it. First the events due by the clock's time run (the
``Timeline``: under ``clock="wall"`` a jump of time-machine or freezegun makes some due).
A request to the v2 message API (publish, batch, messages, URL groups) is answered by
``publishing``; one to the tasks endpoint by ``endpoint``, then the planned fault it
meets, if any, then the loop guard. The call is recorded, and the ``Reply`` goes back to
the transport to carry out. Every step runs under the fake's lock, so one request reads
and changes the fake's parts as one step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pytest_qstash_tasks._core.engine.clock import Clock
from pytest_qstash_tasks._core.engine.signing import KeyRing
from pytest_qstash_tasks._core.engine.timeline import Timeline
from pytest_qstash_tasks._core.errors import QStashTasksLoopError
from pytest_qstash_tasks._core.exchange import (
    JSON_HEADERS,
    EndpointResponse,
    Reply,
    Request,
    error_body,
    past_read_timeout,
)
from pytest_qstash_tasks._core.report import Waiting, loop_message
from pytest_qstash_tasks._core.state.calls import CallLog, record_call
from pytest_qstash_tasks._core.state.dlq import DeadLetterQueue
from pytest_qstash_tasks._core.state.faults import Fault, FaultQueue
from pytest_qstash_tasks._core.state.lifecycle import is_timeout
from pytest_qstash_tasks._core.state.loop_guard import LoopGuard, current_actor
from pytest_qstash_tasks._core.state.outbox import Outbox
from pytest_qstash_tasks._core.state.schedules import ScheduleBook
from pytest_qstash_tasks._core.state.store import TaskStore

from . import dlq as dlq_api
from . import flow_control as flow_api
from . import keys as keys_api
from . import logs as logs_api
from . import queues as queues_api
from . import schedules as schedules_api
from . import workflows as workflows_api
from .dlq import is_dlq_path
from .flow_control import is_flow_control_path
from .keys import is_keys_path
from .logs import is_logs_path
from .messages import handle_v2, serves_v2_path
from .publishing import PublishConfig
from .queues import is_queues_path
from .refusals import Refused, json_answer, refusal
from .schedules import Firings, is_schedules_path
from .tasks import (
    EndpointConfig,
    EndpointRequest,
    bearer_token,
    handle,
    page_number,
    serves_tasks_path,
)
from .workflow_events import WaitTimeouts, is_events_path
from .workflows import is_triggers_path, is_workflow_dlq_path, is_workflows_path

__all__ = ["LOOP_STATUS", "Dispatcher", "serves_path"]

#: A JSON resource's answer to a request at a time, given the path from ``/v2/``.
_Serve = Callable[[Request, int, str], tuple[int, Any]]

#: The status a client over a socket gets when the loop guard stops it (508 Loop
#: Detected): the fake cannot raise in another process.
LOOP_STATUS = 508


def serves_path(raw_path: str, base_path: str) -> bool:
    """Whether ``raw_path`` is one of the fake's own (the tasks endpoint's or the message
    API's), whatever else is wrong with the request."""
    return serves_tasks_path(raw_path, base_path) or serves_v2_path(raw_path, base_path)


class Dispatcher:
    """Answers requests from the fake's parts: its store, outbox, timeline, fault queue,
    call log and clock (shared with the fake, which changes them for the
    test), and the loop guard (its own). ``owner`` tells messages how the fake was
    configured (see ``report.switch_text``); ``new_id`` makes the ids of published
    messages and their tasks."""

    def __init__(
        self,
        store: TaskStore,
        outbox: Outbox,
        timeline: Timeline,
        faults: FaultQueue,
        calls: CallLog,
        clock: Clock,
        config: EndpointConfig,
        publish_config: PublishConfig,
        lock: threading.Lock,
        *,
        dlq: DeadLetterQueue,
        schedules: ScheduleBook,
        firings: Firings,
        waits: WaitTimeouts,
        keys: KeyRing,
        max_identical_requests: int,
        owner: Callable[[], str | None],
        new_id: Callable[[str], str],
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.timeline = timeline
        self.dlq = dlq
        self.schedules = schedules
        self.firings = firings
        self.waits = waits
        self.keys = keys
        self.faults = faults
        self.calls = calls
        self.clock = clock
        self.config = config
        self.publish_config = publish_config
        self.lock = lock
        self.loop_guard = LoopGuard(max_identical_requests)
        self.owner = owner
        self.new_id = new_id
        self._resources = self._json_resources()

    def dispatch(self, request: Request) -> Reply:
        """Answer one request: the message API's, or the tasks endpoint's with the
        planned faults and the loop guard; the call is recorded."""
        self.timeline.run_due()
        if request.raw_path.startswith(self.config.base_path + "/v2/"):
            return self._v2_reply(request)
        endpoint_request = EndpointRequest(
            method=request.method,
            raw_path=request.raw_path,
            query=request.query,
            authorization=request.header("authorization"),
            now=self.clock.now,
        )
        with self.lock:
            response = handle(endpoint_request, self.store, self.config)
            fault = None
            if self.faults:
                fault = self.faults.take(
                    response.message_id,
                    response.cursor,
                    lambda: page_number(response, self.store, self.config),
                )
            if fault is None or fault.kind == "delay":
                return self._endpoint_reply(request, endpoint_request, response, fault)
            return self._fault_reply(request, response, fault)

    def _v2_reply(self, request: Request) -> Reply:
        """The message API's answer (no fault or loop guard applies to it)."""
        with self.lock:
            response = self._v2_response(request, self.clock.now)
            reply = Reply("answer", response.status, response.headers, response.body)
            self.calls.record(record_call(request, response, reply, None, None))
            return reply

    def _v2_response(self, request: Request, now: int) -> EndpointResponse:
        base = self.config.base_path
        path = request.raw_path
        if is_logs_path(path, base):
            return self._authorized(
                request, lambda token: logs_api.respond(request, now, self.outbox.log, token)
            )
        if is_dlq_path(path, base):
            rest = path[len(base) + len("/v2/dlq") :].split("/")[1:]
            return self._authorized(
                request,
                lambda token: dlq_api.respond(
                    request, now, self.outbox, self.dlq, self.publish_config, self.new_id,
                    token, rest,
                ),
            )  # fmt: skip
        found = next((serve for serves, serve in self._resources if serves(path, base)), None)
        if found is not None:
            serve: _Serve = found
            after = path[len(base) :]  # the path from /v2/
            return self._authorized(
                request, lambda token: json_answer(*serve(request, now, after), token)
            )
        return handle_v2(request, now, self.outbox, self.config, self.publish_config, self.new_id)

    def _json_resources(self) -> tuple[tuple[Callable[[str, str], bool], _Serve], ...]:
        """Each resource that answers JSON: whether a path is its, and its answer to a
        request (status and payload) given the path from ``/v2/``."""

        def under(prefix: str, rest: str) -> list[str]:
            return rest[len(prefix) :].split("/")[1:]

        outbox, publish_config, new_id = self.outbox, self.publish_config, self.new_id
        return (
            (is_schedules_path, lambda request, now, rest: schedules_api.respond(
                request, now, self.schedules, self.firings, under("/v2/schedules", rest))),
            (is_queues_path, lambda request, now, rest: queues_api.respond(
                request, now, outbox, under("/v2/queues", rest))),
            (is_flow_control_path, lambda request, now, rest: flow_api.respond(
                request, now, outbox.flow, rest)),
            (is_workflow_dlq_path, lambda request, now, rest: _workflow_dlq(
                request, now, outbox, self.dlq, publish_config, new_id,
                under("/v2/workflows/dlq", rest))),
            (is_workflows_path, lambda request, now, rest: workflows_api.respond(
                request, now, outbox, publish_config, new_id, under("/v2/workflows", rest))),
            (is_triggers_path, lambda request, now, rest: workflows_api.trigger(
                request, now, outbox, publish_config, new_id)),
            (is_events_path, lambda request, now, rest: self.waits.respond(request, now, rest)),
            (is_keys_path, lambda request, now, rest: keys_api.respond(request, self.keys, rest)),
        )  # fmt: skip

    def _authorized(
        self, request: Request, serve: Callable[[str | None], EndpointResponse]
    ) -> EndpointResponse:
        """``serve``'s response, given the token, once the bearer token is accepted; a
        refusal (``Refused``) as QStash words it."""
        token, problem = bearer_token(request.header("authorization"), self.config.token)
        if problem is not None:
            return refusal(Refused(401, problem, "unauthorized"), token)
        try:
            return serve(token)
        except Refused as refused:
            return refusal(refused, token)

    def _endpoint_reply(
        self,
        request: Request,
        endpoint_request: EndpointRequest,
        response: EndpointResponse,
        fault: Fault | None,
    ) -> Reply:
        """The endpoint's response (after a planned delay), unless the loop guard stops
        it (under the lock)."""
        loop = None if fault is not None else self._loop_error(request, endpoint_request, response)
        if loop is None:
            delay = 0.0 if fault is None else fault.delay
            reply = Reply("answer", response.status, response.headers, response.body, delay)
            reply = past_read_timeout(request, reply)
        elif request.in_process:
            reply = Reply("raise", exception=loop)
        else:
            reply = Reply("answer", LOOP_STATUS, JSON_HEADERS, error_body(str(loop)))
        call = record_call(request, response, reply, fault, loop or reply.exception)
        self.calls.record(call, loop=loop is not None)
        return reply

    def _fault_reply(self, request: Request, response: EndpointResponse, fault: Fault) -> Reply:
        """What a planned ``fail``, ``rate_limit`` or ``raise`` fault gives the client
        (under the lock)."""
        error: BaseException | None
        if fault.kind == "raise":
            error = fault._new_exception()
            if request.in_process:
                action: Literal["raise", "close", "hold"] = "raise"
            else:
                action = "hold" if is_timeout(type(error)) else "close"
            reply = Reply(action, delay=fault.delay, exception=error)
        else:
            assert fault.status is not None
            headers = fault._headers_at(self.clock.now)
            reply = Reply("answer", fault.status, headers, fault.body, fault.delay)
            reply = past_read_timeout(request, reply)
            error = reply.exception
        self.calls.record(record_call(request, response, reply, fault, error))
        return reply

    def _loop_error(
        self, request: Request, endpoint_request: EndpointRequest, response: EndpointResponse
    ) -> QStashTasksLoopError | None:
        """The loop guard's error when this request is one identical request too many."""
        # What was asked (method, path, query, auth, the clock's time), what it got, and
        # whether anything stored changed in between.
        key = (endpoint_request, response.status, response.body, self.store.version)
        client = request.client if request.client is not None else current_actor()
        repeats = self.loop_guard.count(client, key)
        if repeats <= self.loop_guard.limit:
            return None
        now = endpoint_request.now
        waiting = Waiting(
            response.message_id,
            now,
            self.store.unsettled(response.message_id, now),
            self.clock.mode,
        )
        return QStashTasksLoopError(
            loop_message(
                request.method,
                request.url,
                response.cursor,
                repeats,
                response.status,
                self.loop_guard.limit,
                owner=self.owner(),
                waiting=waiting,
            )
        )


def _workflow_dlq(
    request: Request,
    now: int,
    outbox: Outbox,
    dlq: DeadLetterQueue,
    publish_config: PublishConfig,
    new_id: Callable[[str], str],
    rest: Sequence[str],
) -> tuple[int, Any]:
    """The Workflow DLQ's answer; its module imported at its first request (the standalone
    command's start is measured against importing pydantic: benchmark 6)."""
    from .workflow_dlq import respond

    return respond(request, now, outbox, dlq, publish_config, new_id, rest)
