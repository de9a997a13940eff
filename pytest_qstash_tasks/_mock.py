"""``QStashTasksMock``: the endpoint core behind a respx router, with recorded calls."""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import inspect
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

import httpx
import respx
from respx.models import ResolvedRoute, RouteList

from ._assertions import (
    all_pages_fetched_problem,
    describe_filter,
    filter_calls,
    format_calls,
    times_text,
)
from ._calls import RecordedCall
from ._clock import Clock
from ._endpoint import EndpointConfig, EndpointRequest, EndpointResponse, handle
from ._errors import QStashTasksLoopError
from ._factories import generate
from ._faults import (
    ANY,
    Fault,
    _Any,
    check_exception,
    check_positive_int,
    check_target,
    error_body,
)
from ._ids import new_ids
from ._lifecycle import Outcome, SimulatedDelivery
from ._models import Task, TasksPage
from ._seeding import Stream, current_stream
from ._store import TaskStore
from ._timing import DEFAULT_START_MS

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TOKEN", "QStashTasksMock", "format_problems"]

#: The base URL the official SDK talks to when ``QSTASH_URL`` is not set.
DEFAULT_BASE_URL = "https://qstash.upstash.io"
#: What ``.token`` hands out when no token is configured (any non-empty one is accepted).
DEFAULT_TOKEN = "qstash-tasks-test-token"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Set while respx resolves a request for an async client: a delay must then be
#: awaited, not slept, so the event loop keeps running.
_IN_ASYNC = contextvars.ContextVar("qstash_tasks_in_async", default=False)
_Answer = httpx.Request | httpx.Response | None


