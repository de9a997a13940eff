"""The request pipeline: one neutral request in, one reply out.

A transport turns its library's request into a ``Request`` and hands it to the fake,
whose ``Dispatcher`` answers it: the endpoint's response first (what QStash would
answer), then the planned fault it meets, if any, then the loop guard; the call is
recorded, and the ``Reply`` goes back to the transport to carry out. Every step runs
under the fake's lock, so one request reads and changes the fake's parts as one step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

from .calls import CallLog, record_call
from .clock import Clock
from .endpoint import EndpointConfig, EndpointRequest, EndpointResponse, handle, page_number
from .errors import QStashTasksLoopError
from .exchange import JSON_HEADERS, Reply, Request, error_body, past_read_timeout
from .faults import Fault, FaultQueue
from .lifecycle import is_timeout
from .loop_guard import LoopGuard
from .report import Waiting, loop_message
from .store import TaskStore

__all__ = ["LOOP_STATUS", "Dispatcher"]

#: The status a client over a socket gets when the loop guard stops it (508 Loop
#: Detected): the fake cannot raise in another process.
LOOP_STATUS = 508


class Dispatcher:
    """Answers requests from the fake's parts: its store, fault queue, call log and
    clock (shared with the fake, which changes them for the test), and the loop guard
    (its own). ``owner`` tells messages how the fake was configured (see
    ``report.switch_text``)."""

    def __init__(
        self,
        store: TaskStore,
        faults: FaultQueue,
        calls: CallLog,
        clock: Clock,
        config: EndpointConfig,
        lock: threading.Lock,
        *,
        max_identical_requests: int,
        owner: Callable[[], str | None],
    ) -> None:
        self.store = store
        self.faults = faults
        self.calls = calls
        self.clock = clock
        self.config = config
        self.lock = lock
        self.loop_guard = LoopGuard(max_identical_requests)
        self.owner = owner

    def dispatch(self, request: Request) -> Reply:
        """Answer one request: the endpoint, then the planned faults and the loop
        guard; the call is recorded."""
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
        repeats = self.loop_guard.count(request.client, key)
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
