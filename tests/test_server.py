"""The loopback server through real clients of every kind, its fault mapping, bad input
on the socket, and its life cycle (start, stop, threads and sockets left behind)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import urllib3
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import QStashTasksServer
from pytest_qstash_tasks._transports.http_server import MAX_BODY, LoopbackServer
from tests.helpers import forget_stops, tasks_of, walk_pages

TASKS = "/v1/messages/msg_1/tasks"


@pytest.fixture
def fake(qstash_tasks_server: QStashTasksServer) -> QStashTasksServer:
    qstash_tasks_server.add("msg_1", count=250, timeline_at=lambda i: 100_000 - i)
    return qstash_tasks_server


def walk_with(get: Callable[[str], tuple[int, dict[str, object]]]) -> list[str]:
    """Follow the cursors with ``get(path_and_query) -> (status, body)``."""

    def page(cursor: int | None) -> dict[str, object]:
        status, body = get(TASKS + (f"?cursor={cursor}" if cursor else ""))
        assert status == 200, body
        return body

    return [task["taskId"] for task in tasks_of(walk_pages(page))]


def expected_ids(fake: QStashTasksServer) -> list[str]:
    return [task.task_id for task in fake.tasks("msg_1")]


# -- real clients ---------------------------------------------------------------------


def test_requests_session(fake: QStashTasksServer) -> None:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {fake.token}"

        def get(path: str) -> tuple[int, dict[str, object]]:
            answer = session.get(fake.base_url + path, timeout=5)
            return answer.status_code, answer.json()

        assert walk_with(get) == expected_ids(fake)
    fake.assert_all_pages_fetched("msg_1")


def test_urllib3(fake: QStashTasksServer) -> None:
    with urllib3.PoolManager() as pool:

        def get(path: str) -> tuple[int, dict[str, object]]:
            answer = pool.request(
                "GET", fake.base_url + path, headers={"Authorization": f"Bearer {fake.token}"}
            )
            return answer.status, json.loads(answer.data)

        assert walk_with(get) == expected_ids(fake)


def test_urllib_request(fake: QStashTasksServer) -> None:
    def get(path: str) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            fake.base_url + path, headers={"Authorization": f"Bearer {fake.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())

    assert walk_with(get) == expected_ids(fake)
    # A new connection for each request: counted as one client by the loop guard.
    assert len(fake.calls) == 3


@pytest.mark.asyncio
async def test_aiohttp(fake: QStashTasksServer) -> None:
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with aiohttp.ClientSession(fake.base_url, headers=headers) as session:
        seen: list[str] = []
        cursor = None
        while True:
            params = {"cursor": str(cursor)} if cursor else {}
            async with session.get(TASKS, params=params) as answer:
                body = await answer.json()
            seen.extend(task["taskId"] for task in body["tasks"])
            cursor = body["cursor"]
            if not cursor:
                break
    assert seen == expected_ids(fake)


@pytest.mark.asyncio
async def test_two_hundred_concurrent_aiohttp_requests_each_recorded_once(
    fake: QStashTasksServer,
) -> None:
    fake.fail_next(503, times=20)
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with aiohttp.ClientSession(fake.base_url, headers=headers) as session:

        async def one(number: int) -> int:
            cursor = number % 3 and 100_000 - 100 * (number % 3)
            params = {"cursor": str(cursor)} if cursor else {}
            async with session.get(TASKS, params=params) as answer:
                await answer.read()
                return answer.status

        statuses = await asyncio.gather(*(one(n) for n in range(200)))
    assert sorted(statuses) == [200] * 180 + [503] * 20
    calls = fake.calls
    assert len(calls) == 200
    assert sum(call.fault is not None for call in calls) == 20


def test_the_official_sdk_reads_qstash_url(
    fake: QStashTasksServer, monkeypatch: pytest.MonkeyPatch, sdk: Callable[..., QStash]
) -> None:
    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    client = sdk(os.environ["QSTASH_TOKEN"])
    page = client.http.request(path=TASKS, method="GET")
    assert [t["taskId"] for t in page["tasks"]] == expected_ids(fake)[:100]
    assert fake.calls[0].token == fake.token


@pytest.mark.asyncio
async def test_the_official_async_sdk_reads_qstash_url(
    fake: QStashTasksServer,
    monkeypatch: pytest.MonkeyPatch,
    async_sdk: Callable[..., AsyncQStash],
) -> None:
    monkeypatch.setenv("QSTASH_URL", fake.env["QSTASH_URL"])
    client = async_sdk(fake.token)
    first = await client.http.request(path=TASKS, method="GET")
    second = await client.http.request(
        path=TASKS, method="GET", params={"cursor": str(first["cursor"])}
    )
    assert len(first["tasks"]) + len(second["tasks"]) == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_in_a_subprocess(fake: QStashTasksServer) -> None:
    out = subprocess.run(
        ["curl", "-sS", "-H", f"Authorization: Bearer {fake.token}", fake.base_url + TASKS],
        capture_output=True,
        check=True,
        timeout=30,
    )
    body = json.loads(out.stdout)
    assert [t["taskId"] for t in body["tasks"]] == expected_ids(fake)[:100]
    assert fake.calls[0].headers[0][0] == "host"


NODE_WALK = """
const base = process.env.QSTASH_URL, token = process.env.QSTASH_TOKEN;
let cursor = null, seen = [];
do {
  const query = cursor ? `?cursor=${cursor}` : "";
  const answer = await fetch(`${base}/v1/messages/msg_1/tasks${query}`,
                             { headers: { Authorization: `Bearer ${token}` } });
  if (answer.status !== 200) throw new Error(`status ${answer.status}`);
  const page = await answer.json();
  seen.push(...page.tasks.map((task) => task.taskId));
  cursor = page.cursor;
} while (cursor);
console.log(JSON.stringify(seen));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_fetch_in_a_subprocess(fake: QStashTasksServer, tmp_path: Path) -> None:
    script = tmp_path / "walk.mjs"
    script.write_text(NODE_WALK)
    out = subprocess.run(
        ["node", str(script)],
        env={**os.environ, **fake.env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == expected_ids(fake)
    fake.assert_all_pages_fetched("msg_1")


# -- faults over a socket ---------------------------------------------------------------


def test_raise_next_with_a_connection_error_closes_without_an_answer(
    fake: QStashTasksServer,
) -> None:
    fault = fake.raise_next(httpx.ConnectError)
    with requests.Session() as session, pytest.raises(requests.ConnectionError):
        session.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"}, timeout=5)
    (call,) = fake.calls
    assert (call.status, call.action, fault.fired) == (None, "close", 1)
    assert call.describe().endswith(
        "-> connection closed without an answer (ConnectError) [raise_next(ConnectError)]"
    )


def test_raise_next_with_a_timeout_holds_until_the_client_gives_up(
    fake: QStashTasksServer,
) -> None:
    fake.raise_next(httpx.ReadTimeout)
    started = time.perf_counter()
    with httpx.Client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"})
    assert 0.3 <= time.perf_counter() - started < 3
    assert fake.calls[0].action == "hold"
    with httpx.Client(timeout=5) as client:  # the next request is served
        assert client.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"}).is_success


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_held_request_ends_when_its_client_gives_up(how: str) -> None:
    # Seen from the server's next test: stopping a fake on a shared server waits for the
    # requests it is still answering, and a held one is over once its client left.
    server = LoopbackServer().start()
    try:
        fake = QStashTasksServer(server=server).start()
        fake.add_message("m")
        fake.raise_next(TimeoutError)
        request = b"GET /v1/messages/m/tasks HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n"
        conn = socket.create_connection((server.host, server.port), timeout=5)
        conn.sendall(request)
        time.sleep(0.2)  # the server has read it and holds it
        if how == "reset":  # an abortive close: the server's peek meets ECONNRESET
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        started = time.perf_counter()
        fake.stop()
        assert time.perf_counter() - started < 3  # not the 10 s bound of a hold
        assert [call.action for call in fake.calls] == ["hold"]
    finally:
        server.stop()


def test_a_hold_is_bounded_for_a_client_that_never_gives_up() -> None:
    with QStashTasksServer(max_hold_seconds=0.2) as fake:
        fake.add_message("m")
        fake.raise_next(TimeoutError)
        started = time.perf_counter()
        with httpx.Client(timeout=30) as client, pytest.raises(httpx.RemoteProtocolError):
            client.get(
                fake.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer t"}
            )
        assert time.perf_counter() - started < 5


def test_a_hold_lasts_its_time_while_the_client_sends_more() -> None:
    with QStashTasksServer(max_hold_seconds=0.3) as fake:
        fake.add_message("m")
        fake.raise_next(TimeoutError)
        request = b"GET /v1/messages/m/tasks HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n"
        with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
            started = time.perf_counter()
            conn.sendall(request)
            time.sleep(0.1)  # the server has read it and holds it
            conn.sendall(request)  # a second request, left waiting on the socket
            assert conn.recv(65536) == b""  # closed, with no answer
            held = time.perf_counter() - started
    assert 0.25 <= held < 3
    assert [call.action for call in fake.calls] == ["hold"]


def test_delay_and_rate_limits_over_a_socket(fake: QStashTasksServer) -> None:
    fake.delay_next(0.2)
    fake.rate_limit_next(daily=True)
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        started = time.perf_counter()
        assert session.get(fake.base_url + TASKS, timeout=5).status_code == 200
        assert time.perf_counter() - started >= 0.2
        limited = session.get(fake.base_url + TASKS, timeout=5)
    assert limited.status_code == 429
    assert limited.headers["RateLimit-Limit"] == "1000"
    assert limited.json() == {"error": "daily message limit exceeded"}


def test_a_looping_client_gets_508_and_the_test_is_told() -> None:
    with (  # noqa: PT012 - the fake's exit raises, after the loop
        pytest.raises(AssertionError, match="stopped a likely infinite loop") as caught,
        QStashTasksServer(max_identical_requests=5) as fake,
    ):
        fake.add_message("m")
        url = fake.base_url + "/v1/messages/m/tasks?cursor=0"
        statuses = [
            requests.get(url, headers={"Authorization": "Bearer t"}, timeout=5).status_code
            for _ in range(7)
        ]
    assert statuses == [200] * 5 + [508] * 2
    body = fake.calls[-1].json()
    assert isinstance(body, dict)
    assert body["error"].startswith(f"likely infinite loop: GET {url} (cursor=0) was sent 7 times")
    assert "GET http://127.0.0.1:" in str(caught.value)


def test_a_looping_client_that_holds_its_last_answer_is_stopped() -> None:
    # `answer = requests.get(...)` in a loop: urllib3 2 keeps each answer's connection
    # open while the answer lives, so a new connection opens beside the last one.
    with (  # noqa: PT012 - the fake's exit raises, after the loop
        pytest.raises(AssertionError, match="stopped a likely infinite loop"),
        QStashTasksServer(max_identical_requests=5) as fake,
    ):
        fake.add_message("m")
        url = fake.base_url + "/v1/messages/m/tasks?cursor=0"
        statuses = []
        for _ in range(7):
            answer = requests.get(url, headers={"Authorization": "Bearer t"}, timeout=5)
            statuses.append(answer.status_code)
    assert statuses == [200] * 5 + [508] * 2


@contextlib.contextmanager
def one_page(max_identical_requests: int) -> Iterator[tuple[QStashTasksServer, Any]]:
    """A server holding one message, and ``get(client=requests)``: the status of the
    message's first page as ``client`` (``requests`` itself, or a session) fetches it."""
    with QStashTasksServer(max_identical_requests=max_identical_requests) as fake:
        fake.add_message("m")
        url = fake.base_url + "/v1/messages/m/tasks?cursor=0"

        def get(client: Any = requests) -> int:
            answer = client.get(url, headers={"Authorization": "Bearer t"}, timeout=5)
            return int(answer.status_code)

        yield fake, get


def another_client_at_work(fake: QStashTasksServer) -> socket.socket:
    """A connection that sends nothing yet."""
    return socket.create_connection((fake._server.host, fake._server.port))


def test_two_clients_on_their_own_connections_are_counted_apart() -> None:
    # Each keeps its connection: the loop guard counts each client's repeats, not both.
    with (
        one_page(3) as (_, get),
        requests.Session() as a,
        requests.Session() as b,
        requests.Session() as c,
    ):
        statuses = [get(session) for _ in range(3) for session in (a, b, c)]
    assert statuses == [200] * 9


def test_a_request_beside_a_kept_alive_client_counts_for_itself() -> None:
    # The session keeps its connection: a request on a connection of its own beside it
    # is another client's, not the session's third.
    with one_page(2) as (_, get), requests.Session() as session:
        statuses = [get(session), get(session), get()]
    assert statuses == [200, 200, 200]


def test_requests_beside_a_session_that_came_among_others_count_for_themselves() -> None:
    # The session's first request found another client at work, so it is a client of
    # its own: the requests after it, each on a connection of its own, are not one
    # looping client's either while it is there.
    with one_page(1) as (fake, get), requests.Session() as session:
        with another_client_at_work(fake):
            statuses = [get(session)]
        statuses += [get(), get()]
    assert statuses == [200, 200, 200]


def test_a_session_that_came_among_others_is_stopped_on_its_own_loop() -> None:
    with one_page(2) as (fake, get):
        with requests.Session() as session:
            with another_client_at_work(fake):
                statuses = [get(session)]
            statuses += [get(session), get(session)]
        forget_stops(fake)  # the guard was the point
    assert statuses == [200, 200, 508]


def test_a_session_taken_for_the_shared_client_is_stopped_on_its_own_loop() -> None:
    # Its first request and another session's counted for one client; its next ones
    # showed it keeps its connection: from then on its loop is its own.
    with one_page(2) as (fake, get):
        with requests.Session() as a, requests.Session() as b:
            statuses = [get(a), get(b), get(a), get(a), get(a)]
        forget_stops(fake)
    assert statuses == [200, 200, 200, 200, 508]


# -- proxies ----------------------------------------------------------------------------


@pytest.fixture
def closed_proxy(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every proxy variable pointing at a port nothing listens on (as on a CI runner or a
    corporate machine whose proxy the test cannot reach)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    return proxy


def test_a_proxy_variable_is_in_effect_without_no_proxy(
    fake: QStashTasksServer, closed_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("no_proxy")
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get(fake.base_url + TASKS, timeout=5)
    fake.assert_not_called()


@pytest.mark.usefixtures("closed_proxy")
def test_clients_in_the_test_reach_the_server_past_a_proxy(fake: QStashTasksServer) -> None:
    auth = {"Authorization": "Bearer t"}
    assert requests.get(fake.base_url + TASKS, headers=auth, timeout=5).status_code == 200
    with httpx.Client() as client:
        assert client.get(fake.base_url + TASKS, headers=auth).status_code == 200
    # Its own opener: urlopen's shared one keeps the proxies of its first use for good.
    opened = urllib.request.build_opener().open(
        urllib.request.Request(fake.base_url + TASKS, headers=auth), timeout=5
    )
    with opened as answer:
        assert answer.status == 200
    assert len(fake.calls) == 3


@pytest.mark.usefixtures("closed_proxy")
def test_the_sdk_reaches_the_server_past_a_proxy(
    fake: QStashTasksServer, sdk: Callable[..., QStash]
) -> None:
    client = sdk(fake.token, base_url=fake.base_url)
    assert len(client.http.request(path=TASKS, method="GET")["tasks"]) == 100


@pytest.mark.asyncio
@pytest.mark.usefixtures("closed_proxy")
async def test_the_async_sdk_reaches_the_server_past_a_proxy(
    fake: QStashTasksServer, async_sdk: Callable[..., AsyncQStash]
) -> None:
    client = async_sdk(fake.token, base_url=fake.base_url)
    assert len((await client.http.request(path=TASKS, method="GET"))["tasks"]) == 100


@pytest.mark.asyncio
@pytest.mark.usefixtures("closed_proxy")
async def test_aiohttp_trusting_the_environment_reaches_the_server_past_a_proxy(
    fake: QStashTasksServer,
) -> None:
    async with (
        aiohttp.ClientSession(trust_env=True) as session,
        session.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"}) as answer,
    ):
        assert answer.status == 200


def test_env_carries_no_proxy_for_a_subprocess(
    fake: QStashTasksServer, closed_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.delenv("no_proxy")
    env = fake.env
    assert env["NO_PROXY"] == env["no_proxy"] == "internal.example,127.0.0.1"
    # Clients read either spelling: both are kept, each entry once, blanks taken off.
    monkeypatch.setenv("no_proxy", "a.example, internal.example")
    merged = "a.example,internal.example,127.0.0.1"
    assert fake.env["NO_PROXY"] == fake.env["no_proxy"] == merged
    monkeypatch.setenv("NO_PROXY", "")
    assert fake.env["NO_PROXY"] == "a.example,internal.example,127.0.0.1"
    code = (
        "import os, requests; print(requests.get(os.environ['QSTASH_URL'] + "
        f"'{TASKS}', headers={{'Authorization': 'Bearer t'}}, timeout=5).status_code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "HTTP_PROXY": closed_proxy, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stdout.strip() == "200", done.stderr


# -- bad input on the socket ------------------------------------------------------------


TASKS_OF_M = "/v1/messages/m/tasks"


def raw_exchange(fake: QStashTasksServer, data: bytes) -> bytes:
    with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_header_names_in_capitals_are_read(fake: QStashTasksServer) -> None:
    answer = raw_exchange(
        fake,
        b"GET /v1/messages/msg_1/tasks HTTP/1.1\r\nHOST: x\r\nAUTHORIZATION: Bearer t\r\n"
        b"CONNECTION: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"\x00\x01\x02 garbage\r\n\r\n", b"400"),
        (b"GET\r\n\r\n", b"400"),
        (b"GET / HTTP/9.9\r\n\r\n", b"505"),
        (b"GET /v1/messages/msg_1/tasks HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
        (b"G" * 70_000 + b"\r\n", b"414"),
        (b"POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n", b"400"),
        (b"POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
    ],
)
def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(
    fake: QStashTasksServer, data: bytes, status: bytes
) -> None:
    answer = raw_exchange(fake, data)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert "error" in json.loads(body)
    with httpx.Client() as client:
        assert client.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"}).is_success


def test_a_client_that_disconnects_mid_request_or_answer(fake: QStashTasksServer) -> None:
    with socket.create_connection((fake._server.host, fake._server.port)) as conn:
        conn.sendall(b"GET /v1/messages/msg_1/tas")  # and gone
    for _ in range(20):
        conn = socket.create_connection((fake._server.host, fake._server.port))
        conn.sendall(b"GET " + TASKS.encode() + b" HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # a reset, likely while the 23 kB answer is being written
    with httpx.Client() as client:
        assert client.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"}).is_success


def sent_then_closed(fake: QStashTasksServer, data: bytes) -> bytes:
    """Send ``data``, close the sending side (as ``nc -q0`` does), read what comes back."""
    with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def tasks_request(target: str, *lines: str) -> bytes:
    return "\r\n".join([f"GET {target} HTTP/1.1", "Host: x", *lines, "", ""]).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"GET /v1/messages/msg_1/tasks HTTP/1.1\r\nHost: x\r\n",  # before the auth header
        b"GET /v1/messages/msg_1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n",
        b"GET /v1/messages/msg_1/tasks HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 10"
        b"\r\n\r\nabc",  # mid-body
        b"POST /v1/messages/msg_1/tasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"POST /v1/messages/msg_1/tasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ],
    ids=["headers", "after-auth", "body", "chunk", "trailers"],
)
def test_a_request_its_client_cut_off_is_forgotten(fake: QStashTasksServer, data: bytes) -> None:
    assert sent_then_closed(fake, data) == b""  # no answer
    assert fake.calls == []
    assert fake.problems() == []  # nothing reported
    with httpx.Client() as client:  # and the server is fine
        assert client.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"}).is_success
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            ["Content-Length: 0", "Content-Length: 3"],
            "conflicting Content-Length headers: ['0', '3']",
        ),
        (
            ["Content-Length: 3", "Transfer-Encoding: chunked"],
            "Content-Length beside Transfer-Encoding: ambiguous framing",
        ),
        (["Transfer-Encoding: gzip"], "unsupported Transfer-Encoding 'gzip'"),
        (["Transfer-Encoding: gzip, chunked"], "unsupported Transfer-Encoding 'gzip, chunked'"),
    ],
)
def test_ambiguous_framing_is_refused_and_the_connection_closed(
    fake: QStashTasksServer, lines: list[str], error: str
) -> None:
    # What a smuggler would leave for the next request on the connection: never read.
    data = tasks_request(TASKS, "Authorization: Bearer t", *lines) + b"GET" + tasks_request(TASKS)
    answer = raw_exchange(fake, data)  # read until the server closes
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"connection: close" in head
    assert json.loads(body) == {"error": error}
    assert fake.calls == []


def test_an_invalid_content_length_is_named(fake: QStashTasksServer) -> None:
    answer = raw_exchange(fake, b"POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
        "error": "invalid Content-Length 'nope'"
    }


def test_the_same_content_length_twice_is_one(fake: QStashTasksServer) -> None:
    data = tasks_request(TASKS, "Authorization: Bearer t", "Content-Length: 0", "Content-Length: 0")
    head, _, _ = raw_exchange(fake, data.replace(b"Host: x", b"Connection: close")).partition(
        b"\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert len(fake.calls) == 1


def test_a_raw_utf8_path_is_the_id_it_spells(fake: QStashTasksServer) -> None:
    fake.add("msg_é", count=2)
    data = "GET /v1/messages/msg_é/tasks?x=1 HTTP/1.1\r\nAuthorization: Bearer t\r\n"
    answer = raw_exchange(fake, data.encode() + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    (call,) = fake.calls
    assert call.message_id == "msg_é"
    assert call.url == fake.base_url + "/v1/messages/msg_%C3%A9/tasks?x=1"  # the query kept
    assert call.task_count == 2


def test_the_absolute_form_a_proxy_sends_is_served(fake: QStashTasksServer) -> None:
    target = fake.base_url + TASKS + "?cursor=99950"
    data = tasks_request(target, "Authorization: Bearer t", "Connection: close")
    assert raw_exchange(fake, data).startswith(b"HTTP/1.1 200 OK")
    (call,) = fake.calls
    assert (call.url, call.message_id, call.cursor) == (target, "msg_1", 99950)


@pytest.mark.parametrize(
    ("target", "served", "status"),
    [
        ("https://qstash.upstash.io" + TASKS, TASKS, b"200"),
        ("HTTPS://QStash.Upstash.IO" + TASKS, TASKS, b"200"),
        ("https://qstash.upstash.io", "/", b"404"),  # no path: the root
    ],
)
def test_a_target_is_a_path_whatever_the_scheme_or_slashes(
    fake: QStashTasksServer, target: str, served: str, status: bytes
) -> None:
    if status == b"404":
        fake.expect_unserved("unknown_path")
    data = tasks_request(target, "Authorization: Bearer t", "Connection: close")
    assert raw_exchange(fake, data).startswith(b"HTTP/1.1 " + status)
    (call,) = fake.calls
    assert call.url == fake.base_url + served


def test_the_header_block_s_edges(fake: QStashTasksServer) -> None:
    auth = "Authorization: Bearer t"
    # 99 header lines (the most http.client takes) and a line of 64 KiB: taken, and the
    # connection then serves its next request.
    many = tasks_request(TASKS, auth, *[f"X-{n}: {n}" for n in range(97)])
    long = tasks_request(TASKS, auth, "X-Long: " + "a" * (65_536 - 10))
    last = tasks_request(TASKS, auth, "Connection: close")
    answers = raw_exchange(fake, many + long + last)
    assert answers.count(b"HTTP/1.1 200 OK") == 3, answers[:300]
    # Lines ended by a bare LF, as some hand-written clients send them.
    bare = tasks_request(TASKS, auth, "Connection: close").replace(b"\r\n", b"\n")
    assert raw_exchange(fake, bare).startswith(b"HTTP/1.1 200 OK")
    assert len(fake.calls) == 4


def test_a_header_line_that_never_ends_is_refused_past_64_kib(fake: QStashTasksServer) -> None:
    with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
        conn.sendall(b"GET " + TASKS.encode() + b" HTTP/1.1\r\nX: " + b"a" * 70_000)
        answer = conn.recv(65536)  # no newline sent, nor the connection closed
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]


def test_the_request_line_s_edges(fake: QStashTasksServer) -> None:
    # A line of exactly 64 KiB is read as any other...
    line = f"GET {TASKS}?x= HTTP/1.1\r\n"
    longest = line.replace("?x=", "?x=" + "a" * (65_536 - len(line)))
    assert len(longest) == 65_536
    head = b"Authorization: Bearer t\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(fake, longest.encode() + head)
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    # ...one that never ends is refused once past it, without waiting for its end...
    with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
        conn.sendall(b"GET /" + b"a" * 70_000)
        assert conn.recv(65536).startswith(b"HTTP/1.1 414")
    # ...and one cut off by the client leaving is not answered.
    assert sent_then_closed(fake, b"GET /v1/messages/msg_1/tas") == b""
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"POST /x HTTP/9.9\r\nContent-Length: nope\r\n\r\n",
        b"POST /x HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n",
    ],
    ids=["bad-version", "too-many-headers"],
)
def test_a_request_refused_as_it_is_parsed_gets_one_answer(
    fake: QStashTasksServer, data: bytes
) -> None:
    answer = sent_then_closed(fake, data)
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert fake._server.internal_errors == []


def test_an_http_0_9_request_is_refused_at_once(fake: QStashTasksServer) -> None:
    with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
        conn.sendall(b"GET /v1/messages/msg_1/tasks\r\n")  # and wait: no close from here
        answer = conn.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request")
    assert json.loads(body) == {"error": "HTTP/0.9 is not supported: send an HTTP/1.1 request"}
    assert fake.calls == []


def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    server = LoopbackServer(idle_timeout=0.3)
    with QStashTasksServer(server=server.start()) as fake:
        try:
            with socket.create_connection((server.host, server.port), timeout=5) as conn:
                started = time.perf_counter()
                assert conn.recv(1) == b""  # closed by the server, with no request sent
                assert 0.25 <= time.perf_counter() - started < 3
        finally:
            server.stop()
    assert fake.calls == []


def test_connections_are_bounded_and_an_idle_one_makes_room() -> None:
    server = LoopbackServer(max_connections=4).start()
    try:
        with QStashTasksServer(server=server) as fake:
            fake.add_message("m")
            idle = [socket.create_connection((server.host, server.port)) for _ in range(10)]
            with requests.Session() as session:  # an eleventh client, waiting in the backlog
                answer = session.get(
                    fake.base_url + "/v1/messages/m/tasks",
                    headers={"Authorization": "Bearer t"},
                    timeout=5,
                )
                assert answer.status_code == 200
                assert len(server._workers) <= 4
            for conn in idle:
                conn.close()
    finally:
        server.stop()


def test_room_is_made_by_closing_an_idle_connection_not_one_being_answered() -> None:
    server = LoopbackServer(max_connections=2).start()
    try:
        with QStashTasksServer(server=server) as fake:
            fake.add_message("m")
            fake.delay_next(1, message_id="m")
            url = fake.base_url + TASKS_OF_M
            auth = {"Authorization": "Bearer t"}
            answers: list[int] = []
            busy = threading.Thread(
                target=lambda: answers.append(httpx.get(url, headers=auth, timeout=10).status_code)
            )
            busy.start()  # connected first, and held for a second
            while not fake.calls:
                time.sleep(0.01)
            with socket.create_connection((server.host, server.port)) as idle:
                time.sleep(0.1)  # the idle one is in, waiting for a request
                third = requests.get(url, headers=auth, timeout=10)  # the server is full
                assert third.status_code == 200
                assert idle.recv(1) == b""  # closed to make room
            busy.join(10)
            assert answers == [200]
    finally:
        server.stop()


def test_a_chunked_post_body_is_drained_and_the_connection_reused(
    fake: QStashTasksServer,
) -> None:
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": "Bearer t"}) as client:
        answer = client.post(TASKS, content=iter([b"a" * 10, b"b" * 5]))
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET"
        assert client.get(TASKS).status_code == 200
    assert fake.calls[0].body == b"a" * 10 + b"b" * 5
    fake.assert_all_requests_served = False


def test_a_head_answer_has_no_body_and_the_connection_goes_on(fake: QStashTasksServer) -> None:
    data = (
        b"HEAD /v1/messages/msg_1/tasks HTTP/1.1\r\nAuthorization: Bearer t\r\n\r\n"
        + tasks_request(TASKS, "Authorization: Bearer t", "Connection: close")
    )
    answer = raw_exchange(fake, data)
    head_answer, _, rest = answer.partition(b"\r\n\r\n")
    assert head_answer.startswith(b"HTTP/1.1 405 ")  # the endpoint takes GET only
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no body in between: the next answer
    fake.assert_all_requests_served = False


def test_connection_close_is_said_before_the_server_closes(fake: QStashTasksServer) -> None:
    answer = raw_exchange(
        fake, tasks_request(TASKS, "Authorization: Bearer t", "Connection: close")
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close" in head
    assert len(json.loads(body)["tasks"]) == 100


def test_a_body_of_the_largest_size_is_read_and_one_byte_more_refused(
    fake: QStashTasksServer,
) -> None:
    from pytest_qstash_tasks._transports.http_server import MAX_BODY

    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer t"
        largest = session.post(fake.base_url + TASKS, data=b"x" * MAX_BODY, timeout=5)
        assert largest.status_code == 405  # read whole, then answered by the endpoint
        too_big = session.post(fake.base_url + TASKS, data=b"x" * (MAX_BODY + 1), timeout=5)
    assert too_big.status_code == 413
    assert too_big.json() == {"error": f"request body over {MAX_BODY} bytes"}
    assert len(fake.calls) == 1
    assert len(fake.calls[0].body) == MAX_BODY
    fake.assert_all_requests_served = False


def chunked(target: str, body: bytes) -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nAuthorization: Bearer t\r\nTransfer-Encoding: chunked"
        "\r\nConnection: close\r\n\r\n"
    ).encode() + body


def test_a_chunked_body_is_read_as_http_1_1_frames_it(fake: QStashTasksServer) -> None:
    # Sizes in hex of either case, an extension after ';', bare \n line ends, a trailer.
    body = b"A;name=value\r\n0123456789\r\n1f\n" + b"x" * 31 + b"\n0\r\nX-Trailer: 1\r\n\r\n"
    answer = raw_exchange(fake, chunked(TASKS, body))
    assert answer.startswith(b"HTTP/1.1 405 ")  # read whole, then answered by the endpoint
    assert fake.calls[0].body == b"0123456789" + b"x" * 31
    fake.assert_all_requests_served = False


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"zz\r\nab\r\n0\r\n\r\n", b"400", "invalid chunked body"),
        (b"\r\n0\r\n\r\n", b"400", "invalid chunked body"),
        (b"2000001\r\n", b"413", "request body over 33554432 bytes"),
    ],
    ids=["not hex", "no size", "over the limit at once"],
)
def test_a_bad_chunked_body_is_refused(
    fake: QStashTasksServer, body: bytes, status: bytes, error: str
) -> None:
    answer = raw_exchange(fake, chunked(TASKS, body))
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b" ")
    assert json.loads(text) == {"error": error}
    assert fake.calls == []