class QStashTasksMock:
    """A stateful fake of QStash's ``GET /v1/messages/{messageId}/tasks``.

    In tests, take the ``qstash_tasks`` fixture, which builds one from the marker,
    ini options and ``QSTASH_URL``. Elsewhere (a module-scoped fixture, a script) use
    it as a context manager, sync or async; with no arguments it fakes
    ``https://qstash.upstash.io``::

        with QStashTasksMock() as fake:
            fake.add("msg_123", count=250)
            ...  # code that calls QStash through httpx

    Requests to its host are answered by the fake and recorded in ``calls``; requests
    to other hosts go where they would have gone without it (another respx router,
    or the network).

    Args:
        base_url: Where the fake listens: scheme, host, optional port and path prefix.
        token: The only bearer token accepted. ``None`` accepts any non-empty token.
        page_size: Most tasks in one page (QStash: 100).
        end_cursor: The cursor of the last page: ``0``, or ``None`` to leave it out.
        max_identical_requests: How many identical requests, with identical answers
            and nothing changed in between, pass before the next one raises
            ``QStashTasksLoopError`` (a client that never stops paging).
        assert_all_requests_served: Whether ``verify()`` fails on requests the fake
            could not serve (other paths, unknown messages, bad auth, ...).
        assert_all_scripted_pages_requested: Whether ``verify()`` fails on pages of
            ``add_pages`` that no request asked for.
        assert_all_faults_triggered: Whether ``verify()`` fails on faults
            (``fail_next`` and its siblings) that did not fire as often as planned.
        start: Where the clock starts: unix ms, an aware datetime or an ISO 8601 str.
        seed: Seed of the tasks ``add(count=...)`` generates; by default the test's
            own stream (seeded from its node id).
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
        start: int | _dt.datetime | str = DEFAULT_START_MS,
        seed: int | None = None,
    ) -> None:
        self._url = _parse_base_url(base_url)
        if token is not None and (not isinstance(token, str) or not token or " " in token):
            raise ValueError(
                f"token must be a non-empty str without spaces, or None; got {token!r}"
            )
        check_positive_int("page_size", page_size)
        check_positive_int("max_identical_requests", max_identical_requests)
        if end_cursor not in (0, None) or isinstance(end_cursor, bool):
            raise ValueError(
                f"end_cursor must be 0 or None (leave the field out), got {end_cursor!r}"
            )
        self._config = EndpointConfig(
            base_path=self._url.raw_path.decode("ascii").rstrip("/"),
            token=token,
            page_size=page_size,
            end_cursor=end_cursor,
        )
        self.max_identical_requests = max_identical_requests
        self.assert_all_requests_served = assert_all_requests_served
        self.assert_all_scripted_pages_requested = assert_all_scripted_pages_requested
        self.assert_all_faults_triggered = assert_all_faults_triggered
        self._faults: list[Fault] = []
        # With a seed, one stream for this fake's whole life; else the test's stream.
        self._stream = None if seed is None else Stream(None, seed)
        self.clock = Clock(start)
        self._store = TaskStore()
        self._calls: list[RecordedCall] = []
        self._loop_errors: list[RecordedCall] = []
        self._lock = threading.Lock()
        # Per thread and asyncio task: (last request's key, how many in a row).
        self._streaks: dict[tuple[int, int], tuple[tuple[Any, ...], int]] = {}
        self._router: respx.MockRouter | None = None

    # -- configuration --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL the fake answers on, e.g. ``https://qstash.upstash.io``."""
        return str(self._url).rstrip("/")

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

    # -- state ----------------------------------------------------------------------

    def add(
        self,
        message_id: str,
        tasks: Iterable[Task | Mapping[str, Any]] | None = None,
        *,
        count: int | None = None,
        **task_overrides: Any,
    ) -> list[Task]:
        """Store tasks for ``message_id`` (registering the message); returns them.

        Give ``tasks`` (``Task`` objects or wire dicts; an empty list registers the
        message with no tasks), or ``count`` to generate that many with ``make_tasks``,
        where ``task_overrides`` apply (``add("msg_1", count=5, state="failed")``).
        A task with no ``timeline_at`` is stamped from the clock in list order, newest
        first. Tasks already stored stay; a task id the message already has is refused.
        """
        if (tasks is None) == (count is None):
            raise TypeError("add() takes either tasks or count=, not both and not neither")
        if tasks is None:
            assert count is not None
            stream = self._stream or current_stream()
            built = generate(
                stream, count, message_id=message_id, now=self.clock.now, **task_overrides
            )
        else:
            if task_overrides:
                raise TypeError(
                    f"field overrides ({', '.join(sorted(task_overrides))}) apply to generated "
                    "tasks (count=...); set them on the tasks you pass instead"
                )
            if isinstance(tasks, (Task, Mapping, str, bytes)):
                raise TypeError("tasks must be a list of tasks; wrap a single task in a list")
            built = [
                task if isinstance(task, Task) else Task.model_validate(task) for task in tasks
            ]
            if not built:
                with self._lock:
                    self._store.add_message(message_id)
                return []
        with self._lock:
            return self._store.add(message_id, built, self.clock.now)

    def add_message(self, message_id: str) -> None:
        """Register ``message_id`` with no tasks: it answers ``200`` with ``tasks: []``."""
        with self._lock:
            self._store.add_message(message_id)

    def add_pages(self, message_id: str, pages: Iterable[TasksPage | Mapping[str, Any]]) -> None:
        """Serve ``pages`` verbatim for ``message_id``.

        A request without a cursor gets the first page; a request with a page's
        ``cursor`` gets the page after it. Each page but the last must hand out a
        cursor of its own, and the last must end the list (``0`` or no cursor).
        """
        with self._lock:
            self._store.add_pages(message_id, list(pages))

    def tasks(self, message_id: str) -> list[Task]:
        """The tasks stored for ``message_id``, in serving order (newest first)."""
        message = self._store.messages.get(message_id)
        if message is None:
            raise KeyError(f"message {message_id!r} holds no stored tasks")
        return message.tasks_at(self.clock.now)

    def simulate_delivery(
        self,
        message_id: str,
        *,
        url: str,
        outcomes: Sequence[Outcome],
        max_retry: int = 3,
        active_ms: int = 500,
        task_id: str | None = None,
    ) -> str:
        """Add a task that goes through QStash's delivery lifecycle as the clock moves.

        The task is created now (``clock.now``) and shows ``created``, ``planned``,
        then ``active`` for ``active_ms`` per attempt. Each attempt ends as its entry in
        ``outcomes`` says: an HTTP status of the destination (2xx delivers it), an
        exception type or instance for a timeout or connection failure, or the error
        text itself. After a failed attempt, while retries remain, the task shows
        ``error`` with ``retried`` counted up and waits ``backoff(retried)`` (QStash v1:
        ``min(86400, e ** (2 * retried))`` seconds), then ``planned`` and the next
        attempt; the failure with ``retried == max_retry`` leaves it ``failed``.
        ``outcomes`` must end the task: ``[500, 500, 200]`` is delivered with
        ``retried == 2``.

        Every response shows the state at the clock's time; ``clock.advance`` may jump
        any distance at once. Returns the task id. Call it again with another ``url``
        to model a message sent to several destinations.
        """
        with self._lock:
            stream = self._stream or current_stream()
            if task_id is None:
                stream.used = True
                task_id = new_ids("tsk", 1, stream.rng, stream.taken_ids)[0]
            delivery = SimulatedDelivery.plan(
                task_id=task_id,
                message_id=message_id,
                url=url,
                outcomes=outcomes,
                max_retry=max_retry,
                created_at=self.clock.now,
                active_ms=active_ms,
            )
            self._store.add_simulated(delivery)
        return task_id

    # -- faults ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        error: str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        cursor: int | _Any | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status``.

        The body is QStash-shaped: ``{"error": error}`` (by default the status's
        reason phrase); ``headers`` are added to the answer. Target one message with
        ``message_id``, one request with ``cursor`` (``None``: the first page's, which
        has none) or the ``page``-th page of a walk (1 is the first). Faults planned one
        after another form a sequence; used up, the endpoint serves normally again.
        ``delay`` (seconds) holds the answer back first. Returns the planned fault.
        """
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"fail_next() takes an HTTP error status 400-599, got {status!r}")
        if error is not None and not isinstance(error, str):
            raise TypeError(f"error must be a str or None, got {error!r}")
        extra = _check_headers(headers)
        label = _label("fail_next", repr(status), times, message_id, cursor, page)
        return self._plan(
            Fault(
                "fail",
                check_positive_int("times", times),
                *check_target(message_id, cursor, page, delay),
                status=status,
                body=error_body(status, error),
                headers=(("content-type", "application/json"), *extra),
                label=label,
            )
        )

    def rate_limit_next(
        self,
        *,
        times: int = 1,
        daily: bool = False,
        limit: int | None = None,
        remaining: int = 0,
        reset: int | None = None,
        message_id: str | None = None,
        cursor: int | _Any | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``429``, as QStash does.

        The burst limit (default) sends ``Burst-RateLimit-Limit``, ``-Remaining`` and
        ``-Reset``; ``daily=True`` sends ``RateLimit-Limit``, ``-Remaining`` and
        ``-Reset``, from which the official SDK raises ``RateLimitExceededError`` or
        ``DailyMessageLimitExceededError`` carrying these values. ``reset`` is a unix
        timestamp in seconds: by default the fake clock's next second (burst) or next
        UTC midnight (daily). ``limit`` defaults to 100 (burst, per second) or 1000
        (daily). Targets and ``delay`` as in ``fail_next``.
        """
        for name, value in (("limit", limit), ("remaining", remaining), ("reset", reset)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        prefix = "RateLimit" if daily else "Burst-RateLimit"
        headers: tuple[tuple[str, str], ...] = (
            ("content-type", "application/json"),
            (f"{prefix}-Limit", str((1000 if daily else 100) if limit is None else limit)),
            (f"{prefix}-Remaining", str(remaining)),
        )
        if reset is not None:
            headers = (*headers, (f"{prefix}-Reset", str(reset)))
        text = "daily message limit exceeded" if daily else "burst rate limit exceeded"
        label = _label(
            "rate_limit_next", "daily=True" if daily else "", times, message_id, cursor, page
        )
        return self._plan(
            Fault(
                "rate_limit",
                check_positive_int("times", times),
                *check_target(message_id, cursor, page, delay),
                status=429,
                body=error_body(429, text),
                headers=headers,
                reset_window=None if reset is not None else ("daily" if daily else "burst"),
                label=label,
            )
        )

    def raise_next(
        self,
        exception: BaseException | type[BaseException],
        *,
        times: int = 1,
        message_id: str | None = None,
        cursor: int | _Any | None = ANY,
        page: int | None = None,
        delay: float = 0,
    ) -> Fault:
        """Raise ``exception`` in the client for the next ``times`` matching requests.

        A transport error such as ``httpx.ConnectError``, ``httpx.ConnectTimeout``,
        ``httpx.ReadTimeout`` or ``httpx.RemoteProtocolError``, as a class (built with
        a message and the request) or an instance (copied for each raise). Targets and
        ``delay`` as in ``fail_next``.
        """
        planned = check_exception(exception)
        name = planned.__name__ if isinstance(planned, type) else type(planned).__name__
        label = _label("raise_next", name, times, message_id, cursor, page)
        return self._plan(
            Fault(
                "raise",
                check_positive_int("times", times),
                *check_target(message_id, cursor, page, delay),
                exception=planned,
                label=label,
            )
        )

    def delay_next(
        self,
        seconds: float,
        *,
        times: int = 1,
        message_id: str | None = None,
        cursor: int | _Any | None = ANY,
        page: int | None = None,
    ) -> Fault:
        """Hold back the normal answer to the next ``times`` matching requests.

        Async clients await the delay (the event loop keeps running); sync clients
        sleep. The fake's clock does not move. Targets as in ``fail_next``.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"delay_next() takes seconds > 0, got {seconds!r}")
        label = _label("delay_next", repr(seconds), times, message_id, cursor, page)
        return self._plan(
            Fault(
                "delay",
                check_positive_int("times", times),
                *check_target(message_id, cursor, page, seconds),
                label=label,
            )
        )

    @property
    def faults(self) -> list[Fault]:
        """Every fault planned, in order, used up or not (a copy)."""
        with self._lock:
            return list(self._faults)

    def _plan(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, answer: EndpointResponse) -> Fault | None:
        """The first pending fault this request meets, counted as fired (under the lock)."""
        page: int | None = None
        for fault in self._faults:
            if fault.fired >= fault.times:
                continue
            if fault.page is not None and page is None:
                page = self._page_number(answer)
            if fault.matches(answer.message_id, answer.cursor, page):
                fault.fired += 1
                return fault
        return None

    def _page_number(self, answer: EndpointResponse) -> int | None:
        if answer.task_count is None or answer.message_id is None:
            return None  # only served pages have a page number
        if answer.scripted_page is not None:
            return answer.scripted_page + 1
        message = self._store.messages[answer.message_id]
        return message.page_number(answer.cursor, self._config.page_size)

    # -- calls ----------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request the fake answered, in order (a copy)."""
        with self._lock:
            return list(self._calls)

    def get_calls(
        self,
        message_id: str | None = None,
        *,
        cursor: int | _Any | None = ANY,
        status: int | None = None,
        served: bool | None = None,
    ) -> list[RecordedCall]:
        """The recorded calls that match every filter given.

        ``cursor=None`` picks requests without a cursor (first pages); by default any
        cursor matches. ``served=True`` picks requests answered with a page of tasks.
        """
        with self._lock:
            return filter_calls(
                self._calls, message_id, cursor=cursor, status=status, served=served
            )

    def assert_called(
        self,
        message_id: str | None = None,
        *,
        times: int | None = None,
        cursor: int | _Any | None = ANY,
    ) -> None:
        """Assert that matching requests reached the fake: at least one, or exactly ``times``."""
        __tracebackhide__ = True  # show the user's line, not ours
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 0
        ):
            raise ValueError(f"times must be an int >= 0 or None, got {times!r}")
        with self._lock:
            calls = list(self._calls)
        matched = filter_calls(calls, message_id, cursor=cursor)
        what = describe_filter(message_id, cursor)
        if times is None and not matched:
            expected = f"expected {what} to the fake, got none."
        elif times is not None and len(matched) != times:
            expected = f"expected {what} {times_text(times)}, got {times_text(len(matched))}."
        else:
            return
        raise AssertionError(f"qstash_tasks: {expected}\n{format_calls(calls, matched)}")

    def assert_not_called(self, message_id: str | None = None) -> None:
        """Assert that no request (for ``message_id``, if given) reached the fake."""
        __tracebackhide__ = True  # show the user's line, not ours
        with self._lock:
            calls = list(self._calls)
        matched = filter_calls(calls, message_id)
        if matched:
            what = describe_filter(message_id, ANY)
            raise AssertionError(
                f"qstash_tasks: expected no {what}, got {len(matched)}.\n"
                f"{format_calls(calls, matched)}"
            )

    def assert_all_pages_fetched(self, message_id: str) -> None:
        """Assert that the client walked ``message_id`` to the end.

        A page without a cursor was served, and for every page served with a cursor
        to follow, a request with that cursor was served too, up to a page that ended
        the list.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        with self._lock:
            calls = list(self._calls)
            known = self._store.known_ids()
        problem = all_pages_fetched_problem(calls, message_id, known)
        if problem is not None:
            mine = [call for call in calls if call.message_id == message_id]
            raise AssertionError(
                f"qstash_tasks: expected every page of {message_id!r} to be fetched: "
                f"{problem}.\n{format_calls(calls, mine)}"
            )

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> QStashTasksMock:
        """Start intercepting requests to ``base_url``."""
        if self._router is not None:
            raise RuntimeError("this QStashTasksMock is already started")
        router = _Router(self._respond)
        router.start()
        # First in line, so QStash-host requests reach the fake even when another
        # respx router (say respx_mock) would answer them otherwise.
        if router.Mocker is not None and router in router.Mocker.routers:
            router.Mocker.routers.remove(router)
            router.Mocker.routers.insert(0, router)
        self._router = router
        return self

    def stop(self) -> None:
        """Stop intercepting. Recorded calls and stored tasks stay readable."""
        if self._router is not None:
            self._router.stop(quiet=True)
            self._router = None

    def verify(self) -> None:
        """Raise ``AssertionError`` listing what went wrong during the test.

        Checks that no request hit a likely infinite loop and, unless switched off,
        that the fake could serve every request to its host
        (``assert_all_requests_served``), that every scripted page was requested
        (``assert_all_scripted_pages_requested``) and that every fault fired as often
        as planned (``assert_all_faults_triggered``). The ``qstash_tasks`` fixture
        calls this at teardown.
        """
        __tracebackhide__ = True  # show the user's line, not ours
        problems = self.problems()
        if problems:
            raise AssertionError(format_problems(problems))

    def problems(self) -> list[str]:
        """What ``verify()`` would report, one paragraph each."""
        problems: list[str] = []
        with self._lock:
            loops = list(self._loop_errors)
            misses = [call for call in self._calls if call.miss is not None]
            requested = {
                (call.message_id, call.scripted_page)
                for call in self._calls
                if call.scripted_page is not None and call.served
            }
            unrequested = [
                (scripted, number)
                for scripted in self._store.scripted.values()
                for number in range(len(scripted.pages))
                if (scripted.message_id, number) not in requested
            ]
            unfired = [fault for fault in self._faults if fault.fired < fault.times]
        if loops:
            problems.append(
                "stopped a likely infinite loop: the same request kept getting the same "
                "answer (QStashTasksLoopError):\n" + "\n".join(f"  - {c.describe()}" for c in loops)
            )
        if misses and self.assert_all_requests_served:
            problems.append(
                f"{len(misses)} request(s) to {self.base_url} could not be served:\n"
                + "\n".join(f"  - {call.describe()}" for call in misses)
                + "\n"
                + _switch("assert_all_requests_served")
            )
        if unrequested and self.assert_all_scripted_pages_requested:
            lines = []
            for scripted, number in unrequested:
                how = (
                    "without a cursor"
                    if number == 0
                    else f"with cursor={scripted.pages[number - 1].cursor}"
                )
                lines.append(
                    f"  - page {number + 1} of {len(scripted.pages)} of "
                    f"{scripted.message_id!r} (asked for {how})"
                )
            problems.append(
                f"{len(unrequested)} scripted page(s) were never requested:\n"
                + "\n".join(lines)
                + "\n"
                + _switch("assert_all_scripted_pages_requested")
            )
        if unfired and self.assert_all_faults_triggered:
            problems.append(
                f"{len(unfired)} fault(s) did not fire as often as planned:\n"
                + "\n".join(f"  - {fault.describe()}" for fault in unfired)
                + "\n"
                + _switch("assert_all_faults_triggered")
            )
        return problems

    def __enter__(self) -> QStashTasksMock:
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

    async def __aenter__(self) -> QStashTasksMock:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        state = "started" if self._router is not None else "stopped"
        return (
            f"<QStashTasksMock {self.base_url} {state}, {len(self._store.known_ids())} "
            f"message(s), {len(self._calls)} call(s)>"
        )

    # -- the transport side ---------------------------------------------------------

    def _owns(self, url: httpx.URL) -> bool:
        base = self._url
        return (
            url.scheme == base.scheme
            and url.host == base.host
            and (url.port or _DEFAULT_PORTS.get(url.scheme))
            == (base.port or _DEFAULT_PORTS.get(base.scheme))
        )

    def _others_registered(self) -> bool:
        router = self._router
        return router is not None and router.Mocker is not None and len(router.Mocker.routers) > 1

    def _respond(self, request: httpx.Request) -> _Answer | Awaitable[_Answer]:
        """respx's view of the fake: answer requests to our host, leave the others alone."""
        if not self._owns(request.url):
            # Declining lets the next respx router try; with none left, pass through
            # to the network, as if the fake were not there.
            return None if self._others_registered() else request
        raw_path, _, query = request.url.raw_path.decode("ascii").partition("?")
        endpoint_request = EndpointRequest(
            method=request.method,
            raw_path=raw_path,
            query=query,
            authorization=request.headers.get("authorization"),
            now=self.clock.now,
        )
        with self._lock:
            answer = handle(endpoint_request, self._store, self._config)
            if answer.miss == "unknown_path" and self._others_registered():
                return None  # another respx router may fake the rest of QStash
            fault = self._take_fault(answer) if self._faults else None
            if fault is None or fault.kind == "delay":
                response = _response(answer.status, answer.headers, answer.body)
                error: BaseException | None = None
                if fault is None:
                    error = self._check_loop(request, answer)
                call = RecordedCall(
                    request=request,
                    response=None if error else response,
                    message_id=answer.message_id,
                    cursor=answer.cursor,
                    token=answer.token,
                    miss=answer.miss,
                    detail=answer.detail,
                    exception=error,
                    scripted_page=answer.scripted_page,
                    next_cursor=answer.next_cursor,
                    task_count=answer.task_count,
                    fault=None if fault is None else fault.label,
                )
                if error is not None:
                    self._loop_errors.append(call)
            else:
                if fault.kind == "raise":
                    response, error = None, fault.exception_for(request)
                else:
                    assert fault.status is not None
                    headers = fault.headers_at(self.clock.now)
                    response, error = _response(fault.status, headers, fault.body), None
                call = RecordedCall(
                    request=request,
                    response=response,
                    message_id=answer.message_id,
                    cursor=answer.cursor,
                    token=answer.token,
                    exception=error,
                    fault=fault.label,
                )
            self._calls.append(call)
        delay = 0.0 if fault is None else fault.delay
        if delay and _IN_ASYNC.get():
            return _later(delay, response, error)
        if delay:
            time.sleep(delay)
        if error is not None:
            raise error
        return response

    def _check_loop(
        self, request: httpx.Request, answer: EndpointResponse
    ) -> QStashTasksLoopError | None:
        key = (
            request.method,
            request.url.raw_path,
            request.headers.get("authorization"),
            answer.status,
            answer.body,
            self._store.version,
            self.clock.now,
        )
        # A loop lives in one thread or task: concurrent callers asking for the same
        # page are not one client going round in circles.
        actor = (threading.get_ident(), _current_task_id())
        last, repeats = self._streaks.get(actor, (None, 0))
        repeats = repeats + 1 if key == last else 1
        self._streaks[actor] = (key, repeats)
        if repeats <= self.max_identical_requests:
            return None
        cursor = "" if answer.cursor is None else f" (cursor={answer.cursor})"
        return QStashTasksLoopError(
            f"likely infinite loop: {request.method} {request.url}{cursor} was sent "
            f"{repeats} times in a row and got the same {answer.status} answer each "
            "time, with nothing changed in between. A client that pages should stop when "
            "the cursor is 0 or missing. (The limit is max_identical_requests="
            f"{self.max_identical_requests}; raise it with "
            "@pytest.mark.qstash_tasks(max_identical_requests=...).)"
        )


