"""``QStashTasksMock``: the fake for httpx clients in the test's own process, via respx.

The transport registers a small router with respx's mocker (the registry, ``register``,
``start`` and the ``handler``/``async_handler`` a router offers), turns each
``httpx.Request`` into the fake's neutral ``Request`` and its ``Reply`` back into an
``httpx.Response``, a raised exception or a delay. It holds no QStash rules.
"""

from __future__ import annotations

import functools
import time
from typing import Any, NoReturn

import httpx
import respx
from respx.mocks import DEFAULT_MOCKER, Mocker
from respx.models import AllMockedAssertionError, PassThrough

from pytest_qstash_tasks._core.exchange import Reply, Request
from pytest_qstash_tasks._core.fake import QStashTasksFake

__all__ = ["QStashTasksMock"]


class QStashTasksMock(QStashTasksFake):
    """The fake for httpx clients in the test's own process (respx underneath).

    In tests, take the ``qstash_tasks`` fixture, which builds one from the marker,
    ini options and ``QSTASH_URL``. Elsewhere (a module-scoped fixture, a script) use
    it as a context manager, sync or async; with no arguments it fakes
    ``https://qstash.upstash.io``::

        with QStashTasksMock() as fake:
            fake.add("msg_123", count=250)
            ...  # code that calls QStash through httpx

    Requests to its host are answered by the fake and recorded in ``calls``; requests
    to other hosts go where they would have gone without it (another respx router,
    or the network). Takes the arguments of the fake (see ``QStashTasksFake``).
    """

    _router: _Router | None = None

    def start(self) -> QStashTasksMock:
        """Start intercepting requests to ``base_url``."""
        if self._router is not None:
            raise RuntimeError("this QStashTasksMock is already started")
        mocker = Mocker.registry[DEFAULT_MOCKER]
        router = _Router(self, mocker)
        # First in line, so QStash-host requests reach the fake even when another
        # respx router (say respx_mock) would answer them otherwise. (respx types its
        # routers as Router; its mocker only calls handler and async_handler.)
        registered: Any = router
        mocker.register(registered)
        mocker.routers.remove(registered)
        mocker.routers.insert(0, registered)
        mocker.start()
        self._router = router
        return self

    def stop(self) -> None:
        """Stop intercepting. Recorded calls and stored tasks stay readable."""
        router, self._router = self._router, None
        if router is not None:
            registered: Any = router
            router.mocker.unregister(registered)
            router.mocker.stop()

    def _state_word(self) -> str:
        return "started" if self._router is not None else "stopped"


class _Router:
    """What respx's mocker asks of a router: ``handler`` and ``async_handler``.

    A router that raises ``AllMockedAssertionError`` declines, and the mocker asks the
    next; ``PassThrough`` sends the request to the network.
    """

    def __init__(self, fake: QStashTasksMock, mocker: type[Mocker]) -> None:
        self.fake = fake
        self.mocker = mocker

    def handler(self, request: httpx.Request) -> httpx.Response:
        reply = self._dispatch(request)
        if reply.delay:
            time.sleep(reply.delay)
        return _to_httpx(reply)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        reply = self._dispatch(request)
        if reply.delay:
            import anyio  # httpx's own dependency: sleeps under asyncio and trio alike

            await anyio.sleep(reply.delay)
        return _to_httpx(reply)

    def _dispatch(self, request: httpx.Request) -> Reply:
        url = request.url
        others = len(self.mocker.routers) > 1
        if not self.fake.serves_origin(url.scheme, url.host, url.port):
            self._decline(request, others)
        raw_path, _, query = url.raw_path.decode("ascii").partition("?")
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = b""
        reply = self.fake.dispatch(
            Request(
                method=request.method,
                url=str(url),
                raw_path=raw_path,
                query=query,
                headers=tuple(request.headers.multi_items()),
                body=body,
                in_process=True,
                native=request,
            ),
            # Another respx router may fake the rest of QStash.
            decline_unknown_paths=others,
        )
        if reply is None:
            self._decline(request, others)
        return reply

    @staticmethod
    def _decline(request: httpx.Request, others: bool) -> NoReturn:
        if others:
            raise AllMockedAssertionError(f"qstash_tasks: {request!r} is not for the fake")
        # As if the fake were not there: to the network.
        raise PassThrough("not for the fake", request=request, origin=_origin())


def _to_httpx(reply: Reply) -> httpx.Response:
    if reply.action == "raise":
        assert reply.exception is not None
        raise reply.exception
    # A ready stream: content= would run the body through httpx's decoders.
    return httpx.Response(
        reply.status,
        headers=[*reply.headers, ("content-length", str(len(reply.body)))],
        stream=httpx.ByteStream(reply.body),
    )


@functools.cache
def _origin() -> respx.Route:
    # PassThrough names the route it came from; one shared, never-called route.
    return respx.Route()