TRAILER = b"X-T: " + b"t" * (65537 - len(b"X-T: \r\n")) + b"\r\n"  # 65,537 bytes in all


@pytest.mark.parametrize(
    ("body", "read"),
    [
        (b"0" * 1023 + b"5\r\nhello\r\n0\r\n\r\n", b"hello"),  # a size line of 1,026 bytes
        (b"5;a=1;b=2\r\nhello\r\n0\r\n\r\n", b"hello"),  # two extensions
        (b"5\r\nhello\r\n0\r\n" + TRAILER + b"\r\n", b"hello"),  # the longest trailer line
        (b"5\r\nhello\n0\r\nX-T: 1\r\n\n", b"hello"),  # bare line ends
        (b"0" * 1024 + b"5\r\nhello\r\n0\r\n\r\n", None),  # a size line of 1,027 bytes
        (b"5\r\nhello\r\n0\r\nX" + TRAILER + b"\r\n", None),  # a trailer line too long
        (b"5\r\nhelloxy\r\n0\r\n\r\n", None),  # more data than its size said
    ],
    ids=[
        "size-1026",
        "extensions",
        "trailer-65537",
        "bare-lf",
        "size-1027",
        "trailer-65538",
        "over",
    ],
)
def test_the_chunked_framing_s_line_limits(
    fake: QStashTasksServer, body: bytes, read: bytes | None
) -> None:
    answer = raw_exchange(fake, chunked(TASKS, body))
    if read is None:  # not HTTP/1.1 chunks: the connection closes, with no answer
        assert (answer, fake.calls) == (b"", [])
        return
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert fake.calls[0].body == read
    fake.assert_all_requests_served = False


