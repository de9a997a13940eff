"""``QStashTasksMock``: the endpoint core behind a respx router, with recorded calls."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal

import httpx
import respx

from ._calls import RecordedCall
from ._clock import Clock
from ._endpoint import EndpointConfig, EndpointRequest, EndpointResponse, handle
from ._errors import QStashTasksLoopError
from ._factories import generate
from ._models import Task, TasksPage
from ._seeding import Stream, current_stream
from ._store import TaskStore
from ._timing import DEFAULT_START_MS

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TOKEN", "QStashTasksMock"]

#: The base URL the official SDK talks to when ``QSTASH_URL`` is not set.
DEFAULT_BASE_URL = "https://qstash.upstash.io"
#: What ``.token`` hands out when no token is configured (any non-empty one is accepted).
DEFAULT_TOKEN = "qstash-tasks-test-token"
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        start: Where the clock starts (unix ms or an aware datetime).
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
        start: int | _dt.datetime = DEFAULT_START_MS,
        seed: int | None = None,
    ) -> None:
        self._url = _parse_base_url(base_url)
        if token is not None and (not isinstance(token, str) or not token or " " in token):
            raise ValueError(
                f"token must be a non-empty str without spaces, or None; got {token!r}"
            )
        _check_positive_int("page_size", page_size)
        _check_positive_int("max_identical_requests", max_identical_requests)
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
        # With a seed, one stream for this fake's whole life; else the test's stream.
        self._stream = None if seed is None else Stream(None, seed)
        self.clock = Clock(start)
        self._store = TaskStore()
        self._calls: list[RecordedCall] = []
        self._loop_errors: list[RecordedCall] = []
        self._lock = threading.Lock()
        self._last_key: tuple[Any, ...] | None = None
        self._repeats = 0
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
        return list(message.tasks)

    # -- calls ----------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request the fake answered, in order (a copy)."""
        with self._lock:
            return list(self._calls)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> QStashTasksMock:
        """Start intercepting requests to ``base_url``."""
        if self._router is not None:
            raise RuntimeError("this QStashTasksMock is already started")
        router = _Router(assert_all_called=False, assert_all_mocked=True)
        router.routes.add(_EndpointRoute(self._respond))
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

        Checks that no request hit a likely infinite loop, and (unless
        ``assert_all_requests_served`` is off) that the fake could serve every request
        to its host. The ``qstash_tasks`` fixture calls this at teardown.
        """
        problems = self.problems()
        if problems:
            raise AssertionError("\n".join(problems))

    def problems(self) -> list[str]:
        """What ``verify()`` would report, one paragraph each."""
        problems: list[str] = []
        with self._lock:
            loops = list(self._loop_errors)
            misses = [call for call in self._calls if call.miss is not None]
        if loops:
            problems.append(
                "qstash_tasks: stopped a likely infinite loop: the same request kept getting "
                "the same answer (QStashTasksLoopError):\n"
                + "\n".join(f"  - {c.describe()}" for c in loops)
            )
        if misses and self.assert_all_requests_served:
            problems.append(
                f"qstash_tasks: {len(misses)} request(s) to {self.base_url} could not be "
                "served:\n"
                + "\n".join(f"  - {call.describe()}" for call in misses)
                + "\nIf that is what the test wants, turn this check off with "
                "@pytest.mark.qstash_tasks(assert_all_requests_served=False) or the ini "
                "option qstash_tasks_assert_all_requests_served = false."
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

    def _respond(self, request: httpx.Request) -> httpx.Request | httpx.Response | None:
        """respx side effect: answer requests to our host, leave the others alone."""
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
        )
        with self._lock:
            answer = handle(endpoint_request, self._store, self._config)
            if answer.miss == "unknown_path" and self._others_registered():
                return None  # another respx router may fake the rest of QStash
            # A ready stream: content= would read the body through httpx's decoders
            # here, and respx reads it once more anyway.
            response = httpx.Response(
                answer.status,
                headers=[*answer.headers, ("content-length", str(len(answer.body)))],
                stream=httpx.ByteStream(answer.body),
            )
            loop_error = self._check_loop(request, answer)
            call = RecordedCall(
                request=request,
                response=None if loop_error else response,
                message_id=answer.message_id,
                cursor=answer.cursor,
                token=answer.token,
                miss=answer.miss,
                detail=answer.detail,
                exception=loop_error,
                scripted_page=answer.scripted_page,
            )
            self._calls.append(call)
            if loop_error is not None:
                self._loop_errors.append(call)
        if loop_error is not None:
            raise loop_error
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
        if key == self._last_key:
            self._repeats += 1
        else:
            self._last_key, self._repeats = key, 1
        if self._repeats <= self.max_identical_requests:
            return None
        cursor = "" if answer.cursor is None else f" (cursor={answer.cursor})"
        return QStashTasksLoopError(
            f"likely infinite loop: {request.method} {request.url}{cursor} was sent "
            f"{self._repeats} times in a row and got the same {answer.status} answer each "
            "time, with nothing changed in between. A client that pages should stop when "
            "the cursor is 0 or missing. (The limit is max_identical_requests="
            f"{self.max_identical_requests}; raise it with "
            "@pytest.mark.qstash_tasks(max_identical_requests=...).)"
        )


class _Router(respx.MockRouter):
    """A respx router that leaves call recording to the fake (one record, not two)."""

    def record(
        self,
        request: httpx.Request,
        *,
        response: httpx.Response | None = None,
        route: respx.Route | None = None,
    ) -> None:
        pass


class _EndpointRoute(respx.Route):
    """A route that hands every request to the fake.

    Overrides ``match`` rather than using a side effect: respx inspects a side
    effect's signature on every call, which costs more than the whole endpoint.
    """

    def __init__(
        self, respond: Callable[[httpx.Request], httpx.Request | httpx.Response | None]
    ) -> None:
        super().__init__()
        self._respond_to = respond

    def match(self, request: httpx.Request) -> httpx.Request | httpx.Response | None:
        return self._respond_to(request)


def _parse_base_url(base_url: str) -> httpx.URL:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {base_url!r}")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as error:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {error}") from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if url.query or url.fragment:
        raise ValueError(f"base_url cannot have a query or fragment: {base_url!r}")
    return url


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
