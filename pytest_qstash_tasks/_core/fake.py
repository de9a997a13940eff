"""The fake: state, faults, calls and teardown checks, behind one ``dispatch``.

Transports call ``dispatch`` with a neutral ``Request`` and hand the ``Reply`` back
to their client; everything QStash-specific happens here and below.
"""

from __future__ import annotations

import datetime as _dt
import threading
from types import TracebackType
from typing import Literal, TypeVar

from .args import check_end_cursor, check_int, check_token
from .base_url import DEFAULT_BASE_URL, BaseURL
from .calls import RecordedCall, record_call
from .calls_api import CallsAPI
from .clock import Clock, ClockMode
from .endpoint import EndpointConfig, EndpointRequest, EndpointResponse, handle
from .errors import QStashTasksLoopError
from .exchange import JSON_HEADERS, Reply, Request, error_body, past_read_timeout
from .expectations import ExpectedMiss
from .fault_api import FaultAPI
from .faults import Fault
from .intercept_api import InterceptAPI
from .lifecycle import is_timeout
from .loop_guard import LoopGuard, current_actor
from .report import Waiting, format_problems, loop_message, problems
from .seeding import Stream
from .state_api import StateAPI
from .store import TaskStore
from .timing import DEFAULT_START_MS

__all__ = ["DEFAULT_TOKEN", "LOOP_STATUS", "QStashTasksFake"]

#: What ``.token`` hands out when no token is configured (any non-empty one is accepted).
DEFAULT_TOKEN = "qstash-tasks-test-token"
#: The status a client over a socket gets when the loop guard stops it (508 Loop
#: Detected): the fake cannot raise in another process.
LOOP_STATUS = 508

_Self = TypeVar("_Self", bound="QStashTasksFake")