def test_broken_chunks_close_a_connection_kept_alive(fake: QStashTasksServer) -> None:
    # No "Connection: close": the server ends it itself, not reading the rest as a request.
    head = f"POST {TASKS} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    assert raw_exchange(fake, head + b"0" * 1100 + b"5\r\nhello\r\n0\r\n\r\n") == b""
    assert fake.calls == []


def test_chunks_count_towards_the_largest_body_together(fake: QStashTasksServer) -> None:
    from pytest_qstash_tasks._transports.http_server import MAX_BODY

    half = MAX_BODY // 2
    whole = f"{half:x}\r\n".encode() + b"a" * half + f"\r\n{half:x}\r\n".encode()
    largest = whole + b"b" * half + b"\r\n0\r\n\r\n"
    assert raw_exchange(fake, chunked(TASKS, largest)).startswith(b"HTTP/1.1 405 ")
    over = whole + b"b" * half + b"\r\n1\r\n"
    answer = raw_exchange(fake, chunked(TASKS, over))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert len(fake.calls) == 1
    assert len(fake.calls[0].body) == MAX_BODY
    fake.assert_all_requests_served = False


def test_the_access_log_says_a_held_request_got_no_status() -> None:
    logged: list[tuple[str, str, int | None, float]] = []
    fake = QStashTasksServer(access_log=lambda *line: logged.append(line), max_hold_seconds=0.3)
    with fake:
        fake.add_message("m")
        fake.raise_next(TimeoutError)
        with pytest.raises(requests.ReadTimeout):
            requests.get(
                fake.base_url + "/v1/messages/m/tasks",
                headers={"Authorization": "Bearer t"},
                timeout=0.2,
            )
        time.sleep(0.3)  # the hold ends, and the log line is written
    (line,) = logged
    assert line[:3] == ("GET", "/v1/messages/m/tasks", None)


