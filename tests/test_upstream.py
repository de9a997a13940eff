"""What the fake borrows from respx's and responses' internals, one test each.

docs/architecture.md lists them; pyproject pins the tested ranges. When an upgrade
changes one, its test fails here with what changed and where the fake relies on it,
instead of a fake that silently stops answering.
"""

from __future__ import annotations

import io
import socket
from importlib.metadata import version
from typing import Any

import httpx
import pytest
import requests
import responses
import respx
from requests.adapters import HTTPAdapter
from respx.mocks import Mocker
from respx.models import AllMockedAssertionError, PassThrough
from urllib3.response import HTTPResponse


def relied_on(library: str, what: str, where: str) -> str:
    """The failure message: which internal changed, in which tested version, and where
    the fake uses it."""
    return (
        f"{library} {version(library)} changed what pytest-qstash-tasks relies on: {what} "
        f"(used in pytest_qstash_tasks/_transports/{where}; see docs/architecture.md, "
        "'What the fake borrows')"
    )


class Answers:
    """A router as respx's mocker sees one: ``handler`` and ``async_handler``."""

    def __init__(self, answer: httpx.Response | BaseException) -> None:
        self.answer = answer
        self.seen: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        return self.handler(request)


@pytest.fixture
def mocker() -> Any:
    """respx's httpcore-level mocker, with no router left behind."""
    mocker = Mocker.registry["httpcore"]
    before = list(mocker.routers)
    yield mocker
    for router in list(mocker.routers):
        if router not in before:
            mocker.unregister(router)
    if not before:
        mocker.stop(force=True)


# -- respx ---------------------------------------------------------------------------


def test_respx_has_a_mocker_at_httpcore_and_at_the_httpx_client() -> None:
    assert {"httpcore", "httpx"} <= set(Mocker.registry), relied_on(
        "respx", "Mocker.registry names the mockers 'httpcore' and 'httpx'", "httpx.py"
    )
    assert Mocker.registry["httpx"].name == "httpx", relied_on(
        "respx", "a mocker's name is its registry key", "httpx.py"
    )


def test_respx_asks_its_routers_in_list_order_and_skips_one_that_declines(mocker: Any) -> None:
    declines = Answers(AllMockedAssertionError("not mine"))
    answers = Answers(httpx.Response(200, text="second"))
    mocker.register(answers)
    mocker.register(declines)
    # The fake puts its router first by reordering the public list.
    mocker.routers.remove(declines)
    mocker.routers.insert(0, declines)
    mocker.start()
    response = httpx.get("https://example.test/x")
    assert (response.text, len(declines.seen), len(answers.seen)) == ("second", 1, 1), relied_on(
        "respx",
        "the mocker asks routers in the order of Mocker.routers, through handler(request), "
        "and asks the next one when a router raises AllMockedAssertionError",
        "httpx.py",
    )


@pytest.mark.asyncio
async def test_respx_asks_async_clients_through_async_handler(mocker: Any) -> None:
    answers = Answers(httpx.Response(200, text="async"))
    mocker.register(answers)
    mocker.start()
    async with httpx.AsyncClient() as client:
        response = await client.get("https://example.test/x")
    assert response.text == "async", relied_on(
        "respx", "async clients are answered through async_handler(request)", "httpx.py"
    )


@pytest.mark.parametrize("at", ["httpcore", "httpx"])
@pytest.mark.asyncio
async def test_respx_reads_a_streamed_body_before_it_asks_a_router(at: str) -> None:
    mocker = Mocker.registry[at]
    seen: list[httpx.Request] = []

    def chunks() -> Any:
        yield b"ab"
        yield b"cd"

    async def async_chunks() -> Any:
        yield b"ef"

    for send in ("sync", "async"):
        answers = Answers(httpx.Response(200))
        mocker.register(answers)
        mocker.start()
        try:
            if send == "sync":
                httpx.post("https://example.test/x", content=chunks())
            else:
                async with httpx.AsyncClient() as client:
                    await client.post("https://example.test/x", content=async_chunks())
        finally:
            mocker.unregister(answers)
            mocker.stop()
        seen += answers.seen
    # .content raises httpx.RequestNotRead on a body nobody read.
    assert [request.content for request in seen] == [b"abcd", b"ef"], relied_on(
        "respx", "a router is handed a request whose streamed body is read", "httpx.py"
    )