class QStashTasksFake(StateAPI, FaultAPI, CallsAPI, InterceptAPI):
    """A stateful fake of QStash's ``GET /v1/messages/{messageId}/tasks``.

    Use it through a transport: ``QStashTasksMock`` (httpx, in-process) or
    ``QStashTasksServer`` (a real HTTP server on the loopback interface).

    Args:
        base_url: Where the fake listens: scheme, host, optional port and path prefix.
        token: The only bearer token accepted. ``None`` accepts any non-empty token.
        page_size: Most tasks in one page (QStash: 100).
        end_cursor: The cursor of the last page: ``0``, or ``None`` to leave it out.
        max_identical_requests: How many identical requests, with identical answers
            and nothing changed in between, pass before the next one is stopped as a
            likely infinite loop (``QStashTasksLoopError``).
        assert_all_requests_served: Whether ``verify()`` fails on requests the fake
            could not serve (other paths, unknown messages, bad auth, ...).
        assert_all_scripted_pages_requested: Whether ``verify()`` fails on pages of
            ``add_pages`` that no request asked for.
        assert_all_faults_triggered: Whether ``verify()`` fails on faults
            (``fail_next`` and its siblings) that did not fire as often as planned.
        guard_real_qstash: Whether a request from this process to the real QStash
            (``qstash.upstash.io``, ``qstash-<region>.upstash.io``) is stopped with
            ``QStashTasksRealHostError`` and fails ``verify()`` while the fake is active.
        start: Where the clock starts: unix ms, an aware datetime or an ISO 8601 str.
        clock: ``"fake"`` (default): the clock moves only when the test moves it;
            ``"wall"``: it follows ``time.time()``, so real time, time-machine and
            freezegun move simulated deliveries.
        patch_sleep: While the fake is started, ``time.sleep``, ``asyncio.sleep``,
            ``anyio.sleep`` and ``trio.sleep`` move the fake's clock instead of waiting.
        seed: Seed of the tasks ``add(count=...)`` generates: ``0`` by default, so a
            fake made by hand (say, for a whole module) holds the same data whichever
            test uses it first; ``None`` draws from the running test's own stream, as
            the fixtures' fakes do (seeded from the node id, or the marker's ``seed``).
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | None = None,
        page_size: int = 100,
        end_cursor: Literal[0] | None = 0,
        max_identical_requests: int = 100,
        assert_all_requests_served: bool = True,
        assert_all_scripted_pages_requested: bool = True,
        assert_all_faults_triggered: bool = True,
        guard_real_qstash: bool = True,
        start: int | _dt.datetime | str = DEFAULT_START_MS,
        clock: ClockMode = "fake",
        patch_sleep: bool = False,
        seed: int | None = 0,
    ) -> None:
        self._url = BaseURL.parse(base_url)
        self._config = EndpointConfig(
            base_path=self._url.path,
            token=check_token(token),
            page_size=check_int("page_size", page_size, 1),
            end_cursor=check_end_cursor(end_cursor),
        )
        self._loop_guard = LoopGuard(check_int("max_identical_requests", max_identical_requests, 1))
        self.assert_all_requests_served = assert_all_requests_served
        self.assert_all_scripted_pages_requested = assert_all_scripted_pages_requested
        self.assert_all_faults_triggered = assert_all_faults_triggered
        self.guard_real_qstash = guard_real_qstash
        self._seed = None if seed is None else check_int("seed", seed)
        self._stream = None if self._seed is None else Stream(None, self._seed)
        self.clock = Clock(start, mode=clock)
        self.patch_sleep = patch_sleep
        self._sleep_patch = None
        self._store = TaskStore()
        self._faults = []
        self._calls = []
        self._loop_errors: list[RecordedCall] = []
        self._real_host_calls: list[RecordedCall] = []
        self._expected: list[ExpectedMiss] = []
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------------

    @property
    def token(self) -> str:
        """A bearer token the fake accepts: give it to the client under test."""
        return self._config.token or DEFAULT_TOKEN

    @property
    def page_size(self) -> int:
        """Most tasks in one page."""
        return self._config.page_size

    @property
    def end_cursor(self) -> Literal[0] | None:
        """The last page's cursor: ``0``, or ``None`` when the field is left out."""
        return self._config.end_cursor

    @property
    def max_identical_requests(self) -> int:
        """Identical requests in a row the loop guard lets through."""
        return self._loop_guard.limit

    @max_identical_requests.setter
    def max_identical_requests(self, value: int) -> None:
        self._loop_guard.limit = check_int("max_identical_requests", value, 1)

    # -- transports -----------------------------------------------------------------

    def start(self: _Self) -> _Self:
        """Start answering requests (each transport says how)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop answering requests. Recorded calls and stored tasks stay readable."""
        raise NotImplementedError

    def dispatch(self, request: Request, *, decline_unknown_paths: bool = False) -> Reply | None:
        """Answer one request; ``None`` when declined (see ``decline_unknown_paths``).

        Runs the endpoint, then the planned faults and the loop guard, and records the
        call. With ``decline_unknown_paths`` a request for a path the fake does not
        serve is left to someone else (not answered, not recorded).
        """
        endpoint_request = EndpointRequest(
            method=request.method,
            raw_path=request.raw_path,
            query=request.query,
            authorization=request.header("authorization"),
            now=self.clock.now,
        )
        with self._lock:
            answer = handle(endpoint_request, self._store, self._config)
            if decline_unknown_paths and answer.unserved_reason == "unknown_path":
                return None
            fault = self._take_fault(answer) if self._faults else None
            if fault is None or fault.kind == "delay":
                reply, call = self._endpoint_reply(request, endpoint_request, answer, fault)
            else:
                reply, call = self._fault_reply(request, answer, fault)
            self._calls.append(call)
        return reply

    def _endpoint_reply(
        self,
        request: Request,
        endpoint_request: EndpointRequest,
        answer: EndpointResponse,
        fault: Fault | None,
    ) -> tuple[Reply, RecordedCall]:
        """The endpoint's answer (after a planned delay), unless the loop guard stops it."""
        loop = None if fault is not None else self._check_loop(request, endpoint_request, answer)
        if loop is None:
            reply = past_read_timeout(
                request,
                Reply(
                    "answer",
                    answer.status,
                    answer.headers,
                    answer.body,
                    delay=0.0 if fault is None else fault.delay,
                ),
            )
        elif request.in_process:
            reply = Reply("raise", exception=loop)
        else:
            reply = Reply("answer", LOOP_STATUS, JSON_HEADERS, error_body(str(loop)))
        call = record_call(request, answer, reply, fault, loop or reply.exception)
        if loop is not None:
            self._loop_errors.append(call)
        return reply, call

    def _fault_reply(
        self, request: Request, answer: EndpointResponse, fault: Fault
    ) -> tuple[Reply, RecordedCall]:
        """What a planned ``fail``, ``rate_limit`` or ``raise`` fault gives the client."""
        if fault.kind == "raise":
            error = fault.new_exception()
            if request.in_process:
                action: Literal["raise", "close", "hold"] = "raise"
            else:
                action = "hold" if is_timeout(type(error)) else "close"
            reply = Reply(action, delay=fault.delay, exception=error)
            return reply, record_call(request, answer, reply, fault, error)
        assert fault.status is not None
        reply = past_read_timeout(
            request,
            Reply(
                "answer", fault.status, fault.headers_at(self.clock.now), fault.body, fault.delay
            ),
        )
        return reply, record_call(request, answer, reply, fault, reply.exception)

    def _check_loop(
        self, request: Request, endpoint_request: EndpointRequest, answer: EndpointResponse
    ) -> BaseException | None:
        # What was asked (method, path, query, auth, the clock's time), what it got, and
        # whether anything stored changed in between.
        key = (endpoint_request, answer.status, answer.body, self._store.version)
        actor = current_actor() if request.client is None else request.client
        repeats = self._loop_guard.count(actor, key)
        if repeats <= self._loop_guard.limit:
            return None
        return QStashTasksLoopError(
            loop_message(
                request.method,
                request.url,
                answer.cursor,
                repeats,
                answer.status,
                self._loop_guard.limit,
                owner=self._owner(),
                waiting=Waiting(
                    answer.message_id,
                    endpoint_request.now,
                    self._store.unsettled(answer.message_id, endpoint_request.now),
                    self.clock.mode,
                ),
            )
        )

    # -- teardown checks ------------------------------------------------------------

    def verify(self) -> None:
        """Raise ``AssertionError`` listing what went wrong during the test.

        Checks that no request hit a likely infinite loop and, unless switched off,
        that the fake could serve every request to its host
        (``assert_all_requests_served``), that every scripted page was requested
        (``assert_all_scripted_pages_requested``) and that every fault fired as often
        as planned (``assert_all_faults_triggered``). The fixtures call this at
        teardown.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        found = self.problems()
        if found:
            raise AssertionError(format_problems(found))

    def problems(self) -> list[str]:
        """What ``verify()`` would report, one paragraph each."""
        with self._lock:
            calls, loops = list(self._calls), list(self._loop_errors)
            real_host = list(self._real_host_calls)
            expected = list(self._expected)
            scripted, planned = list(self._store.scripted.values()), list(self._faults)
        return problems(
            base_url=self.base_url,
            calls=calls,
            loops=loops,
            real_host=real_host,
            scripted=scripted,
            faults=planned,
            expected=expected,
            owner=self._owner(),
            checks={
                "assert_all_requests_served": self.assert_all_requests_served,
                "assert_all_scripted_pages_requested": self.assert_all_scripted_pages_requested,
                "assert_all_faults_triggered": self.assert_all_faults_triggered,
            },
        )

    # -- context manager ------------------------------------------------------------

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            self.verify()

    async def __aenter__(self: _Self) -> _Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        with self._lock:
            messages, calls = len(self._store.known_ids()), len(self._calls)
        return (
            f"<{type(self).__name__} {self.base_url} {self._state_word()}, "
            f"{messages} message(s), {calls} call(s)>"
        )

    def _state_word(self) -> str:
        return "stopped"