def test_a_request_is_logged_before_its_answer_reaches_the_client() -> None:
    # A slow log (a busy terminal) must not let a client see its answer before the line
    # is written: then one client's requests are logged in the order it made them.
    logged: list[str] = []

    def slow_log(method: str, target: str, status: int | None, seconds: float) -> None:
        time.sleep(0.05)
        logged.append(f"{method} {target} {status}")

    with QStashTasksServer(access_log=slow_log) as fake, requests.Session() as session:
        fake.add_message("m")
        for number in range(3):
            session.get(
                fake.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer t"}
            )
            assert len(logged) == number + 1
        session.get(fake.base_url + "/v1/nowhere", headers={"Authorization": "Bearer t"})
        assert logged[-1] == "GET /v1/nowhere 404"
        fake.assert_all_requests_served = False


def test_stop_is_woken_as_soon_as_the_last_request_ends() -> None:
    fake = QStashTasksServer()
    fake.start()
    fake.add_message("m")
    fake.delay_next(0.3)
    thread = threading.Thread(
        target=requests.get,
        args=(fake.base_url + "/v1/messages/m/tasks",),
        kwargs={"headers": {"Authorization": "Bearer t"}, "timeout": 5},
    )
    thread.start()
    time.sleep(0.1)  # the request is being answered
    started = time.perf_counter()
    fake.stop()  # waits for it, not for the 10 s drain bound
    waited = time.perf_counter() - started
    thread.join()
    assert 0.1 <= waited < 2, waited
    assert [call.status for call in fake.calls] == [200]