class _Router(respx.MockRouter):
    """A respx router that hands every request to the fake.

    Lighter than a ``MockRouter`` with a route, which is what made the fixture cost
    twice respx's own: no ``Route`` (each builds ``unittest.mock`` call lists), no
    snapshots to roll back, no second record of each call (the fake keeps its own).
    It also tells the fake when the client is async, so a delay can be awaited.
    """

    def __init__(self, respond: Callable[[httpx.Request], _Answer | Awaitable[_Answer]]) -> None:
        # Not MockRouter.__init__: the state it builds (call lists, a snapshot) is for
        # routes and rollbacks, and this router has neither.
        self._assert_all_called = False
        self._assert_all_mocked = True
        self._bases = {}
        self.routes = RouteList()
        self._snapshots = []
        self.Mocker = None
        self._using = None
        self._respond_to = respond

    @property
    def using(self) -> str | None:
        from respx.mocks import DEFAULT_MOCKER

        return DEFAULT_MOCKER

    def start(self) -> None:
        from respx.mocks import Mocker

        self.Mocker = Mocker.registry.get(self.using or "")
        if self.Mocker is not None:
            self.Mocker.register(self)
            self.Mocker.start()

    def stop(self, clear: bool = True, reset: bool = True, quiet: bool = False) -> None:
        if self.Mocker is not None:
            self.Mocker.unregister(self)
            self.Mocker.stop()

    def resolve(self, request: httpx.Request) -> ResolvedRoute:
        with self.resolver(request) as resolved:
            answer = self._respond_to(request)
            if answer is not None:
                resolved.route = _answering_route()
                resolved.response = answer  # type: ignore[assignment]
        if isinstance(resolved.response, httpx.Response):
            resolved.response.read()  # as respx does: the body is in memory already
        return resolved

    async def aresolve(self, request: httpx.Request) -> ResolvedRoute:
        token = _IN_ASYNC.set(True)
        try:
            with self.resolver(request) as resolved:
                answer = self._respond_to(request)
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer is not None:
                    resolved.route = _answering_route()
                    resolved.response = answer
            if isinstance(resolved.response, httpx.Response):
                await resolved.response.aread()
            return resolved
        finally:
            _IN_ASYNC.reset(token)

    def record(
        self,
        request: httpx.Request,
        *,
        response: httpx.Response | None = None,
        route: respx.Route | None = None,
    ) -> None:
        pass


