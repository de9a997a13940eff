"""No test reaches the real QStash; the fake shares a test with pytest-httpx; a failed
test that never reached the fake says so (pytester, wording checked)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_qstash_tasks import QStashTasksMock
from tests.helpers import forget_stops

pytest_plugins = ["pytester"]


def test_qstash_url_set_after_the_fixture_started_fails_at_once(
    pytester: pytest.Pytester,
) -> None:
    # The classic mistake: the fake took the default host when it started, then the
    # test pointed the official SDK elsewhere. The SDK retries any Exception for ~30 s.
    pytester.makepyfile(
        """
        import pytest
        from qstash import QStash
        from pytest_qstash_tasks import QStashTasksRealHostError

        def test_it(qstash_tasks, monkeypatch):
            qstash_tasks.add("msg_1", count=3)
            monkeypatch.setenv("QSTASH_URL", "https://qstash-us-east-1.upstash.io")
            client = QStash("token")
            try:
                client.message.get("msg_1")
            finally:
                client.http._client.close()

        def test_one_attempt_no_retries(qstash_tasks, monkeypatch):
            monkeypatch.setenv("QSTASH_URL", "https://qstash-us-east-1.upstash.io")
            client = QStash("token")
            with pytest.raises(QStashTasksRealHostError):
                client.message.get("msg_1")
            client.http._client.close()
            assert qstash_tasks.problems()[0].startswith(
                "stopped 1 request(s) to the real QStash"
            )
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-ra")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E  *pytest_qstash_tasks.QStashTasksRealHostError: GET "
            "https://qstash-us-east-1.upstash.io/v2/messages/msg_1 was stopped before it "
            "reached the real QStash (qstash-us-east-1.upstash.io): while this test's fake "
            "is active it answers at https://qstash.upstash.io, not at "
            "qstash-us-east-1.upstash.io. Point the client at the fake: *",
        ]
    )
    # The second test's teardown (an error) reports the one stopped request.
    result.stdout.fnmatch_lines(["ERROR *::test_one_attempt_no_retries*"])


def test_the_guard_fails_the_test_even_when_the_code_swallows_the_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import threading
        import httpx
        import requests

        def call_real_qstash():
            try:
                requests.get("https://qstash-us-east-1.upstash.io/v1/messages/m/tasks")
            except BaseException:
                pass  # a thread that swallows everything

        def test_it(qstash_tasks):
            thread = threading.Thread(target=call_real_qstash)
            thread.start()
            thread.join()

        def test_httpx_too(qstash_tasks_server):
            try:
                httpx.get("https://qstash-eu-central-1.upstash.io/v1/messages/m/tasks")
            except BaseException:
                pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "E  *AssertionError: qstash_tasks found 1 problem(s):",
            "E  *1. stopped 1 request(s) to the real QStash (QStashTasksRealHostError):",
            "E  *- GET https://qstash-us-east-1.upstash.io/v1/messages/m/tasks",
            "E  *GET https://qstash-us-east-1.upstash.io/v1/messages/m/tasks was stopped "
            "before it reached the real QStash (qstash-us-east-1.upstash.io): *",
            "E  *- CONNECT qstash-eu-central-1.upstash.io:443",
            "E  *a connection to qstash-eu-central-1.upstash.io:443 was stopped before it "
            "reached the real QStash (qstash-eu-central-1.upstash.io): *",
        ]
    )