# -- the server's life ------------------------------------------------------------------


def test_start_first_answer_and_stop_with_a_keep_alive_connection_open() -> None:
    started = time.perf_counter()
    with QStashTasksServer() as fake, requests.Session() as session:
        fake.add_message("m")
        answer = session.get(
            fake.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer t"}
        )
        assert answer.status_code == 200
        assert time.perf_counter() - started < 1  # well under: see docs/benchmarks.md
        stopping = time.perf_counter()
        fake.stop()
        assert time.perf_counter() - stopping < 0.5  # no 0.5 s poll to wait for
    assert not fake._server.running


@pytest.mark.asyncio
async def test_async_context_manager_and_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    async with QStashTasksServer(host="::1", token="s3cret") as fake:
        assert fake.base_url.startswith("http://[::1]:")
        fake.add("m", count=3)
        async with httpx.AsyncClient() as client:
            answer = await client.get(
                fake.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer s3cret"}
            )
        assert len(answer.json()["tasks"]) == 3


def test_servers_made_at_once_each_get_a_free_port() -> None:
    with QStashTasksServer() as one, QStashTasksServer() as two:
        assert one.base_url != two.base_url


def test_a_server_never_started_frees_its_port_and_leaves_a_shared_one_alone() -> None:
    unused = QStashTasksServer()
    port = unused._server.port
    unused.stop()
    unused.stop()  # twice: nothing more to do
    with socket.create_server(("127.0.0.1", port)):  # the port is free again
        pass
    shared = LoopbackServer()
    try:
        QStashTasksServer(server=shared).stop()  # never started: the shared server stays
        with QStashTasksServer(server=shared.start()) as fake:
            fake.add_message("m")
            answer = httpx.get(fake.base_url + TASKS_OF_M, headers={"Authorization": "Bearer t"})
            assert answer.status_code == 200
    finally:
        shared.stop()