def test_respx_passes_a_request_through_when_a_router_raises_pass_through(mocker: Any) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: a request that goes through cannot connect
    origin = respx.Route()  # the fake names one shared, never-called route as the origin
    router = Answers(PassThrough("not for the fake", request=None, origin=origin))
    mocker.register(router)
    mocker.start()
    with pytest.raises(httpx.ConnectError):  # it went on, and nothing listens there
        httpx.get(f"http://127.0.0.1:{port}/x")
    assert router.seen, relied_on(
        "respx",
        "PassThrough(message, request=, origin=) raised by a router sends the request on "
        "to the transport below",
        "httpx.py",
    )


def test_respx_unregister_and_stop_take_a_router_out_of_line(mocker: Any) -> None:
    answers = Answers(httpx.Response(200))
    mocker.register(answers)
    mocker.start()
    mocker.unregister(answers)
    mocker.stop()
    assert answers not in mocker.routers, relied_on(
        "respx", "Mocker.unregister(router) removes it from Mocker.routers", "httpx.py"
    )


# -- responses -----------------------------------------------------------------------


class Route(responses.BaseResponse):
    """A route as the fake writes one: its own matches and get_response."""

    def __init__(self) -> None:
        super().__init__("GET", "https://example.test/")
        self.matched: list[str] = []

    def matches(self, request: requests.PreparedRequest) -> tuple[bool, str]:
        self.matched.append(str(request.url))
        return str(request.url).endswith("/mine"), "not mine"

    def get_response(self, request: requests.PreparedRequest) -> HTTPResponse:
        timeout = getattr(request, "req_kwargs", {}).get("timeout")
        return HTTPResponse(
            body=io.BytesIO(repr(timeout).encode()),
            headers={"content-length": str(len(repr(timeout)))},
            status=200,
            reason="OK",
            preload_content=False,
            request_method=request.method,
        )


def test_responses_asks_a_route_subclass_through_matches_and_get_response() -> None:
    route = Route()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(route)
        answer = requests.get("https://example.test/mine", timeout=3)
        mock.remove(route)
    assert (answer.status_code, route.matched) == (200, ["https://example.test/mine"]), relied_on(
        "responses",
        "a BaseResponse subclass is asked matches(request) -> (bool, reason), then "
        "get_response(request) -> urllib3 HTTPResponse; RequestsMock.add/remove take it",
        "requests.py",
    )
    assert answer.text == "3", relied_on(
        "responses",
        "request.req_kwargs holds the timeout= the request was sent with",
        "requests.py",
    )


def test_responses_sends_what_no_route_takes_to_real_adapter_send() -> None:
    sent: list[str] = []

    def below(adapter: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        sent.append(str(request.url))
        raise requests.ConnectionError("below")

    mock = responses.RequestsMock(
        assert_all_requests_are_fired=False, passthru_prefixes=("",), real_adapter_send=below
    )
    mock.add(Route())
    with mock, pytest.raises(requests.ConnectionError, match="below"):
        requests.get("https://example.test/other")
    assert sent == ["https://example.test/other"], relied_on(
        "responses",
        "RequestsMock(passthru_prefixes=('',), real_adapter_send=send) hands every request "
        "no route takes to send",
        "requests.py",
    )


def test_responses_starts_and_stops_every_mock_through_the_class_methods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[object] = []
    real_start = responses.RequestsMock.start

    def start(mock: responses.RequestsMock) -> None:
        started.append(mock)
        real_start(mock)

    monkeypatch.setattr(responses.RequestsMock, "start", start)

    @responses.activate
    def decorated() -> None:
        pass

    with responses.RequestsMock() as mock:
        pass
    decorated()
    assert started[:1] == [mock], relied_on(
        "responses",
        "`with RequestsMock()` starts the mock through RequestsMock.start",
        "requests.py",
    )
    assert len(started) == 2, relied_on(
        "responses",
        "`with RequestsMock()` and @responses.activate start a mock through "
        "RequestsMock.start, looked up on the class (the fake wraps it to join mocks "
        "started after it)",
        "requests.py",
    )


def test_responses_mocks_use_the_first_match_registry_by_default() -> None:
    mock = responses.RequestsMock()
    assert type(mock.get_registry()) is responses.registries.FirstMatchRegistry, relied_on(
        "responses", "get_registry() is a FirstMatchRegistry unless told otherwise", "requests.py"
    )
    mock.calls.reset()  # what the fake calls between tests on the mock it keeps


def test_requests_own_send_lives_in_requests_adapters() -> None:
    assert HTTPAdapter.send.__module__ == "requests.adapters", relied_on(
        "requests",
        "HTTPAdapter.send, unpatched, is defined in requests.adapters (a send from any "
        "other module is another mock's stand-in)",
        "requests.py",
    )