def test_the_guard_is_switched_off_by_marker_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        qstash_tasks_guard_real_qstash = false
        """
    )
    pytester.makepyfile(
        """
        import httpx
        import pytest

        # Another mock answers the real host: with the guard off, the fake lets it.
        @pytest.mark.parametrize("fixture", ["qstash_tasks", "qstash_tasks_server"])
        def test_off_by_ini(request, fixture, respx_mock):
            fake = request.getfixturevalue(fixture)
            assert fake.guard_real_qstash is False
            respx_mock.get("https://qstash-us-east-1.upstash.io/v2/x").respond(json=1)
            assert httpx.get("https://qstash-us-east-1.upstash.io/v2/x").json() == 1

        @pytest.mark.qstash_tasks(guard_real_qstash=True)
        def test_on_by_marker(qstash_tasks, respx_mock):
            from pytest_qstash_tasks import QStashTasksRealHostError

            respx_mock.get("https://qstash-us-east-1.upstash.io/v2/x").respond(json=1)
            with pytest.raises(QStashTasksRealHostError):
                httpx.get("https://qstash-us-east-1.upstash.io/v2/x")
            qstash_tasks.guard_real_qstash = False
            assert httpx.get("https://qstash-us-east-1.upstash.io/v2/x").json() == 1
            qstash_tasks._calls.real_host.clear()
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