def test_a_status_without_a_reason_phrase_has_none_on_the_wire(fake: QStashTasksServer) -> None:
    fake.fail_next(599, message_id="msg_1")
    data = tasks_request(TASKS, "Authorization: Bearer t", "Connection: close")
    answer = raw_exchange(fake, data)
    assert answer.startswith(b"HTTP/1.1 599 \r\n"), answer[:100]
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"error": "HTTP status 599"}


def test_a_test_ends_without_waiting_past_the_drain_for_a_held_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_qstash_tasks._transports import http_server

    monkeypatch.setattr(http_server, "DRAIN_SECONDS", 0.3)
    fake = QStashTasksServer().start()
    fake.add_message("m")
    fake.delay_next(3, message_id="m")
    url = fake.base_url + TASKS_OF_M

    def held() -> None:
        with contextlib.suppress(httpx.HTTPError):  # cut off when the server stops
            httpx.get(url, headers={"Authorization": "Bearer t"}, timeout=10)

    thread = threading.Thread(target=held)
    thread.start()
    while not fake.calls and thread.is_alive():  # the request is in, and held
        time.sleep(0.01)
    started = time.perf_counter()
    fake.stop()
    assert time.perf_counter() - started < 2  # the drain's 0.3 s, not the hold's 3 s
    thread.join(10)


