"""httpx in the test's own process: the fake answers through respx's mocker.

A small router registered with respx's mocker (its registry, ``register``, ``start``
and the ``handler``/``async_handler`` a router offers) turns each ``httpx.Request``
into the fake's neutral ``Request`` and the fake's ``Reply`` back into an
``httpx.Response``, a raised exception or a delay. It holds no QStash rules. What it
borrows from respx beyond its documented API is listed in docs/architecture.md and
checked by tests/test_upstream.py.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import httpx
import respx
from respx.mocks import Mocker
from respx.models import AllMockedAssertionError, PassThrough

from pytest_qstash_tasks._core.engine.sleep_patch import real_async_sleep, real_sleep
from pytest_qstash_tasks._core.exchange import Reply, Request

if TYPE_CHECKING:
    from .interception import Interception

__all__ = ["HttpxInterceptor", "InterceptAt"]

#: Where httpx requests are intercepted: ``transport`` below httpx's own transports
#: (respx's default, httpcore), ``client`` at the client, above any transport, including
#: one another library patched (pytest-httpx's).
InterceptAt = Literal["transport", "client"]
_MOCKERS = {"transport": "httpcore", "client": "httpx"}


class HttpxInterceptor:
    """What respx's mocker asks of a router: ``handler`` and ``async_handler``.

    A router that raises ``AllMockedAssertionError`` declines, and the mocker asks the
    next; ``PassThrough`` sends the request on (to the network, or the transport below).
    """

    def __init__(self, in_process: Interception, at: InterceptAt = "transport") -> None:
        self.in_process = in_process
        self.mocker: type[Mocker] = Mocker.registry[_MOCKERS[at]]

    def start(self) -> None:
        """Put the fake first in line for every httpx request of this process."""
        # First in line, so the fake's requests reach it even when another respx router
        # (say respx_mock) would answer them. (respx types its routers as Router; its
        # mocker only calls handler and async_handler.)
        registered: Any = self
        self.mocker.register(registered)
        self.mocker.routers.remove(registered)
        self.mocker.routers.insert(0, registered)
        self.mocker.start()

    def stop(self) -> None:
        """Take the fake out of line (``InProcess`` stops only what it started)."""
        registered: Any = self
        self.mocker.unregister(registered)
        self.mocker.stop()

    def handler(self, request: httpx.Request) -> httpx.Response:
        reply = self._intercept(request)
        if reply.delay:
            real_sleep(reply.delay)  # real latency, even with patch_sleep on
        return _to_httpx(reply, request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        reply = self._intercept(request)
        if reply.delay:
            await real_async_sleep()(reply.delay)  # real latency, even with patch_sleep on
        return _to_httpx(reply, request)

    def _intercept(self, request: httpx.Request) -> Reply:
        url = request.url
        # Another respx router (respx_mock, say) may fake the rest of QStash; another
        # fake's router answers only its own fake's origin.
        others = any(not isinstance(router, HttpxInterceptor) for router in self.mocker.routers)
        raw_path, _, query = url.raw_path.decode("ascii").partition("?")
        reply = self.in_process.intercept(
            Request(
                method=request.method,
                url=str(url),
                raw_path=raw_path,
                query=query,
                # The bytes as sent, one character a byte (Latin-1), as the server and
                # requests' transport read them: a value is delivered as it came.
                headers=tuple(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ),
                body=request.content,  # respx reads a streamed body before asking
                in_process=True,
                native=request,
                read_timeout=request.extensions.get("timeout", {}).get("read"),
            ),
            url.scheme,
            url.host,
            url.port,
            # Another respx router, or the transport below, may fake the rest of QStash.
            own_paths_only=others or self.mocker.name == "httpx",
        )
        if reply is None:
            self._decline(request, raw_path)
        return reply

    def _decline(self, request: httpx.Request, raw_path: str) -> NoReturn:
        url = request.url
        routers: list[object] = list(self.mocker.routers)
        if any(
            # Another fake's router answers only what its fake takes; anyone else's may.
            not isinstance(router, HttpxInterceptor)
            or router.in_process.takes(
                url.scheme, url.host, url.port, raw_path, own_paths_only=False
            )
            for router in routers
            if router is not self
        ):
            raise AllMockedAssertionError(f"qstash_tasks: {request!r} is not for the fake")
        # As if the fake were not there: on to the transport below, or the network.
        raise PassThrough("not for the fake", request=request, origin=_origin())


def _to_httpx(reply: Reply, request: httpx.Request) -> httpx.Response:
    if reply.action == "raise":
        assert reply.exception is not None
        raise reply.exception
    if reply.action == "hold":  # held past the client's read timeout: it gave up
        raise httpx.ReadTimeout(str(reply.exception))  # httpx attaches the request
    # A ready stream: content= would run the body through httpx's decoders. A HEAD
    # answer has the length a GET's would have, and no body, as from a server.
    return httpx.Response(
        reply.status,
        headers=[*reply.headers, ("content-length", str(len(reply.body)))],
        stream=httpx.ByteStream(b"" if request.method == "HEAD" else reply.body),
    )


@functools.cache
def _origin() -> respx.Route:
    # PassThrough names the route it came from; one shared, never-called route.
    return respx.Route()
