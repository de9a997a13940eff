"""Fault injection through real clients: httpx sync and async, and the official SDK."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
from collections.abc import Callable

import httpx
import pytest
import requests
from qstash import AsyncQStash, QStash
from qstash.errors import DailyMessageLimitExceededError, QStashError, RateLimitExceededError

from pytest_qstash_tasks import DEFAULT_START_MS, Fault, QStashTasksFake, QStashTasksMock
from tests.helpers import async_client_for, client_for, in_process_only

TASKS = "/v1/messages/msg_1/tasks"
async_test = pytest.mark.asyncio


@pytest.fixture
def fake(any_fake: QStashTasksFake) -> QStashTasksFake:
    any_fake.add("msg_1", count=250, timeline_at=lambda i: 100_000 - i)
    return any_fake


def test_fail_next_then_serve_normally(fake: QStashTasksFake) -> None:
    fault = fake.fail_next(503, times=2)
    with client_for(fake) as client:
        statuses = [client.get(TASKS).status_code for _ in range(3)]
        failed = fake.calls[0].response
    assert statuses == [503, 503, 200]
    assert failed is not None
    assert failed.json() == {"error": "Service Unavailable"}
    assert failed.headers["content-type"] == "application/json"
    assert (fault.fired, fault.remaining) == (2, 0)
    assert [c.fault for c in fake.calls] == ["fail_next(503, times=2)"] * 2 + [None]
    assert [c.served for c in fake.calls] == [False, False, True]


def test_fail_next_with_error_text_headers_and_a_target(fake: QStashTasksFake) -> None:
    fake.fail_next(
        500, error="boom", headers={"Retry-After": "1"}, message_id="msg_1", cursor=99_900
    )
    with client_for(fake) as client:
        assert client.get(TASKS).status_code == 200  # no cursor: not the target
        answer = client.get(TASKS, params={"cursor": 99_900})
        assert (answer.status_code, answer.json(), answer.headers["retry-after"]) == (
            500,
            {"error": "boom"},
            "1",
        )
        assert client.get(TASKS, params={"cursor": 99_900}).status_code == 200


def test_a_fault_for_another_message_leaves_this_one_alone(fake: QStashTasksFake) -> None:
    fake.add("msg_2", count=1)
    fault = fake.fail_next(500, message_id="msg_2")
    with client_for(fake) as client:
        assert client.get(TASKS).status_code == 200
        assert client.get("/v1/messages/msg_2/tasks").status_code == 500
    assert fault.fired == 1


def test_the_nth_page(fake: QStashTasksFake) -> None:
    fake.fail_next(502, page=3)
    with client_for(fake) as client:
        cursor = None
        got = []
        while True:
            answer = client.get(TASKS, params={"cursor": cursor} if cursor else {})
            got.append(answer.status_code)
            if answer.status_code != 200:
                continue  # retry the same page
            cursor = answer.json()["cursor"]
            if not cursor:
                break
    assert got == [200, 200, 502, 200]
    fake.assert_all_pages_fetched("msg_1")


@in_process_only
def test_faults_compose_into_a_sequence(fake: QStashTasksFake) -> None:
    fake.fail_next(500)
    fake.rate_limit_next()
    fake.raise_next(httpx.ReadTimeout)
    with client_for(fake) as client:
        assert client.get(TASKS).status_code == 500
        assert client.get(TASKS).status_code == 429
        with pytest.raises(
            httpx.ReadTimeout, match=r"ReadTimeout injected by qstash_tasks\.raise_next"
        ):
            client.get(TASKS)
        assert client.get(TASKS).status_code == 200
    assert [c.status for c in fake.calls] == [500, 429, None, 200]
    assert isinstance(fake.calls[2].exception, httpx.ReadTimeout)
    assert fake.calls[2].response is None
    assert "raised ReadTimeout [raise_next(ReadTimeout)]" in fake.calls[2].describe()


@in_process_only
@pytest.mark.parametrize(
    "exception",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError],
)
def test_transport_errors_as_classes_carry_the_request(
    fake: QStashTasksFake, exception: type[httpx.TransportError]
) -> None:
    fake.raise_next(exception)
    with client_for(fake) as client, pytest.raises(exception) as caught:
        client.get(TASKS)
    assert caught.value.request.url.path == TASKS


@in_process_only
def test_an_exception_instance_is_raised_afresh_each_time(fake: QStashTasksFake) -> None:
    fake.raise_next(httpx.ConnectError("refused"), times=2)
    with client_for(fake) as client:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError, match="refused") as caught:
                client.get(TASKS)
            assert caught.value.request.url.path == TASKS
    first, second = (c.exception for c in fake.calls)
    assert first is not second


def test_the_sdk_raises_its_rate_limit_errors_with_the_values(
    fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    fake.rate_limit_next(limit=50, reset=1_767_225_601)
    fake.rate_limit_next(daily=True, remaining=0)
    client = sdk(fake.token, base_url=fake.base_url, retry=False)
    with pytest.raises(RateLimitExceededError) as burst:
        client.http.request(path=TASKS, method="GET")
    assert (burst.value.limit, burst.value.remaining, burst.value.reset) == (
        "50",
        "0",
        "1767225601",
    )
    with pytest.raises(DailyMessageLimitExceededError) as daily:
        client.http.request(path=TASKS, method="GET")
    midnight = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc).timestamp()
    assert (daily.value.limit, daily.value.remaining, daily.value.reset) == (
        "1000",
        "0",
        str(int(midnight)),
    )
    assert client.http.request(path=TASKS, method="GET")["tasks"]


def test_burst_reset_follows_the_fake_clock(fake: QStashTasksFake) -> None:
    fake.clock.advance(dt.timedelta(seconds=10, milliseconds=500))
    fake.rate_limit_next()
    with client_for(fake) as client:
        answer = client.get(TASKS)
    # 2026-01-01T00:00:10.5Z: the burst window ends at the next whole second
    assert answer.headers["Burst-RateLimit-Reset"] == str(1_767_225_611)
    assert answer.headers["Burst-RateLimit-Limit"] == "100"
    assert answer.headers["Burst-RateLimit-Remaining"] == "0"
    assert answer.json() == {"error": "burst rate limit exceeded"}


def test_the_sdk_sees_fail_next_as_qstash_error(
    fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    fake.fail_next(500, error="internal")
    client = sdk(fake.token, base_url=fake.base_url, retry=False)
    with pytest.raises(
        QStashError, match=re.escape('Request failed with status: 500, body: {"error": "internal"}')
    ):
        client.http.request(path=TASKS, method="GET")


def test_the_sdk_retries_through_a_transport_error(
    fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    fake.raise_next(httpx.ConnectError, times=2)
    client = sdk(fake.token, base_url=fake.base_url, retry={"retries": 2, "backoff": lambda _: 0})
    assert len(client.http.request(path=TASKS, method="GET")["tasks"]) == 100
    assert [c.fault is not None for c in fake.calls] == [True, True, False]


@async_test
async def test_the_async_sdk_and_faults(
    fake: QStashTasksFake, async_sdk: Callable[..., AsyncQStash]
) -> None:
    fake.rate_limit_next()
    client = async_sdk(fake.token, base_url=fake.base_url, retry=False)
    with pytest.raises(RateLimitExceededError):
        await client.http.request(path=TASKS, method="GET")
    assert (await client.http.request(path=TASKS, method="GET"))["tasks"]


@async_test
async def test_async_delay_does_not_block_the_event_loop(fake: QStashTasksFake) -> None:
    fake.delay_next(0.3)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    async with async_client_for(fake) as client:
        started = time.perf_counter()
        answer = await client.get(TASKS)
        waited = time.perf_counter() - started
    ticker.cancel()
    assert answer.status_code == 200
    assert waited >= 0.3
    assert ticks >= 5  # the loop ran while the response was held back
    assert fake.calls[0].fault == "delay_next(0.3)"
    assert fake.calls[0].served


@in_process_only
@async_test
async def test_async_delay_then_raise(fake: QStashTasksFake) -> None:
    fake.raise_next(httpx.ReadTimeout, delay=0.05)
    async with async_client_for(fake) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(TASKS)


def test_sync_delay(fake: QStashTasksFake) -> None:
    fake.fail_next(503, delay=0.2)
    with client_for(fake) as client:
        started = time.perf_counter()
        assert client.get(TASKS).status_code == 503
    assert time.perf_counter() - started >= 0.2


@async_test
async def test_concurrent_requests_take_each_fault_exactly_once(fake: QStashTasksFake) -> None:
    fake.fail_next(500, times=7)
    fake.rate_limit_next(times=5)
    async with async_client_for(fake) as client:
        answers = await asyncio.gather(*(client.get(TASKS) for _ in range(100)))
    statuses = [a.status_code for a in answers]
    assert (statuses.count(500), statuses.count(429), statuses.count(200)) == (7, 5, 88)
    assert len(fake.calls) == 100


def test_threads_take_each_fault_exactly_once(fake: QStashTasksFake) -> None:
    fake.fail_next(503, times=10)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with client_for(fake) as client:
            for _ in range(10):
                status = client.get(TASKS).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (statuses.count(503), statuses.count(200)) == (10, 70)


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (lambda f: f.fail_next(200), "fail_next() takes an HTTP error status 400-599, got 200"),
        (lambda f: f.fail_next(600), "400-599, got 600"),
        (lambda f: f.fail_next("500"), "400-599, got '500'"),
        (lambda f: f.fail_next(500, times=0), "times must be an int >= 1, got 0"),
        (lambda f: f.fail_next(500, times=True), "times must be an int >= 1, got True"),
        (lambda f: f.fail_next(500, page=0), "page must be an int >= 1"),
        (lambda f: f.fail_next(500, cursor=-1), "cursor must be an int >= 0, None"),
        (lambda f: f.fail_next(500, message_id=""), "message_id must be a non-empty str"),
        (lambda f: f.fail_next(500, delay=-1), "delay must be a number of seconds >= 0"),
        (lambda f: f.fail_next(500, headers={"a": 1}), "headers must be a dict of str to str"),
        (lambda f: f.raise_next("boom"), "raise_next() takes an exception class or instance"),
        (lambda f: f.raise_next(int), "raise_next() takes an exception class or instance"),
        (lambda f: f.raise_next(KeyboardInterrupt), "raise_next() takes an exception class"),
        (lambda f: f.rate_limit_next(limit=-1), "limit must be an int >= 0"),
        (lambda f: f.rate_limit_next(times=0), "times must be an int >= 1"),
        (lambda f: f.delay_next(0), "delay_next() takes seconds > 0"),
    ],
)
def test_bad_fault_arguments_are_refused_at_once(
    qstash_tasks: QStashTasksMock, call: object, complaint: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=_escape(complaint)):
        call(qstash_tasks)  # type: ignore[operator]
    assert qstash_tasks.faults == []


def test_an_exception_class_that_cannot_be_built_is_refused(qstash_tasks: QStashTasksMock) -> None:
    class Picky(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(a, b)

    with pytest.raises(TypeError, match="could not build Picky"):
        qstash_tasks.raise_next(Picky)
    qstash_tasks.raise_next(Picky(1, 2))
    qstash_tasks.assert_all_faults_triggered = False


def _escape(text: str) -> str:
    return re.escape(text)


@in_process_only
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_delay_under_anyio_backends(fake: QStashTasksFake, anyio_backend: str) -> None:
    fake.delay_next(0.05)
    fake.raise_next(httpx.ConnectTimeout, delay=0.05)
    async with async_client_for(fake) as client:
        assert (await client.get(TASKS)).status_code == 200
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(TASKS)


@in_process_only
def test_a_delay_past_the_read_timeout_is_a_read_timeout(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.delay_next(5, times=3)
    url = any_fake.base_url + "/v1/messages/m/tasks"
    auth = {"Authorization": "Bearer t"}
    with pytest.raises(
        httpx.ReadTimeout, match=r"past the client's read timeout of 0\.05 s"
    ) as raised:
        httpx.get(url, headers=auth, timeout=httpx.Timeout(10, read=0.05))
    assert raised.value.request.url == url  # as httpx's own timeouts carry it
    with pytest.raises(requests.ReadTimeout, match="held back 5 s"):
        requests.get(url, headers=auth, timeout=(10, 0.05))
    started = time.monotonic()  # (both clients warm: no import in the time)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, headers=auth, timeout=httpx.Timeout(10, read=0.3))
    assert time.monotonic() - started >= 0.3  # the client waited its timeout out
    assert [call.action for call in any_fake.calls] == ["hold", "hold", "hold"]
    assert httpx.get(url, headers=auth, timeout=0.05).status_code == 200  # no delay left
    # A delay of exactly the read timeout is answered, as the timeout is "more than".
    any_fake.delay_next(0.05)
    assert httpx.get(url, headers=auth, timeout=0.05).status_code == 200


@in_process_only
@pytest.mark.asyncio
async def test_a_delay_past_the_read_timeout_async(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.delay_next(0.02)
    async with async_client_for(any_fake) as client:
        assert (await client.get("/v1/messages/m/tasks", timeout=1)).status_code == 200
        any_fake.delay_next(5)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v1/messages/m/tasks", timeout=0.05)


def test_the_daily_reset_is_the_next_utc_midnight_from_any_time(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.clock.advance(5 * 3_600_000 + 1234)  # 05:00:01.234
    any_fake.rate_limit_next(daily=True)
    any_fake.rate_limit_next()
    with client_for(any_fake) as client:
        daily = client.get("/v1/messages/m/tasks")
        burst = client.get("/v1/messages/m/tasks")
    assert daily.headers["RateLimit-Reset"] == str(DEFAULT_START_MS // 1000 + 86_400)
    assert burst.headers["Burst-RateLimit-Reset"] == str(DEFAULT_START_MS // 1000 + 5 * 3600 + 2)


def test_fault_arguments_that_cannot_mean_anything_are_refused() -> None:
    fake = QStashTasksMock()
    with pytest.raises(ValueError, match="delay must be a number of seconds >= 0, got nan"):
        fake.fail_next(503, delay=float("nan"))
    with pytest.raises(ValueError, match=r"cursor must be an int >= 0, None .* got True"):
        fake.fail_next(503, cursor=True)  # type: ignore[arg-type]
    assert fake.faults == []


def test_a_page_fault_fires_on_its_page_only(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=250)
    with client_for(any_fake) as client:
        first = client.get("/v1/messages/m/tasks").json()
        second = client.get("/v1/messages/m/tasks", params={"cursor": first["cursor"]}).json()
        any_fake.fail_next(503, message_id="m", page=2)
        third = client.get("/v1/messages/m/tasks", params={"cursor": second["cursor"]})
        assert third.status_code == 200  # page 3: not the fault's
        again = client.get("/v1/messages/m/tasks", params={"cursor": first["cursor"]})
        assert again.status_code == 503  # page 2: the fault's
    assert any_fake.faults[0].fired == 1


@pytest.mark.parametrize(
    ("plan", "status"),
    [
        (lambda fake: fake.rate_limit_next(message_id="m", page=2), 429),
        (lambda fake: fake.delay_next(0.01, message_id="m", page=2), 200),
    ],
    ids=["rate_limit_next", "delay_next"],
)
def test_every_kind_of_page_fault_fires_on_its_page_only(
    any_fake: QStashTasksFake, plan: Callable[[QStashTasksFake], Fault], status: int
) -> None:
    any_fake.add("m", count=250)
    with client_for(any_fake) as client:
        first = client.get("/v1/messages/m/tasks").json()
        second = client.get("/v1/messages/m/tasks", params={"cursor": first["cursor"]}).json()
        fault = plan(any_fake)
        third = client.get("/v1/messages/m/tasks", params={"cursor": second["cursor"]})
        assert (third.status_code, fault.fired) == (200, 0)  # page 3: not the fault's
        again = client.get("/v1/messages/m/tasks", params={"cursor": first["cursor"]})
        assert (again.status_code, fault.fired) == (status, 1)  # page 2: the fault's


def test_a_fault_s_defaults(any_fake: QStashTasksFake) -> None:
    failed = any_fake.fail_next()
    limited = any_fake.rate_limit_next()
    raised = any_fake.raise_next(httpx.ConnectError)
    assert (failed.status, failed.delay, limited.delay, raised.delay) == (500, 0, 0, 0)
    assert (failed.times, failed.message_id) == (1, None)
    any_fake.assert_all_faults_triggered = False


def test_a_first_page_fault_does_not_fire_on_later_pages(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=250)
    any_fake.fail_next(503, cursor=None, times=5)
    with client_for(any_fake) as client:
        assert client.get("/v1/messages/m/tasks").status_code == 503
        page = client.get("/v1/messages/m/tasks", params={"cursor": DEFAULT_START_MS - 1})
        assert page.status_code == 200
        cursor = page.json()["cursor"]
        assert client.get("/v1/messages/m/tasks", params={"cursor": cursor}).status_code == 200
    (fault,) = any_fake.faults
    assert (fault.fired, fault.remaining) == (1, 4)
    any_fake.assert_all_faults_triggered = False


def test_faults_hands_out_a_copy(any_fake: QStashTasksFake) -> None:
    planned = any_fake.fail_next(503)
    listed = any_fake.faults
    listed.clear()
    assert any_fake.faults == [planned]
    with client_for(any_fake) as client:
        any_fake.add_message("m")
        assert client.get("/v1/messages/m/tasks").status_code == 503


@in_process_only
def test_a_raise_fault_s_delay_comes_before_the_raise(any_fake: QStashTasksFake) -> None:
    any_fake.add_message("m")
    any_fake.raise_next(httpx.ConnectError, delay=0.2)
    with client_for(any_fake) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ConnectError):
            client.get("/v1/messages/m/tasks")
    assert time.perf_counter() - started >= 0.2


def test_a_raise_fault_s_delay_comes_before_the_close_over_a_socket() -> None:
    from pytest_qstash_tasks import QStashTasksServer

    with QStashTasksServer() as fake:
        fake.add_message("m")
        fake.raise_next(httpx.ConnectError, delay=0.2)
        started = time.perf_counter()
        with pytest.raises(requests.ConnectionError):
            requests.get(
                fake.base_url + "/v1/messages/m/tasks",
                headers={"Authorization": "Bearer t"},
                timeout=5,
            )
        assert time.perf_counter() - started >= 0.2


@in_process_only
def test_a_fail_fault_held_past_the_read_timeout_records_what_happened(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.add_message("m")
    any_fake.fail_next(503, delay=5)
    with client_for(any_fake) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/v1/messages/m/tasks", timeout=httpx.Timeout(10, read=0.05))
    (call,) = any_fake.calls
    assert (call.status, call.action) == (None, "hold")
    assert isinstance(call.exception, TimeoutError)
    assert "-> no answer until the client gave up (TimeoutError) [fail_next(503)]" in (
        call.describe()
    )


def test_a_status_with_no_reason_phrase_reads_as_its_number(any_fake: QStashTasksFake) -> None:
    any_fake.add_message("m")
    any_fake.fail_next(599)
    with client_for(any_fake) as client:
        answer = client.get("/v1/messages/m/tasks")
    assert (answer.status_code, answer.json()) == (599, {"error": "HTTP status 599"})


@in_process_only
def test_a_delay_past_the_read_timeout_records_a_timeout(any_fake: QStashTasksFake) -> None:
    any_fake.add_message("m")
    any_fake.delay_next(5)
    with client_for(any_fake) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/v1/messages/m/tasks", timeout=httpx.Timeout(10, read=0.05))
    (call,) = any_fake.calls
    assert isinstance(call.exception, TimeoutError)
    assert str(call.exception) == (
        "qstash_tasks: the answer was held back 5 s (a planned delay), past the client's "
        "read timeout of 0.05 s"
    )


def test_a_delay_for_one_message_holds_that_message_s_answers_only(
    fake: QStashTasksFake,
) -> None:
    fake.add("msg_other", count=1)
    planned = fake.delay_next(0.2, message_id="msg_slow")
    fake.add("msg_slow", count=1)
    with client_for(fake) as client:
        client.get("/v1/messages/msg_other/tasks")  # not this message's: not held
        client.get("/v1/messages/msg_slow/tasks")
    assert [call.fault for call in fake.calls] == [None, "delay_next(0.2, message_id='msg_slow')"]
    assert planned.fired == 1