def test_a_request_sent_before_the_test_ends_is_answered_by_its_fake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = LoopbackServer().start()
    read_at_once = shared.process_request_thread

    def read_late(request: socket.socket, client_address: object) -> None:
        time.sleep(0.2)  # the connection's thread starts after the test has ended
        read_at_once(request, client_address)

    monkeypatch.setattr(shared, "process_request_thread", read_late)
    try:
        with socket.create_connection((shared.host, shared.port), timeout=5) as conn:
            with QStashTasksServer(server=shared) as fake:
                fake.add_message("m")
                conn.sendall(tasks_request(TASKS_OF_M, "Authorization: Bearer t"))
                while not shared.connections.snapshot():  # accepted, not read yet
                    time.sleep(0.005)
            assert conn.recv(20) == b"HTTP/1.1 200 OK\r\ncon"  # not a 503
        assert [call.url for call in fake.calls] == [fake.base_url + TASKS_OF_M]
        assert shared.take_stray() == []  # nothing left for the next test to report
    finally:
        shared.stop()


def test_bad_server_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"host must be an IP address such as 127\.0\.0\.1") as bad:
        QStashTasksServer(host="localhost")
    assert str(bad.value) == (
        "host must be an IP address such as 127.0.0.1 or ::1, got 'localhost' (a name like "
        "localhost may resolve to another address than the one served)"
    )
    with pytest.raises(TypeError) as no_base_url:
        QStashTasksServer(base_url="http://x")
    assert str(no_base_url.value) == (
        "QStashTasksServer takes host= and port=, not base_url: its base URL is where it listens"
    )
    with pytest.raises(ValueError, match="page_size must be an int >= 1"):
        QStashTasksServer(page_size=0)
    for port in (-1, 65536, "8080", True):
        with pytest.raises(ValueError, match=r"^port must be") as raised:
            QStashTasksServer(port=port)  # type: ignore[arg-type]
        assert str(raised.value) == f"port must be an int 0-65535 (0: a free one), got {port!r}"
    # The highest port is a port: refused only if this machine uses it already.
    with contextlib.suppress(OSError):
        LoopbackServer(port=65535).server_close()


def test_a_server_s_thread_is_named_for_its_port_and_gone_once_it_stops() -> None:
    server = LoopbackServer().start()
    name = f"qstash-tasks-server:{server.port}"
    try:
        assert name in [thread.name for thread in threading.enumerate()]
        with pytest.raises(RuntimeError) as twice:
            server.start()
        assert str(twice.value) == "this server is already running"
    finally:
        server.stop()
    assert name not in [thread.name for thread in threading.enumerate()]


def test_a_second_fake_cannot_take_a_held_server(fake: QStashTasksServer) -> None:
    other = QStashTasksServer(server=fake._server)
    with pytest.raises(RuntimeError, match=r"already held by <QStashTasksServer http://127"):
        other.start()


def test_teardown_waits_for_a_request_still_being_answered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import threading, time, httpx

        seen, threads, ended = [], [], []

        def test_one(qstash_tasks_server):
            qstash_tasks_server.add_message("m")
            qstash_tasks_server.delay_next(0.5)
            url = qstash_tasks_server.base_url + "/v1/messages/m/tasks"
            get = lambda: seen.append(httpx.get(url, headers={"Authorization": "Bearer t"}))
            threads.append(threading.Thread(target=get))
            threads[0].start()
            while not qstash_tasks_server.calls:
                time.sleep(0.001)  # the request reached the fake and waits out its delay
            ended.append(time.monotonic())

        def test_two():
            assert time.monotonic() - ended[0] >= 0.4  # teardown waited for the answer
            threads[0].join(5)
            assert [r.status_code for r in seen] == [200]
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_request_with_no_test_holding_the_server_is_refused_and_reported(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import httpx

        urls = []

        def test_one(qstash_tasks_server):
            urls.append(qstash_tasks_server.base_url)

        def test_between():
            answer = httpx.get(urls[0] + "/v1/messages/m/tasks")
            assert answer.status_code == 503
            assert answer.json() == {
                "error": f"qstash_tasks_server: no test holds the server at {urls[0]} now, "
                "so nothing answers this request"
            }

        def test_two(qstash_tasks_server):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_two*",
            "E*1. 1 request(s) reached http://127.0.0.1:* while no test held the server, "
            "before this test started, and got 503 (a client an earlier test left running?):",
            "E*  - GET http://127.0.0.1:*/v1/messages/m/tasks",
        ]
    )


