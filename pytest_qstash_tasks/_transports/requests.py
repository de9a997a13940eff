"""``requests`` in the test's own process: the fake answers through ``responses``.

Loaded only with the ``requests`` extra installed. The fake starts its own
``responses.RequestsMock`` on top of whatever answered ``requests`` before (the
network, or a mock the test started earlier), with one route that hands each
``PreparedRequest`` to the fake and everything else on, unchanged. A mock the test
starts later sits on top of the fake's, so the fake joins it: its route is added to
that mock while it runs, and taken out before it stops. It holds no QStash rules. What
it borrows from responses beyond its documented API is listed in docs/architecture.md
and checked by tests/test_upstream.py.
"""

from __future__ import annotations

import io
import re
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import responses
from requests.adapters import HTTPAdapter
from urllib3.response import HTTPResponse

from pytest_qstash_tasks._core.engine.sleep_patch import real_sleep
from pytest_qstash_tasks._core.exchange import Reply, Request, reason_phrase
from pytest_qstash_tasks._core.state.lifecycle import is_timeout

if TYPE_CHECKING:
    from .interception import Interception

__all__ = ["RequestsInterceptor"]

#: The mocks of fakes: a fake never joins another fake's mock.
_FAKES_MOCKS: weakref.WeakSet[responses.RequestsMock] = weakref.WeakSet()


class RequestsInterceptor:
    """Answers the fake's requests from ``requests`` code, and lets the rest through."""

    def __init__(self, in_process: Interception) -> None:
        self.in_process = in_process
        self._mock: responses.RequestsMock | None = None
        #: The fake's own mock and the send below it, kept while that send stays the same:
        #: a fixture starts and stops a fake for every test.
        self._own: tuple[object, responses.RequestsMock] | None = None
        self._joined: dict[responses.RequestsMock, _FakeRoute] = {}
        self._wrapped: tuple[Any, Any] | None = None

        # responses has no hook for a mock started later; its public start and stop are
        # wrapped while the fake is active (tested with responses 0.24 and 0.26).
        def start(mock_self: responses.RequestsMock) -> None:
            assert self._wrapped is not None
            self._wrapped[0](mock_self)
            self._join(mock_self)

        def stop(mock_self: responses.RequestsMock, allow_assert: bool = True) -> None:
            assert self._wrapped is not None
            self._leave(mock_self)
            self._wrapped[1](mock_self, allow_assert)

        self._wrappers = (start, stop)

    def start(self) -> None:
        """Intercept ``requests`` from now on; join mocks started later."""
        below: Any = HTTPAdapter.send  # requests' own, or another mock's stand-in
        if self._own is None or self._own[0] is not below:
            # A send that is not requests' own is another mock's, which may fake the rest
            # of QStash: then only the paths the fake serves are the fake's.
            others = getattr(below, "__module__", None) != HTTPAdapter.__module__
            own = responses.RequestsMock(
                assert_all_requests_are_fired=False,
                passthru_prefixes=("",),  # not the fake's: on, unchanged
                real_adapter_send=below,
            )
            own.add(_FakeRoute(self.in_process, own_paths_only=others))
            _FAKES_MOCKS.add(own)
            self._own = (below, own)
        own = self._own[1]
        own.start()
        self._mock = own
        cls = responses.RequestsMock
        self._wrapped = (cls.start, cls.stop)
        _set_start_stop(self._wrappers)

    def stop(self) -> None:
        """Stop intercepting and leave every mock the fake joined."""
        if self._wrapped is not None:
            _set_start_stop(self._wrapped)
            self._wrapped = None
        for joined in list(self._joined):
            self._leave(joined)
        own, self._mock = self._mock, None
        if own is not None:
            own.stop()  # its route need not fire: assert_all_requests_are_fired=False
            own.calls.reset()  # kept for the next start: no calls pile up

    def _join(self, other: responses.RequestsMock) -> None:
        if other in _FAKES_MOCKS or other in self._joined:
            return
        if type(other.get_registry()) is not responses.registries.FirstMatchRegistry:
            return  # an ordered registry answers in its own order only: leave it be
        route = _FakeRoute(self.in_process, own_paths_only=True)  # the user's routes fake the rest
        other.add(route)
        self._joined[other] = route

    def _leave(self, other: responses.RequestsMock) -> None:
        route = self._joined.pop(other, None)
        if route is not None:
            other.remove(route)


