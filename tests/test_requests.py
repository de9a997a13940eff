"""``requests`` in the test's own process, answered by ``qstash_tasks`` through
``responses`` (the ``requests`` extra), side by side with the user's own mocks."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from pytest_qstash_tasks import QStashTasksMock, QStashTasksRealHostError
from tests.helpers import forget_stops, unserved, walk_with_requests

pytest_plugins = ["pytester"]

QSTASH = "https://qstash.upstash.io"
TASKS = QSTASH + "/v1/messages/{}/tasks"
AUTH = {"Authorization": "Bearer t"}


def walk(session: Any, message_id: str, base_url: str = QSTASH) -> list[dict[str, Any]]:
    """Follow the cursors with ``requests``."""
    return walk_with_requests(session, base_url, message_id, AUTH)


def test_requests_pages_through_tasks_added_to_the_fixture(qstash_tasks: QStashTasksMock) -> None:
    added = qstash_tasks.add("msg_1", count=250)
    with requests.Session() as session:
        seen = walk(session, "msg_1")
    assert [task["taskId"] for task in seen] == [task.task_id for task in added]
    qstash_tasks.assert_all_pages_fetched("msg_1")
    first = qstash_tasks.calls[0]
    assert isinstance(first.native_request, requests.PreparedRequest)
    assert (first.request.method, str(first.request.url)) == ("GET", TASKS.format("msg_1"))
    assert first.body == b""  # a GET sends none
    assert first.response is not None
    assert first.response.json()["cursor"] == first.next_cursor


def test_requests_and_httpx_share_one_fake(qstash_tasks: QStashTasksMock) -> None:
    import httpx

    qstash_tasks.add("msg_1", count=3)
    by_requests = requests.get(TASKS.format("msg_1"), headers=AUTH).json()
    by_httpx = httpx.get(TASKS.format("msg_1"), headers=AUTH).json()
    assert by_requests == by_httpx
    assert len(qstash_tasks.calls) == 2


def test_errors_headers_and_bodies_reach_requests_as_sent(qstash_tasks: QStashTasksMock) -> None:
    qstash_tasks.add("msg_1", count=1)
    unauthorized = requests.get(TASKS.format("msg_1"))
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"] == "application/json"
    assert "error" in unauthorized.json()
    qstash_tasks.rate_limit_next()
    limited = requests.get(TASKS.format("msg_1"), headers=AUTH)
    assert limited.status_code == 429
    assert limited.headers["Burst-RateLimit-Limit"] == "100"
    assert requests.get(TASKS.format("msg_1"), headers=AUTH).status_code == 200
    qstash_tasks.assert_all_requests_served = False  # the 401 was the point


@pytest.mark.parametrize(
    ("planned", "raised"),
    [
        ("httpx.ConnectError", requests.ConnectionError),
        ("httpx.ConnectTimeout", requests.ConnectTimeout),
        ("httpx.ReadTimeout", requests.ReadTimeout),
        ("requests.exceptions.ChunkedEncodingError", requests.exceptions.ChunkedEncodingError),
    ],
)
def test_raise_next_raises_what_requests_would(
    qstash_tasks: QStashTasksMock, planned: str, raised: type[Exception]
) -> None:
    import httpx  # noqa: F401  (named in the parameters)

    qstash_tasks.add("msg_1", count=1)
    qstash_tasks.raise_next(eval(planned))
    with pytest.raises(raised) as caught:
        requests.get(TASKS.format("msg_1"), headers=AUTH)
    assert caught.value.request.url == TASKS.format("msg_1")
    if planned.startswith("httpx."):  # made from the planned error, which it says and keeps
        cause = caught.value.__cause__
        assert type(cause).__name__ == planned.rsplit(".", 1)[1]
        assert str(caught.value) == str(cause)
    assert requests.get(TASKS.format("msg_1"), headers=AUTH).ok


def test_a_streamed_body_reaches_the_fake_whole(qstash_tasks: QStashTasksMock) -> None:
    url = qstash_tasks.base_url + "/v2/publish/https://app.example.com/hook"
    for body in (iter([b"chunk ", "by chunk"]), io.BytesIO(b"chunk by chunk")):
        assert requests.post(url, data=body, headers=AUTH).status_code == 200
    assert [m.body for m in qstash_tasks.published] == [b"chunk by chunk"] * 2


def test_requests_gets_a_whole_response(qstash_tasks: QStashTasksMock) -> None:
    qstash_tasks.add("msg_1", count=1)
    answer = requests.get(TASKS.format("msg_1"), headers={"Authorization": b"Bearer t"})
    assert (answer.status_code, answer.reason) == (200, "OK")
    assert answer.headers["Content-Length"] == str(len(answer.content))
    assert (answer.request.method, answer.url) == ("GET", TASKS.format("msg_1"))
    refused = requests.post(TASKS.format("msg_1"), headers=AUTH, data="x")
    assert (refused.status_code, refused.reason) == (405, "Method Not Allowed")
    assert qstash_tasks.calls[1].body == b"x"
    qstash_tasks.assert_all_requests_served = False


@pytest.mark.parametrize("timeout", [0.05, (5, 0.05)], ids=["seconds", "(connect, read)"])
def test_a_held_answer_meets_the_read_timeout_requests_sent(
    qstash_tasks: QStashTasksMock, timeout: Any
) -> None:
    qstash_tasks.add("msg_1", count=1)
    qstash_tasks.delay_next(5)
    with pytest.raises(requests.ReadTimeout) as caught:
        requests.get(TASKS.format("msg_1"), headers=AUTH, timeout=timeout)
    assert caught.value.request.url == TASKS.format("msg_1")
    qstash_tasks.delay_next(0.05)
    assert requests.get(TASKS.format("msg_1"), headers=AUTH, timeout=(5, None)).ok


@pytest.mark.parametrize("timeout", [(5,), (1, 2, 3)])
def test_a_timeout_requests_refuses_is_refused_as_requests_refuses_it(
    qstash_tasks: QStashTasksMock, timeout: tuple[float, ...]
) -> None:
    qstash_tasks.stop()
    try:
        with pytest.raises(ValueError) as without_the_fake:  # noqa: PT011
            requests.get("http://127.0.0.1:9/", timeout=timeout)  # refused before connecting
    finally:
        qstash_tasks.start()
    qstash_tasks.add("msg_1", count=1)
    with pytest.raises(ValueError) as with_the_fake:  # noqa: PT011
        requests.get(TASKS.format("msg_1"), headers=AUTH, timeout=timeout)
    assert str(with_the_fake.value) == str(without_the_fake.value)
    assert qstash_tasks.calls == []
    qstash_tasks.assert_all_pages_fetched_on_exit = False


def test_a_body_requests_cannot_send_is_refused_as_requests_refuses_it(
    qstash_tasks: QStashTasksMock,
) -> None:
    qstash_tasks.stop()
    try:
        with pytest.raises(TypeError) as without_the_fake:
            requests.post("http://127.0.0.1:9/", data=5)  # refused before connecting
    finally:
        qstash_tasks.start()
    with pytest.raises(TypeError) as with_the_fake:
        requests.post(
            qstash_tasks.base_url + "/v2/publish/https://app.example.com/hook", data=5, headers=AUTH
        )
    assert str(with_the_fake.value) == str(without_the_fake.value)
    assert "Instead was 5" in str(with_the_fake.value)
    assert qstash_tasks.published == []


def test_a_path_the_fake_does_not_serve_gets_its_404_when_no_mock_would_take_it() -> None:
    with QStashTasksMock(assert_all_requests_served=False) as fake:
        missed = requests.get(QSTASH + "/v2/chat/x", headers=AUTH)
    assert (missed.status_code, missed.json()) == (
        404,
        {"error": unserved("GET", "/v2/chat/x")},
    )
    assert [(call.method, call.url, call.status) for call in fake.calls] == [
        ("GET", QSTASH + "/v2/chat/x", 404)
    ]


def test_a_fake_on_a_port_of_its_own_takes_that_port_only() -> None:
    fake = QStashTasksMock(base_url="http://qstash.test:8080").start()
    try:
        fake.add("msg_1", count=1)
        answer = requests.get("http://qstash.test:8080/v1/messages/msg_1/tasks", headers=AUTH)
        assert answer.json()["tasks"][0]["messageId"] == "msg_1"
        with pytest.raises(requests.ConnectionError):
            requests.get("http://qstash.test:8081/v1/messages/msg_1/tasks", timeout=1)
    finally:
        fake.stop()


def test_a_looping_requests_client_is_stopped(qstash_tasks: QStashTasksMock) -> None:
    from pytest_qstash_tasks import QStashTasksLoopError

    qstash_tasks.add("msg_1", count=1)
    qstash_tasks.max_identical_requests = 3
    for _ in range(3):
        assert requests.get(TASKS.format("msg_1"), headers=AUTH).ok
    with pytest.raises(QStashTasksLoopError):
        requests.get(TASKS.format("msg_1"), headers=AUTH)
    assert len(qstash_tasks.calls) == 4
    forget_stops(qstash_tasks)  # stopping it was the point


def test_a_users_mock_started_earlier_answers_its_own_hosts(
    qstash_tasks: QStashTasksMock,
) -> None:
    qstash_tasks.stop()  # restart the fake on top of a mock started first
    with responses.RequestsMock() as earlier:
        earlier.add(responses.GET, "https://api.example.com/users", json=["ada"])
        earlier.add(responses.POST, "https://qstash.upstash.io/v2/nowhere/x", json={"id": 1})
        qstash_tasks.start()
        qstash_tasks.add("msg_1", count=2)
        assert requests.get("https://api.example.com/users").json() == ["ada"]
        # The rest of QStash stays the earlier mock's: the fake takes its endpoint only.
        assert requests.post("https://qstash.upstash.io/v2/nowhere/x").json() == {"id": 1}
        assert len(walk(requests, "msg_1")) == 2
        assert len(earlier.calls) == 2
        qstash_tasks.stop()
        # Stopped, the fake leaves the earlier mock as it found it: its routes only.
        assert len(earlier.registered()) == 2
        with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
            requests.get(TASKS.format("msg_1"), headers=AUTH)
    assert [call.message_id for call in qstash_tasks.calls] == ["msg_1"]


def test_a_users_mock_started_later_answers_its_hosts_and_the_fake_its_own(
    qstash_tasks: QStashTasksMock,
) -> None:
    qstash_tasks.add("msg_1", count=2)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as later:
        later.add(responses.GET, "https://api.example.com/users", json=["ada"])
        assert requests.get("https://api.example.com/users").json() == ["ada"]
        assert len(walk(requests, "msg_1")) == 2
        # Unmatched hosts are the user's mock's to refuse, as without the fake.
        with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
            requests.get("https://elsewhere.example.com/")
        # So are QStash's paths the fake does not serve: the user's mock fakes the rest.
        with pytest.raises(
            requests.ConnectionError, match="Connection refused by Responses"
        ) as refused:
            requests.get("https://qstash.upstash.io/v2/chat/x", headers=AUTH)
        # The fake's route, as the user's mock lists it among its own.
        fakes = f"- GET {re.compile(re.escape(QSTASH) + '/.*')} not for pytest-qstash-tasks' fake\n"
        assert fakes in str(refused.value)
        assert len(later.calls) == 4  # users, the fake's page, the refused ones
    # (It stopped without "Not all requests have been executed": the fake's route left
    # it first.)
    assert len(walk(requests, "msg_1")) == 2  # the fake goes on after the user's mock


def test_a_users_mock_that_never_calls_the_fake_stops_without_a_complaint(
    qstash_tasks: QStashTasksMock,
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as later:
        later.add(responses.GET, "https://api.example.com/users", json=["ada"])
        assert len(later.registered()) == 2  # the user's route, and the fake's
        assert requests.get("https://api.example.com/users").json() == ["ada"]
    # Its stop found its own route fired: the fake's, never fired, had left it first.
    qstash_tasks.assert_not_called()


def test_a_users_mock_still_reports_its_unfired_routes_when_it_stops(
    qstash_tasks: QStashTasksMock,
) -> None:
    later = responses.RequestsMock(assert_all_requests_are_fired=True)
    later.start()
    later.add(responses.GET, "https://api.example.com/never", json=[])
    with pytest.raises(AssertionError, match="Not all requests have been executed"):
        later.stop()  # as responses does without the fake
    later.reset()


def test_a_users_mock_stopped_without_its_assertion_skips_it(
    qstash_tasks: QStashTasksMock,
) -> None:
    later = responses.RequestsMock(assert_all_requests_are_fired=True)
    later.start()
    later.add(responses.GET, "https://api.example.com/never", json=[])
    later.stop(allow_assert=False)  # as responses' __exit__ does when the test raised
    later.reset()


def test_a_users_mock_started_twice_is_joined_once(qstash_tasks: QStashTasksMock) -> None:
    later = responses.RequestsMock(assert_all_requests_are_fired=True)
    later.start()
    later.start()  # a no-op for responses
    try:
        assert len(later.registered()) == 1  # the fake's route, once
    finally:
        later.stop()
        later.reset()


@responses.activate
def test_responses_activate_and_the_fixture_together(qstash_tasks: QStashTasksMock) -> None:
    responses.add(responses.GET, "https://api.example.com/users", json=["ada"])
    qstash_tasks.add("msg_1", count=150)
    assert requests.get("https://api.example.com/users").json() == ["ada"]
    assert len(walk(requests, "msg_1")) == 150
    qstash_tasks.assert_all_pages_fetched("msg_1")


@responses.activate(registry=OrderedRegistry)
def test_an_ordered_registry_is_left_alone(qstash_tasks: QStashTasksMock) -> None:
    responses.add(responses.GET, "https://api.example.com/a", json=1)
    responses.add(responses.GET, "https://api.example.com/b", json=2)
    qstash_tasks.add("msg_1", count=1)
    assert [m.url for m in responses.registered()] == [
        "https://api.example.com/a",
        "https://api.example.com/b",
    ]
    assert requests.get("https://api.example.com/a").json() == 1
    assert requests.get("https://api.example.com/b").json() == 2
    # An ordered registry answers in its own order only, so the fake does not join it.
    with pytest.raises(requests.ConnectionError):
        requests.get(TASKS.format("msg_1"), headers=AUTH)
    qstash_tasks.assert_not_called()


def test_the_guard_stops_requests_to_the_real_qstash_at_once(
    qstash_tasks: QStashTasksMock,
) -> None:
    with pytest.raises(QStashTasksRealHostError, match=r"qstash-us-east-1\.upstash\.io"):
        requests.get("https://qstash-us-east-1.upstash.io/v1/messages/m/tasks", headers=AUTH)
    assert qstash_tasks.problems()[0].startswith("stopped 1 request(s) to the real QStash")
    forget_stops(qstash_tasks)  # the test of the guard, not a mistake


def test_hand_made_fakes_stop_cleanly_and_leave_requests_as_they_were() -> None:
    from requests.adapters import HTTPAdapter

    original = HTTPAdapter.send
    start, stop = responses.RequestsMock.start, responses.RequestsMock.stop
    with QStashTasksMock(base_url="http://fake.test") as fake:
        fake.add("m", count=1)
        assert HTTPAdapter.send is not original
        assert requests.get("http://fake.test/v1/messages/m/tasks", headers=AUTH).ok
    assert HTTPAdapter.send is original
    assert (responses.RequestsMock.start, responses.RequestsMock.stop) == (start, stop)


def test_without_the_extra_nothing_of_requests_is_patched(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys

        sys.modules["responses"] = None  # as if the requests extra were not installed
        """
    )
    pytester.makepyfile(
        """
        import httpx
        import requests
        from requests.adapters import HTTPAdapter

        def test_it(qstash_tasks):
            assert HTTPAdapter.send.__module__ == "requests.adapters"
            qstash_tasks.add("m", count=1)
            url = qstash_tasks.base_url + "/v1/messages/m/tasks"
            assert httpx.get(url, headers={"Authorization": "Bearer t"}).status_code == 200

        def test_the_hint_names_the_extra(qstash_tasks):
            qstash_tasks.add("m", count=1)
            assert False
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- qstash_tasks: no request reached the fake -*",
            "1 message(s) were registered ('m'), but no request reached the fake at "
            "https://qstash.upstash.io. It answers httpx (through respx) in this process; "
            'for requests, install the requests extra (pip install "pytest-qstash-tasks'
            '[requests]"). Other clients (aiohttp, urllib, another process or language) '
            "need the qstash_tasks_server fixture: point them at its base_url (its env holds "
            "QSTASH_URL and QSTASH_TOKEN).",
        ]
    )


def test_the_hint_names_the_extra_when_requests_is_missing(pytester: pytest.Pytester) -> None:
    # The subprocess test above has no requests to import; this one runs in this process.
    pytester.makepyfile(
        """
        from pytest_qstash_tasks._transports import in_process

        def test_the_hint_names_the_extra(qstash_tasks, monkeypatch):
            monkeypatch.setattr(in_process, "requests_supported", lambda: False)
            qstash_tasks.add("m", count=1)
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- qstash_tasks: no request reached the fake -*"])
    assert (
        " It answers httpx (through respx) in this process; for requests, install the "
        'requests extra (pip install "pytest-qstash-tasks[requests]"). Other clients '
    ) in result.stdout.str()


def test_both_fixtures_in_one_test_each_answer_their_own(
    qstash_tasks: QStashTasksMock, qstash_tasks_server: Any
) -> None:
    import httpx

    qstash_tasks.add("msg_1", count=3)
    qstash_tasks_server.add("msg_1", count=2)
    server_tasks = qstash_tasks_server.base_url + "/v1/messages/{}/tasks"
    with responses.RequestsMock() as later:  # and a user's mock started after both
        later.add(responses.GET, "https://api.example.com/users", json=["ada"])
        assert requests.get("https://api.example.com/users").json() == ["ada"]
        for get in (requests.get, httpx.get):
            assert len(get(TASKS.format("msg_1"), headers=AUTH).json()["tasks"]) == 3
        later.add_passthru(qstash_tasks_server.base_url)
        assert len(walk(requests, "msg_1", qstash_tasks_server.base_url)) == 2
    assert len(httpx.get(server_tasks.format("msg_1"), headers=AUTH).json()["tasks"]) == 2
    assert len(qstash_tasks.calls) == 2
    assert len(qstash_tasks_server.calls) == 2


def test_a_restarted_fake_keeps_one_responses_mock_and_it_does_not_grow() -> None:
    fake = QStashTasksMock()
    fake.add_message("m")
    kept = []
    for _ in range(3):
        with fake:
            assert requests.get(TASKS.format("m"), headers=AUTH, timeout=5).status_code == 200
        interceptor = fake._in_process._interceptors[-1]
        own = interceptor._own[1]  # type: ignore[attr-defined]
        kept.append(own)
        assert len(own.calls) == 0  # reset at each stop: nothing piles up across tests
    assert kept[0] is kept[1] is kept[2]
    assert len(fake.calls) == 3
