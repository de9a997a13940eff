"""The qstash_tasks fixture through real clients: httpx sync and async, and the SDK."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
import respx
from qstash import AsyncQStash, QStash
from qstash.errors import QStashError

from pytest_qstash_tasks import QStashTasksFake, QStashTasksLoopError, QStashTasksMock, make_tasks
from tests.helpers import awalk, client_for, walk


def test_a_client_that_follows_cursors_sees_every_task_once(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("msg_123", count=250)
    with client_for(any_fake) as client:
        seen, requests = walk(client, "msg_123")
    assert [t["taskId"] for t in seen] == [t.task_id for t in stored]
    assert requests == len(any_fake.calls) >= 3
    assert all(len(call.response.json()["tasks"]) <= 100 for call in any_fake.calls)  # type: ignore[union-attr]


def test_calls_record_what_the_fake_read(any_fake: QStashTasksFake) -> None:
    any_fake.add("msg_1", count=150)
    with client_for(any_fake) as client:
        walk(client, "msg_1")
    first, second = any_fake.calls
    assert (first.message_id, first.cursor, first.token) == ("msg_1", None, any_fake.token)
    assert second.cursor == first.response.json()["cursor"]  # type: ignore[union-attr]
    assert isinstance(second.request, httpx.Request)
    assert second.request.url.params["cursor"] == str(second.cursor)
    assert second.status == 200
    assert second.served


def test_an_httpx_call_records_the_request_httpx_sent(qstash_tasks: QStashTasksMock) -> None:
    qstash_tasks.add("msg_1", count=1)
    httpx.get(
        qstash_tasks.base_url + "/v1/messages/msg_1/tasks",
        headers={"Authorization": "Bearer t"},
        timeout=httpx.Timeout(7, read=3),
    )
    (call,) = qstash_tasks.calls
    assert isinstance(call.native_request, httpx.Request)
    # httpx's own request, with what only it carries: the client's timeouts.
    assert call.request.extensions["timeout"] == {"connect": 7, "read": 3, "write": 7, "pool": 7}


def test_many_tasks_in_one_millisecond(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("msg_1", count=450, timeline_at=lambda i: 5_000 - i // 150)
    with client_for(any_fake) as client:
        seen, requests = walk(client, "msg_1")
    assert [t["taskId"] for t in seen] == [t.task_id for t in stored]
    assert requests == 3  # three groups of 150: each a (long) page of its own
    assert any_fake.tasks("msg_1") == stored
    with pytest.raises(KeyError, match="message 'other' holds no stored tasks"):
        any_fake.tasks("other")


@pytest.mark.qstash_tasks(page_size=7)
def test_page_size_from_the_marker(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=20, timeline_at=lambda i: 10_000 - i)
    with client_for(any_fake) as client:
        _, requests = walk(client, "m")
    assert requests == 3


def test_params_in_the_url_and_no_client_base_url(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=3, timeline_at=lambda i: 100 - i)
    url = f"{any_fake.base_url}/v1/messages/m/tasks?cursor=99"
    response = httpx.get(url, headers={"Authorization": "Bearer whatever"})
    assert len(response.json()["tasks"]) == 2
    assert any_fake.calls[0].token == "whatever"


def test_add_registers_empty_messages_and_refuses_unclear_calls(
    any_fake: QStashTasksFake,
) -> None:
    assert any_fake.add("none", []) == []
    any_fake.add_message("also_none")
    with client_for(any_fake) as client:
        for message_id in ("none", "also_none"):
            answer = client.get(f"/v1/messages/{message_id}/tasks")
            assert (answer.status_code, answer.json()) == (200, {"cursor": 0, "tasks": []})
    with pytest.raises(
        TypeError, match=r"to register a message with no tasks, use add_message\('m'\)"
    ):
        any_fake.add("m")
    with pytest.raises(TypeError, match=r"^add\(\) takes either tasks or count=, not both"):
        any_fake.add("m", [], count=1)
    with pytest.raises(TypeError, match=r"^add\(\) got unknown field\(s\) \['max_retries'\]"):
        any_fake.add("m", count=1, max_retries=5)
    with pytest.raises(ValueError, match=r"^add\(\): 'delivred' is not a task state"):
        any_fake.add("m", count=3, state="delivred")
    # The states to draw from, and a state drawn per task, name the call too.
    with pytest.raises(ValueError, match=r"^add\(\): 'retrying' is not a task state"):
        any_fake.add("m", count=3, states=["delivered", "retrying"])
    with pytest.raises(ValueError, match=r"^add\(\): 'retrying' is not a task state"):
        any_fake.add("m", count=3, state=lambda i: "retrying", url="https://x.example/")
    with pytest.raises(TypeError) as raised:
        any_fake.add("m", [], state="failed", url="https://x.example/")
    assert str(raised.value) == (
        "field overrides (state, url) apply to generated tasks (count=...); set them on the "
        "tasks you pass instead"
    )
    with pytest.raises(
        TypeError, match=r"^tasks must be a list of tasks; wrap a single task in a list$"
    ):
        any_fake.add("m", make_tasks(1, message_id="m")[0])  # type: ignore[arg-type]


def test_add_accepts_wire_dicts_and_stamps_them_from_the_clock(
    any_fake: QStashTasksFake,
) -> None:
    wire = [t.model_dump(by_alias=True, mode="json") for t in make_tasks(3, message_id="m")]
    stored = any_fake.add("m", wire)
    now = any_fake.clock.now
    assert [t.timeline_at for t in stored] == [now, now - 1, now - 2]
    with client_for(any_fake) as client:
        assert client.get("/v1/messages/m/tasks").json()["tasks"] == wire


def test_generated_tasks_agree_with_the_clock(any_fake: QStashTasksFake) -> None:
    any_fake.clock.advance(86_400_000)
    for task in any_fake.add("m", count=200):
        assert task.timeline_at <= any_fake.clock.now  # type: ignore[operator]
        assert task.completed_at <= any_fake.clock.now


def test_a_fake_made_by_hand_dates_generated_tasks_by_its_own_clock() -> None:
    fake = QStashTasksMock(start="2020-01-01T00:00:00Z")  # no fixture's clock, years back
    for task in fake.add("m", count=200):
        assert task.timeline_at <= fake.clock.now  # type: ignore[operator]
        assert task.completed_at <= fake.clock.now


def test_scripted_pages(any_fake: QStashTasksFake) -> None:
    a, b, c = make_tasks(3, message_id="m")
    any_fake.add_pages(
        "m", [{"cursor": 9, "tasks": [a]}, {"cursor": 4, "tasks": [b]}, {"tasks": [c]}]
    )
    with client_for(any_fake) as client:
        seen, _ = walk(client, "m")
    assert [t["taskId"] for t in seen] == [a.task_id, b.task_id, c.task_id]
    assert [call.scripted_page for call in any_fake.calls] == [1, 2, 3]


# -- async ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_client_with_pytest_asyncio(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("m", count=230)
    async with httpx.AsyncClient(
        base_url=any_fake.base_url, headers={"Authorization": f"Bearer {any_fake.token}"}
    ) as client:
        seen = await awalk(client, "m")
    assert [t["taskId"] for t in seen] == [t.task_id for t in stored]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_async_client_with_anyio(any_fake: QStashTasksFake, anyio_backend: str) -> None:
    stored = any_fake.add("m", count=120)
    async with httpx.AsyncClient(
        base_url=any_fake.base_url, headers={"Authorization": f"Bearer {any_fake.token}"}
    ) as client:
        seen = await awalk(client, "m")
    assert len(seen) == len(stored) == 120


# -- the official SDK ---------------------------------------------------------------


def sdk_walk(client: QStash, message_id: str) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        page = client.http.request(
            path=f"/v1/messages/{message_id}/tasks",
            method="GET",
            params={"cursor": str(cursor)} if cursor else None,
        )
        seen.extend(page["tasks"])
        cursor = page.get("cursor")
        if not cursor:
            return seen


def test_the_official_sdk_pages_through(
    any_fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    stored = any_fake.add("msg_123", count=250)
    client = sdk(any_fake.token, base_url=any_fake.base_url)
    seen = sdk_walk(client, "msg_123")
    assert [t["taskId"] for t in seen] == [t.task_id for t in stored]
    assert {call.token for call in any_fake.calls} == {any_fake.token}


@pytest.mark.asyncio
async def test_the_official_async_sdk_pages_through(
    any_fake: QStashTasksFake, async_sdk: Callable[..., AsyncQStash]
) -> None:
    any_fake.add("m", count=101)
    client = async_sdk(any_fake.token, base_url=any_fake.base_url)
    first = await client.http.request(path="/v1/messages/m/tasks", method="GET")
    rest = await client.http.request(
        path="/v1/messages/m/tasks", method="GET", params={"cursor": str(first["cursor"])}
    )
    assert len(first["tasks"]) + len(rest["tasks"]) == 101
    assert rest["cursor"] == 0


@pytest.mark.qstash_tasks(token="s3cret", assert_all_requests_served=False)
def test_the_sdk_sees_our_status_codes(
    any_fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    any_fake.add_message("m")
    good = sdk("s3cret", base_url=any_fake.base_url, retry=False)
    assert good.http.request(path="/v1/messages/m/tasks", method="GET") == {
        "cursor": 0,
        "tasks": [],
    }
    with pytest.raises(QStashError, match=r'status: 404, body: \{"error": "Message not found"\}'):
        good.http.request(path="/v1/messages/nope/tasks", method="GET")
    wrong = sdk("guess", base_url=any_fake.base_url, retry=False)
    with pytest.raises(QStashError, match=r'status: 401, body: \{"error": "invalid token"\}'):
        wrong.http.request(path="/v1/messages/m/tasks", method="GET")
    with pytest.raises(QStashError, match="status: 400"):
        good.http.request(path="/v1/messages/m/tasks", method="GET", params={"cursor": "-1"})
    assert [call.unserved_reason for call in any_fake.calls] == [
        None,
        "unknown_message",
        "unauthorized",
        "bad_cursor",
    ]


def test_the_sdk_reads_qstash_url(
    any_fake: QStashTasksFake, monkeypatch: pytest.MonkeyPatch, sdk: Callable[..., QStash]
) -> None:
    monkeypatch.setenv("QSTASH_URL", any_fake.base_url)
    any_fake.add("m", count=2)
    assert (
        len(sdk(any_fake.token).http.request(path="/v1/messages/m/tasks", method="GET")["tasks"])
        == 2
    )


# -- other hosts --------------------------------------------------------------------


@pytest.fixture
def local_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"real server"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_other_hosts_reach_a_real_server(qstash_tasks: QStashTasksMock, local_server: str) -> None:
    assert httpx.get(local_server + "/anything").text == "real server"
    assert qstash_tasks.calls == []


def test_other_hosts_reach_the_users_respx_routes(
    respx_mock: respx.MockRouter, qstash_tasks: QStashTasksMock
) -> None:
    route = respx_mock.get("https://api.example.com/hello").respond(json={"hi": 1})
    qstash_tasks.add("m", count=1)
    assert httpx.get("https://api.example.com/hello").json() == {"hi": 1}
    response = httpx.get(
        qstash_tasks.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer x"}
    )
    assert len(response.json()["tasks"]) == 1
    assert route.call_count == 1
    assert len(qstash_tasks.calls) == 1


@pytest.mark.parametrize("first", ["qstash_tasks", "respx_mock"])
def test_the_fake_answers_first_whatever_the_fixture_order(
    request: pytest.FixtureRequest, first: str
) -> None:
    # Set up in this order: a respx router started before the fake is still behind it.
    second = "respx_mock" if first == "qstash_tasks" else "qstash_tasks"
    started = {name: request.getfixturevalue(name) for name in (first, second)}
    qstash_tasks: QStashTasksMock = started["qstash_tasks"]
    respx_mock: respx.MockRouter = started["respx_mock"]
    respx_mock.route(host="qstash.upstash.io").respond(500)
    respx_mock.get("https://api.example.com/hello").respond(204)
    qstash_tasks.add("m", count=1)
    response = httpx.get(
        qstash_tasks.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 200
    assert httpx.get("https://api.example.com/hello").status_code == 204
    # The message API it serves is the fake's; paths it does not serve are left to the
    # other router.
    published = httpx.post(
        qstash_tasks.base_url + "/v2/publish/https://app.example.com/hook",
        headers={"Authorization": "Bearer x"},
    )
    assert (published.status_code, len(qstash_tasks.published)) == (200, 1)
    assert httpx.post(qstash_tasks.base_url + "/v2/nowhere/x").status_code == 500
    assert httpx.get(qstash_tasks.base_url + "/v1/messages/m").status_code == 500
    assert httpx.get(qstash_tasks.base_url + "/v2").status_code == 500


# -- loops ----------------------------------------------------------------------------


def test_a_client_that_never_stops_is_stopped() -> None:
    fake = QStashTasksMock(max_identical_requests=5).start()
    try:
        fake.add("m", count=1)
        attempts = 0
        with client_for(fake) as client, pytest.raises(QStashTasksLoopError) as raised:  # noqa: PT012
            while True:  # a buggy client: sends cursor=0 back forever
                attempts += 1
                try:
                    client.get("/v1/messages/m/tasks", params={"cursor": 0})
                except Exception:
                    continue
    finally:
        fake.stop()
    assert attempts == 6
    assert str(raised.value).startswith(
        "likely infinite loop: GET https://qstash.upstash.io/v1/messages/m/tasks?cursor=0 "
        "(cursor=0) was sent 6 times in a row and got the same 200 answer each time"
    )
    assert fake.calls[-1].exception is raised.value
    assert fake.calls[-1].response is None
    with pytest.raises(AssertionError, match="stopped a likely infinite loop"):
        fake.verify()


@pytest.mark.qstash_tasks(max_identical_requests=3)
def test_polling_while_the_state_changes_is_not_a_loop(any_fake: QStashTasksFake) -> None:
    any_fake.add_message("m")
    with client_for(any_fake) as client:
        for _ in range(10):
            client.get("/v1/messages/m/tasks")
            any_fake.clock.advance(1000)
    assert len(any_fake.calls) == 10


# -- outside pytest's fixture ------------------------------------------------------


def test_context_manager_fakes_the_default_base_url() -> None:
    with QStashTasksMock() as fake:
        assert fake.base_url == "https://qstash.upstash.io"
        fake.add("m", count=2)
        with client_for(fake) as client:
            assert len(client.get("/v1/messages/m/tasks").json()["tasks"]) == 2
    with pytest.raises(httpx.ConnectError):  # no longer intercepted: the real host is unreachable
        httpx.get("http://127.0.0.1:9/v1/messages/m/tasks")


@pytest.mark.asyncio
async def test_async_context_manager() -> None:
    async with QStashTasksMock(base_url="http://localhost:8080/qstash", token="t") as fake:
        fake.add("m", count=1)
        async with httpx.AsyncClient() as client:
            response = await client.get(
                "http://localhost:8080/qstash/v1/messages/m/tasks",
                headers={"Authorization": "Bearer t"},
            )
        assert response.status_code == 200


@pytest.mark.asyncio
async def test_an_error_in_the_async_with_block_is_not_masked_by_the_checks() -> None:
    fake = QStashTasksMock()
    fake.fail_next(503)  # never fired: a failed check on a clean exit

    async def block() -> None:
        async with fake:
            raise ValueError("the test's own error")

    with pytest.raises(ValueError, match="the test's own error"):
        await block()
    assert fake.faults[0].fired == 0


def test_context_manager_verifies_on_exit() -> None:
    with (
        pytest.raises(
            AssertionError, match=r"1 request\(s\) to https://qstash.upstash.io could not be served"
        ),
        QStashTasksMock() as fake,
    ):
        httpx.get(fake.base_url + "/v2/nowhere", headers={"Authorization": "Bearer x"})


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"base_url": "ftp://x"}, "http"),
        ({"base_url": "https://x?y=1"}, "query"),
        ({"token": ""}, "token must be a non-empty str"),
        ({"page_size": 0}, "page_size must be an int >= 1"),
        ({"end_cursor": 1}, "end_cursor must be 0 or None"),
        ({"max_identical_requests": True}, "max_identical_requests"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        QStashTasksMock(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("first", ["this", "other"])
def test_a_path_another_fake_does_not_serve_reaches_that_fake(first: str) -> None:
    # Two fakes, on two origins: each router passes the other's requests on to it,
    # whichever was started first, paths it does not serve too (it answers 404).
    this = QStashTasksMock(base_url="https://this.test")
    other = QStashTasksMock(base_url="http://localhost:8123")
    started = [this, other] if first == "this" else [other, this]
    for fake in started:
        fake.start()
    try:
        answer = httpx.get(
            "http://localhost:8123/v2/nowhere", headers={"Authorization": "Bearer t"}
        )
        assert answer.status_code == 404
        assert [call.url for call in other.calls] == ["http://localhost:8123/v2/nowhere"]
        assert this.calls == []
    finally:
        for fake in reversed(started):
            fake.assert_all_requests_served = False
            fake.stop()


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_a_head_answer_has_a_length_and_no_body(any_fake: QStashTasksFake, client: str) -> None:
    import requests

    any_fake.add("m", count=1)
    url, auth = any_fake.base_url + "/v1/messages/m/tasks", {"Authorization": "Bearer t"}
    answer = (
        httpx.head(url, headers=auth) if client == "httpx" else requests.head(url, headers=auth)
    )
    assert (answer.status_code, answer.headers["allow"], answer.content) == (405, "GET", b"")
    assert answer.headers["content-length"] == str(len(b'{"error": "method HEAD not allowed"}'))
    (call,) = any_fake.calls
    assert (call.method, call.status) == ("HEAD", 405)
    any_fake.assert_all_requests_served = False