@functools.cache
def _answering_route() -> respx.Route:
    # respx wants a route beside each answer (a pass-through names it as its origin);
    # one shared, never-called route serves every fake.
    return respx.Route()


def _current_task_id() -> int:
    """The running asyncio task's id, or 0 outside asyncio (sync code, trio)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return 0
    try:
        return id(asyncio.current_task())
    except RuntimeError:  # no running event loop in this thread
        return 0


def _response(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> httpx.Response:
    # A ready stream: content= would read the body through httpx's decoders here,
    # and respx reads it once more anyway.
    return httpx.Response(
        status,
        headers=[*headers, ("content-length", str(len(body)))],
        stream=httpx.ByteStream(body),
    )


async def _later(
    delay: float, response: httpx.Response | None, error: BaseException | None
) -> httpx.Response | None:
    import anyio  # httpx's own dependency; sleeps under asyncio and trio alike

    await anyio.sleep(delay)
    if error is not None:
        raise error
    return response


def _label(
    name: str, first: str, times: int, message_id: object, cursor: object, page: object
) -> str:
    args = [first] if first else []
    if times != 1:
        args.append(f"times={times!r}")
    if message_id is not None:
        args.append(f"message_id={message_id!r}")
    if cursor is not ANY:
        args.append(f"cursor={cursor!r}")
    if page is not None:
        args.append(f"page={page!r}")
    return f"{name}({', '.join(args)})"


def _switch(option: str) -> str:
    return (
        f"  (if that is what the test wants, turn this check off with "
        f"@pytest.mark.qstash_tasks({option}=False) or the ini option "
        f"qstash_tasks_{option} = false)"
    )


def format_problems(problems: Sequence[str]) -> str:
    """The one failure message for ``problems``: a header, then each, numbered."""
    head = f"qstash_tasks found {len(problems)} problem(s):"
    return "\n\n".join([head, *(f"{n}. {text}" for n, text in enumerate(problems, 1))])


def _check_headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise TypeError(f"headers must be a dict of str to str, got {headers!r}")
    return tuple(headers.items())


def _parse_base_url(base_url: str) -> httpx.URL:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {base_url!r}")
    return _parse_url(base_url)


@functools.lru_cache(maxsize=64)  # the same URL for every test of a run
def _parse_url(base_url: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as error:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {error}") from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"base_url cannot have a query or fragment: {base_url!r}")
    return url