def _set_start_stop(methods: tuple[Any, Any]) -> None:
    for name, method in zip(("start", "stop"), methods, strict=True):
        setattr(responses.RequestsMock, name, method)


class _FakeRoute(responses.BaseResponse):
    """One route for the fake's origin and the real QStash's hosts."""

    def __init__(self, in_process: Interception, *, own_paths_only: bool) -> None:
        super().__init__("GET", re.compile(re.escape(in_process.base_url) + r"/.*"))
        self.in_process = in_process
        self.own_paths_only = own_paths_only

    def matches(self, request: requests.PreparedRequest) -> tuple[bool, str]:
        url = urlsplit(str(request.url))
        taken = self.in_process.takes(
            url.scheme, url.hostname or "", url.port, url.path, own_paths_only=self.own_paths_only
        )
        return taken, "" if taken else "not for pytest-qstash-tasks' fake"

    def get_response(self, request: requests.PreparedRequest) -> HTTPResponse:
        reply = self._intercept(request)
        if reply.delay:
            real_sleep(reply.delay)  # real latency, even with patch_sleep on
        if reply.action == "raise":
            assert reply.exception is not None
            raise _for_requests(reply.exception, request)
        if reply.action == "hold":  # held past the client's read timeout: it gave up
            raise requests.ReadTimeout(str(reply.exception), request=request)
        # A HEAD answer: the length a GET's would have, and no body, as from a server.
        return HTTPResponse(
            body=io.BytesIO(b"" if request.method == "HEAD" else reply.body),
            headers={**dict(reply.headers), "content-length": str(len(reply.body))},
            status=reply.status,
            reason=reason_phrase(reply.status),
            preload_content=False,
            request_method=request.method,
        )

    def _intercept(self, request: requests.PreparedRequest) -> Reply:
        url = str(request.url)
        parts = urlsplit(url)
        reply = self.in_process.intercept(
            Request(
                method=str(request.method),
                url=url,
                raw_path=parts.path or "/",
                query=parts.query,
                headers=tuple(
                    (name, value if isinstance(value, str) else value.decode("latin-1"))
                    for name, value in request.headers.items()
                ),
                body=_body_bytes(request.body),
                in_process=True,
                native=request,
                read_timeout=_read_timeout(request),
            ),
            parts.scheme,
            parts.hostname or "",
            parts.port,
            own_paths_only=self.own_paths_only,
        )
        # matches() said the fake takes it, and that cannot change in between.
        assert reply is not None
        return reply


def _read_timeout(request: requests.PreparedRequest) -> float | None:
    """The ``timeout=`` the request was sent with (responses keeps it), as seconds."""
    timeout = getattr(request, "req_kwargs", {}).get("timeout")
    if isinstance(timeout, tuple):
        try:
            _, timeout = timeout
        except ValueError:  # requests' own send refuses it so, before any connection
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, "
                "or a single float to set both timeouts to the same value."
            ) from None
    return float(timeout) if isinstance(timeout, (int, float)) else None


def _body_bytes(body: object) -> bytes:
    """The body as sent: responses has read a file already; a generator is read here,
    as requests' own send would read it (chunk by chunk)."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, Iterable):
        return b"".join(part.encode() if isinstance(part, str) else bytes(part) for part in body)
    # Word for word what urllib3 2 raises when requests sends it, before connecting.
    raise TypeError(
        f"'body' must be a bytes-like object, file-like object, or iterable. Instead was {body!r}"
    )


def _for_requests(error: BaseException, request: requests.PreparedRequest) -> BaseException:
    """A transport error planned with httpx's classes, as ``requests`` raises it."""
    if isinstance(error, requests.RequestException):
        if error.request is None:
            error.request = request
        return error
    if not type(error).__module__.startswith("httpx"):
        return error  # the fake's guards, or anything else the test chose
    kind: type[requests.RequestException]
    if not is_timeout(type(error)):
        kind = requests.ConnectionError
    elif type(error).__name__ == "ConnectTimeout":
        kind = requests.ConnectTimeout
    else:
        kind = requests.ReadTimeout
    converted = kind(str(error), request=request)
    converted.__cause__ = error
    return converted