def test_the_marker_and_ini_configure_the_server_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_tasks_token = from-ini\nqstash_tasks_base_url = https://x\n")
    pytester.makepyfile(
        """
        import pytest, requests

        @pytest.mark.qstash_tasks(page_size=2)
        def test_it(qstash_tasks_server, qstash_tasks):
            assert qstash_tasks_server.base_url.startswith("http://127.0.0.1:")
            assert qstash_tasks.base_url == "https://x"
            assert (qstash_tasks_server.token, qstash_tasks_server.page_size) == ("from-ini", 2)
            env = qstash_tasks_server.env
            assert (env["QSTASH_URL"], env["QSTASH_TOKEN"]) == (
                qstash_tasks_server.base_url, "from-ini"
            )
            qstash_tasks_server.add("m", count=3)
            answer = requests.get(
                qstash_tasks_server.base_url + "/v1/messages/m/tasks",
                headers={"Authorization": "Bearer from-ini"},
            )
            assert len(answer.json()["tasks"]) == 2
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_no_thread_or_socket_is_left_behind(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import os, threading
        from pathlib import Path

        def pytest_sessionfinish(session):  # after the session fixtures' teardown
            names = sorted(t.name for t in threading.enumerate() if t.name != "MainThread")
            sockets = []
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                        sockets.append(fd)
                except OSError:
                    pass  # the listing's own descriptor, gone
            Path(str(session.config.rootpath), "left.txt").write_text(f"{names} {len(sockets)}")
        """
    )
    pytester.makepyfile(
        """
        import pytest, requests, httpx

        @pytest.mark.parametrize("n", range(3))
        def test_it(qstash_tasks_server, n):
            qstash_tasks_server.add_message("m")
            session = requests.Session()  # left open on purpose: keep-alive
            session.get(qstash_tasks_server.base_url + "/v1/messages/m/tasks",
                        headers={"Authorization": "Bearer t"})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=3)
    threads, sockets = (pytester.path / "left.txt").read_text().rsplit(" ", 1)
    assert threads == "[]"
    # The three sessions left open are the clients' own; the server had 1 + 2 + 3 more.
    assert int(sockets) <= 3


def test_loading_the_plugin_imports_no_server_module() -> None:
    code = (
        "import sys, pytest_qstash_tasks._plugin, pytest_qstash_tasks;"
        "print(sorted(m for m in sys.modules if 'loopback' in m or 'http.server' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_threads_of_keep_alive_clients_are_not_a_loop(fake: QStashTasksServer) -> None:
    def poll() -> None:
        with requests.Session() as session:
            for _ in range(60):
                session.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"})

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {call.status for call in fake.calls} == {200}
    assert len(fake.calls) == 480


def test_a_bug_in_answering_is_a_500_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with QStashTasksServer() as fake:

        def broken(request: object) -> object:
            raise RuntimeError("boom")

        monkeypatch.setattr(fake, "_dispatch", broken)
        url = fake.base_url + "/v1/messages/m/tasks"
        answer = requests.get(url, timeout=5)
        assert (answer.status_code, answer.json()) == (
            500,
            {"error": "qstash_tasks_server: RuntimeError: boom"},
        )
        assert fake.problems() == [
            "the server failed to answer 1 request(s) (a bug in pytest-qstash-tasks, please "
            f"report it):\n  - GET {url}: qstash_tasks_server: RuntimeError: boom"
        ]
        monkeypatch.undo()
        fake._server.internal_errors.clear()


# -- framing the server refuses (RFC 9112), at once ---------------------------------------

#: The start of a TLS 1.2 ClientHello: what `curl -k https://...` sends first.
CLIENT_HELLO = bytes.fromhex("16030100c4010000c00303") + os.urandom(32)


def first_answer(fake: QStashTasksServer, data: bytes) -> tuple[bytes, float]:
    """Send ``data`` and keep the connection open: the first answer, and how long it took."""
    with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
        started = time.perf_counter()
        conn.sendall(data)
        answer = conn.recv(65536)
        return answer, time.perf_counter() - started


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (CLIENT_HELLO, "not an HTTP/1.1 request (https:// to an http:// server?)"),
        (b"\x00\x01\x02\xff garbage", "not an HTTP/1.1 request (https:// to an http:// server?)"),
        (b"GET\r\n", "Bad request syntax ('GET')"),
        (b"GET /x HTTP/1.1 extra\r\n", "Bad request syntax ('GET /x HTTP/1.1 extra')"),
    ],
    ids=["tls", "binary", "bare-get", "four-words"],
)
def test_what_is_no_http_request_is_refused_at_once(
    fake: QStashTasksServer, data: bytes, error: str
) -> None:
    answer, took = first_answer(fake, data)  # no blank line, no close: nothing to wait for
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
    assert json.loads(body) == {"error": error}
    assert took < 2  # the idle timeout is 30 s
    assert fake.calls == []


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_its_deadline() -> None:
    server = LoopbackServer(head_timeout=0.5).start()
    try:
        with (
            QStashTasksServer(server=server) as fake,
            socket.create_connection((server.host, server.port), timeout=5) as conn,
        ):
            started = time.perf_counter()
            conn.sendall(b"GET " + TASKS.encode() + b" HTTP/1.1\r\n")
            with contextlib.suppress(OSError):  # the server may close before the last byte
                for byte in b"Authorization: Bearer t\r\n":
                    conn.sendall(bytes([byte]))
                    time.sleep(0.1)  # each byte well within the 30 s idle timeout
            answer = conn.recv(65536)
            assert 0.45 <= time.perf_counter() - started < 3
            assert fake.calls == []
    finally:
        server.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
    assert json.loads(body) == {"error": "the request head did not arrive within 0.5 s"}


def test_clients_sending_half_a_request_hold_no_room_from_a_new_one() -> None:
    server = LoopbackServer(max_connections=8).start()
    slow = []
    try:
        with QStashTasksServer(server=server) as fake:
            fake.add("msg_1", count=1)
            for _ in range(12):  # more than the server serves at once
                conn = socket.create_connection((server.host, server.port), timeout=5)
                conn.sendall(b"GET /v1/messages/msg_1/tas")
                slow.append(conn)
            started = time.perf_counter()
            with httpx.Client(timeout=10) as client:
                answer = client.get(fake.base_url + TASKS, headers={"Authorization": "Bearer t"})
            assert answer.status_code == 200
            assert time.perf_counter() - started < 2  # not the head deadline, nor idle
    finally:
        for conn in slow:
            conn.close()
        server.stop()


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            ["Content-Length : 6"],
            "invalid header line 'Content-Length : 6': want a name, a colon right after it, "
            "a value",
        ),
        (
            ["X-A: 1", " folded"],
            "a folded header line (obs-fold) is not accepted: ' folded'",
        ),
        (
            ["X-A: 1\rX-B: 2"],
            "invalid header line 'X-A: 1': want a name, a colon right after it, a value",
        ),
        (["Host: y"], "more than one Host header"),
        (["Content-Length: \u00b2"], "invalid Content-Length '\u00b2'"),
    ],
    ids=["blank-before-colon", "obs-fold", "bare-cr", "two-hosts", "superscript-length"],
)
def test_a_header_block_http_1_1_refuses_is_refused(
    fake: QStashTasksServer, lines: list[str], error: str
) -> None:
    # A smuggler's request after it: never read, the connection closes.
    data = "\r\n".join([f"POST {TASKS} HTTP/1.1", "Host: x", *lines, "", "abcdef"])
    answer = raw_exchange(fake, data.encode("latin-1") + tasks_request(TASKS))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
    assert b"connection: close" in head
    assert json.loads(body) == {"error": error}
    assert fake.calls == []


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"5_0", b"-1", b" 5", b"5 5"])
def test_a_chunk_size_is_hex_digits_only(fake: QStashTasksServer, size: bytes) -> None:
    answer = raw_exchange(fake, chunked(TASKS, size + b"\r\nhello\r\n0\r\n\r\n"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
    assert json.loads(body) == {"error": "invalid chunked body"}
    assert fake.calls == []


def test_a_refused_request_s_answer_reaches_a_client_still_sending(
    fake: QStashTasksServer,
) -> None:
    # Refused before its body is read: closed at once, the socket would reset while the
    # client still sends (a broken pipe), and it would never read the answer. (urllib3,
    # httpx and aiohttp read an answer after a broken pipe; a plain client does not.)
    for head in (b"Content-Length: nope", b"Content-Length: %d" % (MAX_BODY + 1)):
        with socket.create_connection((fake._server.host, fake._server.port), timeout=5) as conn:
            conn.sendall(b"POST /x HTTP/1.1\r\n" + head + b"\r\n\r\n" + b"a" * (4 << 20))
            answer = conn.recv(65536)
        assert answer.startswith((b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 413 ")), answer[:99]


def test_a_fake_on_a_shared_server_reports_only_the_internal_errors_it_met(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = LoopbackServer().start()
    try:
        first = QStashTasksServer(server=server).start()  # stopped without verify()
        monkeypatch.setattr(first, "_dispatch", lambda request: 1 / 0)  # a bug
        httpx.get(first.base_url + TASKS)
        assert "ZeroDivisionError: division by zero" in first.problems()[0]
        first.stop()
        with QStashTasksServer(server=server) as second:
            assert second.problems() == []  # the first fake's, not this one's
    finally:
        server.stop()