@pytest.mark.parametrize("order", ["httpx_mock, qstash_tasks", "qstash_tasks, httpx_mock"])
def test_pytest_httpx_and_the_fake_in_either_order(pytester: pytest.Pytester, order: str) -> None:
    pytester.makepyfile(
        f"""
        import httpx
        import pytest
        from pytest_qstash_tasks import QStashTasksRealHostError

        def test_sync({order}):
            httpx_mock.add_response(url="https://api.example.com/users", json=["ada"])
            qstash_tasks.add("msg_1", count=3)
            with httpx.Client(headers={{"Authorization": "Bearer t"}}) as client:
                assert client.get("https://api.example.com/users").json() == ["ada"]
                url = qstash_tasks.base_url + "/v1/messages/msg_1/tasks"
                assert len(client.get(url).json()["tasks"]) == 3
                with pytest.raises(QStashTasksRealHostError):
                    client.get("https://qstash-us-east-1.upstash.io/v1/messages/m/tasks")
            assert len(qstash_tasks.calls) == 1
            assert len(httpx_mock.get_requests()) == 1
            qstash_tasks._calls.real_host.clear()

        @pytest.mark.asyncio
        async def test_async({order}):
            httpx_mock.add_response(url="https://api.example.com/users", json=["ada"])
            qstash_tasks.add("msg_1", count=3)
            async with httpx.AsyncClient(headers={{"Authorization": "Bearer t"}}) as client:
                assert (await client.get("https://api.example.com/users")).json() == ["ada"]
                url = qstash_tasks.base_url + "/v1/messages/msg_1/tasks"
                assert len((await client.get(url)).json()["tasks"]) == 3
            assert len(qstash_tasks.calls) == 1
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_pytest_httpx_lets_the_server_through_when_told(pytester: pytest.Pytester) -> None:
    # pytest-httpx answers every httpx request of the test, the loopback server's too,
    # unless should_mock says otherwise (as the transports page shows).
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from pytest_qstash_tasks import QStashTasksRealHostError

        @pytest.mark.httpx_mock(should_mock=lambda request: request.url.host != "127.0.0.1")
        def test_it(qstash_tasks_server, httpx_mock):
            httpx_mock.add_response(url="https://api.example.com/users", json=["ada"])
            qstash_tasks_server.add("msg_1", count=3)
            with httpx.Client(headers={"Authorization": "Bearer t"}) as client:
                assert client.get("https://api.example.com/users").json() == ["ada"]
                url = qstash_tasks_server.base_url + "/v1/messages/msg_1/tasks"
                assert len(client.get(url).json()["tasks"]) == 3
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


@pytest.mark.parametrize("fixture", ["qstash_tasks", "qstash_tasks_server"])
@pytest.mark.asyncio
async def test_clients_the_fake_cannot_see_are_stopped_at_name_resolution(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    import urllib.request

    import aiohttp

    from pytest_qstash_tasks import QStashTasksRealHostError

    fake = request.getfixturevalue(fixture)
    url = "https://qstash-us-east-1.upstash.io/v1/messages/m/tasks"
    with pytest.raises(QStashTasksRealHostError, match="a connection to qstash-us-east-1"):
        urllib.request.urlopen(url, timeout=5)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(QStashTasksRealHostError, match=r"upstash\.io:443 was stopped"):
            await session.get(url)
    assert fake.problems()[0].startswith("stopped 2 request(s) to the real QStash")
    forget_stops(fake)


def test_a_failed_test_that_never_reached_the_fake_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_in_process(qstash_tasks):
            qstash_tasks.add("msg_1", count=3)
            qstash_tasks.add_message("msg_2")
            assert False, "the report was empty"

        def test_server(qstash_tasks_server):
            qstash_tasks_server.add("msg_1", count=3)
            assert False

        def test_no_messages(qstash_tasks):
            assert False

        def test_reached(qstash_tasks):
            import httpx

            qstash_tasks.add("msg_1", count=3)
            httpx.get(qstash_tasks.base_url + "/v1/messages/msg_1/tasks")
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=4)
    text = result.stdout.str()
    assert text.count("no request reached the fake -") == 2
    result.stdout.fnmatch_lines(
        [
            "*_ test_in_process _*",
            "*- qstash_tasks: no request reached the fake -*",
            "2 message(s) were registered ('msg_1', 'msg_2'), but no request reached the "
            "fake at https://qstash.upstash.io. It answers httpx (through respx) and requests "
            "(through responses) in this process. Other clients (aiohttp, urllib, another "
            "process or language) need the qstash_tasks_server fixture: point them at its "
            "base_url (its env holds QSTASH_URL and QSTASH_TOKEN).",
            "*_ test_server _*",
            "*- qstash_tasks: no request reached the fake -*",
            "1 message(s) were registered ('msg_1'), but no request reached the fake at "
            "http://127.0.0.1:*. It answers any HTTP client pointed at its base_url: set "
            "QSTASH_URL (see env) before the client is created, or pass the base URL to the "
            "client.",
        ]
    )


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_two_regions_two_fakes_each_guard_leaves_the_other_alone(client: str) -> None:
    import httpx
    import requests

    from pytest_qstash_tasks import QStashTasksMock, QStashTasksRealHostError

    get = httpx.get if client == "httpx" else requests.get
    eu = QStashTasksMock(base_url="https://qstash-eu-central-1.upstash.io")
    us = QStashTasksMock(base_url="https://qstash-us-east-1.upstash.io")
    auth = {"Authorization": "Bearer t"}
    with eu, us:
        eu.add("msg_eu", count=2)
        us.add("msg_us", count=3)
        assert (
            len(get(eu.base_url + "/v1/messages/msg_eu/tasks", headers=auth).json()["tasks"]) == 2
        )
        assert (
            len(get(us.base_url + "/v1/messages/msg_us/tasks", headers=auth).json()["tasks"]) == 3
        )
        # An unknown path on either host is still that fake's to answer (404), not the network's.
        assert get(us.base_url + "/v1/messages/msg_eu/tasks", headers=auth).status_code == 404
        with pytest.raises(QStashTasksRealHostError):
            get("https://qstash.upstash.io/v1/messages/msg_eu/tasks", headers=auth)
        us.assert_all_requests_served = False  # the 404 was asked for
        # Stopped once, by whichever fake saw it first: one report, not two.
        assert len(eu.problems()) + len(us.problems()) == 1
        forget_stops(eu)
        forget_stops(us)
    assert [c.message_id for c in eu.calls] == ["msg_eu"]
    assert [c.message_id for c in us.calls] == ["msg_us", "msg_eu"]


def test_a_second_fake_on_the_same_host_is_refused_naming_both() -> None:
    with QStashTasksMock() as first:
        second = QStashTasksMock(base_url="https://qstash.upstash.io/prefix")
        with pytest.raises(RuntimeError) as refused:
            second.start()
        assert str(refused.value) == (
            f"{second!r} cannot start: {first!r} already answers https://qstash.upstash.io "
            "in this process, and only one fake can. Stop it first, or give one of them "
            "another base_url."
        )
        with QStashTasksMock(base_url="https://qstash-us-east-1.upstash.io"):
            pass  # another host is fine
    with second:
        pass  # and the first one gone, the second may start


@pytest.mark.asyncio
async def test_a_client_the_fake_cannot_see_calling_its_own_host_is_told_so(
    qstash_tasks: QStashTasksMock,
) -> None:
    import urllib.request

    import aiohttp

    from pytest_qstash_tasks import QStashTasksRealHostError

    url = qstash_tasks.base_url + "/v1/messages/m/tasks"  # https://qstash.upstash.io
    async with aiohttp.ClientSession() as session:
        with pytest.raises(QStashTasksRealHostError) as raised:
            await session.get(url)
    with pytest.raises(QStashTasksRealHostError):
        urllib.request.urlopen(url, timeout=5)
    assert str(raised.value) == (
        "a connection to qstash.upstash.io:443 was stopped before it reached the real QStash "
        "(qstash.upstash.io): this test's fake answers https://qstash.upstash.io in this "
        "process, but only for the clients it intercepts, and this one is not among them. "
        "It answers httpx (through respx) and requests (through responses) in this process. "
        "Other clients (aiohttp, urllib, another process or language) need the "
        "qstash_tasks_server fixture: point them at its base_url (its env holds QSTASH_URL "
        "and QSTASH_TOKEN). (To let such requests through, use "
        "@pytest.mark.qstash_tasks(guard_real_qstash=False) or the ini option "
        "qstash_tasks_guard_real_qstash = false.)"
    )
    assert qstash_tasks.problems()[0].startswith("stopped 2 request(s) to the real QStash")
    forget_stops(qstash_tasks)


def test_the_unreached_hint_shows_when_the_only_requests_went_to_the_real_host(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import urllib.request

        def test_urllib(qstash_tasks):
            qstash_tasks.add("msg_1", count=3)
            try:
                urllib.request.urlopen(qstash_tasks.base_url + "/v1/messages/msg_1/tasks")
            except BaseException:
                pass
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- qstash_tasks -*",
            "*stopped 1 request(s) to the real QStash (QStashTasksRealHostError):",
            "  - CONNECT qstash.upstash.io:443",
            "*this test's fake answers https://qstash.upstash.io in this process, but only "
            "for the clients it intercepts, and this one is not among them.*",
            "*- qstash_tasks: no request reached the fake -*",
            "1 message(s) were registered ('msg_1'), but no request reached the fake at "
            "https://qstash.upstash.io. It answers httpx (through respx)*",
        ]
    )


@pytest.mark.asyncio
async def test_with_two_regions_a_stop_is_recorded_on_the_fake_of_that_host() -> None:
    import aiohttp

    from pytest_qstash_tasks import QStashTasksRealHostError

    eu = QStashTasksMock(base_url="https://qstash-eu-central-1.upstash.io")
    us = QStashTasksMock(base_url="https://qstash-us-east-1.upstash.io")
    with eu, us:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(QStashTasksRealHostError, match="this test's fake answers"):
                await session.get(eu.base_url + "/v1/messages/m/tasks")
        assert len(eu.problems()) == 1
        assert us.problems() == []
        forget_stops(eu)


def test_a_stop_goes_to_the_fake_started_last_not_a_longer_lived_one() -> None:
    import urllib.request

    from pytest_qstash_tasks import QStashTasksRealHostError

    with QStashTasksMock(base_url="https://qstash-eu-central-1.upstash.io") as module_fake:
        with QStashTasksMock(base_url="http://fake.test") as test_fake:
            with pytest.raises(QStashTasksRealHostError, match=r"it answers at http://fake\.test"):
                urllib.request.urlopen("https://qstash.upstash.io/v2/x", timeout=5)
            assert len(test_fake.problems()) == 1
            forget_stops(test_fake)
        assert module_fake.problems() == []


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Name resolution stubbed before any fake starts: every name is 127.0.0.1 (no lookup
    leaves this machine); returns the names that got past the guard, which wraps the
    stub it finds and puts it back when it leaves."""
    import socket

    names: list[str] = []

    def stub(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        names.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", stub)
    return names


@pytest.mark.parametrize(
    ("host", "guarded"),
    [
        ("qstash.upstash.io.", True),  # the fully qualified name
        ("QSTASH.UPSTASH.IO", True),
        ("qstash-ap-southeast-1.upstash.io", True),
        ("qstash.upstash.io.example.com", False),
        ("myqstash.upstash.io", False),
        ("qstash-eu.x.upstash.io", False),
        ("redis-12345.upstash.io", False),
        ("upstash.io", False),
        ("console.upstash.com", False),
    ],
)
def test_which_hosts_are_the_real_qstash(host: str, guarded: bool, resolved: list[str]) -> None:
    import socket

    from pytest_qstash_tasks import QStashTasksRealHostError

    with QStashTasksMock(base_url="http://fake.test") as fake:
        if guarded:
            with pytest.raises(QStashTasksRealHostError):
                socket.getaddrinfo(host, 443)
            forget_stops(fake)
        else:
            assert socket.getaddrinfo(host, 443)[0][4] == ("127.0.0.1", 443)
            assert fake.problems() == []
    assert resolved == ([] if guarded else [host])


def test_a_name_as_bytes_or_without_a_port_is_guarded_too(resolved: list[str]) -> None:
    import socket

    from pytest_qstash_tasks import QStashTasksRealHostError

    with QStashTasksMock(base_url="http://fake.test") as fake:
        with pytest.raises(QStashTasksRealHostError) as as_bytes:
            socket.getaddrinfo(b"qstash.upstash.io", 443)  # as some clients pass it
        with pytest.raises(QStashTasksRealHostError) as no_port:
            socket.getaddrinfo("qstash.upstash.io", None)
        forget_stops(fake)
    assert "a connection to qstash.upstash.io:443 " in str(as_bytes.value)
    assert "a connection to qstash.upstash.io " in str(no_port.value)
    assert resolved == []


def test_another_port_of_the_real_host_is_not_the_in_process_fake_s(
    resolved: list[str],
) -> None:
    import httpx

    from pytest_qstash_tasks import QStashTasksRealHostError

    # One fake answers https://qstash.upstash.io in-process; another guards. A request
    # to the real host on another port is neither fake's: it is stopped.
    with QStashTasksMock() as answering, QStashTasksMock(base_url="http://later.test") as later:
        url = "https://qstash.upstash.io:8443/v1/messages/m/tasks"
        with pytest.raises(QStashTasksRealHostError) as raised:
            httpx.get(url)
        # Stopped as a request, by the transport, before any name was looked up.
        assert str(raised.value).startswith(f"GET {url} was stopped before it reached")
        assert resolved == []
        forget_stops(answering)
        forget_stops(later)


def test_other_names_resolve_with_every_argument_kept() -> None:
    import socket

    with QStashTasksMock(base_url="http://fake.test"):
        positional = socket.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_DGRAM)
        keyword = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert {entry[1] for entry in positional} == {socket.SOCK_DGRAM}
    assert {entry[1] for entry in keyword} == {socket.SOCK_STREAM}


@pytest.mark.parametrize("name", ["qstash.upstash.io", "QStash.Upstash.IO."])
def test_a_stop_is_the_fake_s_that_answers_that_host(name: str, resolved: list[str]) -> None:
    import socket

    from pytest_qstash_tasks import QStashTasksRealHostError

    with QStashTasksMock() as answering, QStashTasksMock(base_url="http://later.test") as later:
        with pytest.raises(QStashTasksRealHostError) as raised:
            socket.getaddrinfo(name, 443)  # a client the in-process fake cannot see
        assert (
            "this test's fake answers https://qstash.upstash.io in this process, but only for "
            "the clients it intercepts"
        ) in str(raised.value)
        assert (len(answering.problems()), later.problems()) == (1, [])
        forget_stops(answering)


def test_a_module_fake_keeps_guarding_after_a_test_fake_stops() -> None:
    import urllib.request

    from pytest_qstash_tasks import QStashTasksRealHostError

    with QStashTasksMock(base_url="http://module.test") as module_fake:
        with QStashTasksMock(base_url="http://test.test"):
            pass
        with pytest.raises(QStashTasksRealHostError):
            urllib.request.urlopen("https://qstash.upstash.io/v2/x", timeout=5)
        assert len(module_fake.problems()) == 1
        forget_stops(module_fake)


@pytest.mark.asyncio
async def test_guard_real_qstash_false_lets_aiohttp_and_urllib_through(
    resolved: list[str],
) -> None:
    import urllib.error
    import urllib.request

    import aiohttp

    with QStashTasksMock(base_url="http://fake.test", guard_real_qstash=False) as fake:
        # Past the guard, the stub sends both to 127.0.0.1:1, where nothing listens.
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            urllib.request.urlopen("http://qstash.upstash.io:1/v2/x", timeout=5)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get("http://qstash-us-east-1.upstash.io:1/v2/x")
        assert fake.problems() == []
    assert resolved == ["qstash.upstash.io", "qstash-us-east-1.upstash.io"]


def test_the_fake_s_router_is_first_in_line_ahead_of_respx_mock(
    qstash_tasks: QStashTasksMock, respx_mock: Any
) -> None:
    import httpx

    respx_mock.get(url__startswith=qstash_tasks.base_url).respond(200, json={"from": "respx"})
    qstash_tasks.add("m", count=2)
    answer = httpx.get(
        qstash_tasks.base_url + "/v1/messages/m/tasks", headers={"Authorization": "Bearer t"}
    )
    assert len(answer.json()["tasks"]) == 2


def test_under_pytest_httpx_other_qstash_paths_go_to_httpx_mock(
    qstash_tasks: QStashTasksMock, httpx_mock: Any
) -> None:
    import httpx

    publish = qstash_tasks.base_url + "/v2/nowhere/https://example.com/hook"
    httpx_mock.add_response(url=publish, method="POST", json={"scheduleId": "scd_1"})
    qstash_tasks.add("msg_1", count=1)
    auth = {"Authorization": "Bearer t"}
    with httpx.Client(headers=auth) as client:
        assert client.post(publish).json() == {"scheduleId": "scd_1"}
        tasks = client.get(qstash_tasks.base_url + "/v1/messages/msg_1/tasks").json()["tasks"]
    assert len(tasks) == 1
    assert [call.message_id for call in qstash_tasks.calls] == ["msg_1"]


@pytest.mark.parametrize("make", [QStashTasksMock, "server"])
def test_a_second_start_of_a_running_fake_is_refused(make: Any) -> None:
    from pytest_qstash_tasks import QStashTasksServer

    fake = QStashTasksServer() if make == "server" else make()
    with fake:
        with pytest.raises(RuntimeError) as refused:
            fake.start()
        assert str(refused.value) == f"this {type(fake).__name__} is already started"


def test_the_real_host_message_says_where_the_fake_answers() -> None:
    import httpx

    from pytest_qstash_tasks import QStashTasksRealHostError

    with QStashTasksMock(base_url="http://fake.test") as fake:
        with pytest.raises(QStashTasksRealHostError) as raised:
            httpx.get("https://qstash.upstash.io/v2/x")
        forget_stops(fake)
    assert str(raised.value) == (
        "GET https://qstash.upstash.io/v2/x was stopped before it reached the real QStash "
        "(qstash.upstash.io): while this test's fake is active it answers at "
        "http://fake.test, not at qstash.upstash.io. Point the client at the fake: create it "
        "after the fixture starts with QSTASH_URL=http://fake.test set (the official SDK "
        "reads QSTASH_URL when the client is created), or pass the fake's base_url "
        "(QStash(token, base_url=...)). (To let such requests through, use "
        "QStashTasksMock(guard_real_qstash=False) or fake.guard_real_qstash = False.)"
    )


def test_the_guard_puts_back_the_resolver_it_found(resolved: list[str]) -> None:
    import socket

    found = socket.getaddrinfo
    with QStashTasksMock(base_url="http://fake.test"):
        assert socket.getaddrinfo is not found
    assert socket.getaddrinfo is found
