"""Time that moves event by event: what a receiver publishes during a move is due from
its attempt's instant and runs in the same move; a chain that never ends stops; run_all
delivers everything that is going to happen; the wall clock delivers by itself."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import (
    DeliveryRequest,
    QStashTasksFake,
    QStashTasksMock,
    QStashTasksRunawayError,
    QStashTasksServer,
)

APP = "https://app.example.com"
Sdk = Callable[..., QStash]


@pytest.fixture
def client(any_fake: QStashTasksFake, sdk: Sdk) -> QStash:
    return sdk(any_fake.token, base_url=any_fake.base_url)


def ids_of(fake: QStashTasksFake) -> list[str]:
    return [attempt.message_id for attempt in fake.deliveries]


# -- a move runs what it makes due, at the instants it is due -------------------------


def test_a_step_published_during_a_move_is_delivered_in_that_move(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    start = any_fake.clock.now

    def first(delivery: DeliveryRequest) -> int:
        client.message.publish(url=f"{APP}/second", body="next", delay="10s")
        return 200

    any_fake.destination(f"{APP}/first").deliver_to(first)
    any_fake.destination(f"{APP}/second").deliver_to(lambda delivery: 200)
    client.message.publish(url=f"{APP}/first", body="go")
    assert any_fake.clock.advance(60_000) == start + 60_000
    one, two = any_fake.deliveries
    assert (one.url, one.at) == (f"{APP}/first", start + 200)
    # Published at the first attempt's instant, so due 10 s after it, not after the move.
    assert (two.url, two.at) == (f"{APP}/second", start + 200 + 10_000)
    assert any_fake.published[1].published_at == start + 200


def test_a_chain_of_five_steps_runs_each_from_the_attempt_that_published_it(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    # Each step publishes the next with its own delay; none (the first attempt 200 ms
    # after the publish, as documented) and delays short and long.
    delays: list[str | None] = [None, "3s", "1500ms", "45s", None]
    waits = [200, 3_000, 1_500, 45_000, 200]
    start = any_fake.clock.now

    def step(delivery: DeliveryRequest) -> int:
        number = int(delivery.text)
        if number < len(delays):
            delay = delays[number]
            client.message.publish(
                url=f"{APP}/step", body=str(number + 1), **({"delay": delay} if delay else {})
            )
        return 200

    any_fake.destination(f"{APP}/step").deliver_to(step)
    client.message.publish(url=f"{APP}/step", body="0")
    any_fake.clock.advance(dt.timedelta(minutes=5))
    instants = [attempt.at for attempt in any_fake.deliveries]
    expected = [start + 200]
    for wait in waits:
        expected.append(expected[-1] + wait)
    assert instants == expected
    assert [attempt.json() for attempt in any_fake.deliveries] == list(range(6))


def test_a_receiver_reads_its_own_instant_on_the_clock_and_on_the_tasks_endpoint(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    seen: list[tuple[int, str, int]] = []
    # A simulated delivery beside: its task is read from the same timeline.
    other = any_fake.simulate_delivery(
        "msg_other", url=f"{APP}/other", outcomes=[500, 200], max_retry=1
    )
    assert other

    def receiver(delivery: DeliveryRequest) -> int:
        message_id = delivery.header("Upstash-Message-Id") or ""
        (own,) = any_fake.tasks(message_id)
        (beside,) = any_fake.tasks("msg_other")
        seen.append((any_fake.clock.now, own.state, beside.retried))
        assert client.message.get(message_id).message_id == message_id  # still kept
        return 500 if delivery.text == "fails" else 200

    any_fake.destination(f"{APP}/hook").deliver_to(receiver)
    start = any_fake.clock.now
    client.message.publish(url=f"{APP}/hook", body="fails", retries=1)
    any_fake.clock.advance(dt.timedelta(hours=1))
    # The attempts: at 200 ms, then the retry 12 s (e ** 2.5) after the first ended.
    retry = start + 200 + 500 + 12_182
    assert seen == [(start + 200, "active", 0), (retry, "active", 1)]
    assert [attempt.at for attempt in any_fake.deliveries] == [start + 200, retry]


def test_a_receiver_that_sleeps_moves_the_clock_and_what_it_publishes_is_due_from_there() -> None:
    with QStashTasksMock(patch_sleep=True) as fake:
        client = QStash(fake.token, base_url=fake.base_url)
        start = fake.clock.now

        def slow(delivery: DeliveryRequest) -> int:
            time.sleep(5)  # under patch_sleep: the fake's clock moves 5 s, at once
            client.message.publish(url=f"{APP}/after", body="x")
            return 200

        fake.destination(f"{APP}/slow").deliver_to(slow)
        fake.destination(f"{APP}/after").deliver_to(lambda delivery: 200)
        client.message.publish(url=f"{APP}/slow", body="x")
        fake.clock.advance(10_000)
        assert [attempt.at for attempt in fake.deliveries] == [start + 200, start + 5_400]
        assert fake.clock.now == start + 10_000


@pytest.mark.asyncio
async def test_an_async_chain_publishes_through_the_async_sdk() -> None:
    async with QStashTasksMock() as fake:
        client = AsyncQStash(fake.token, base_url=fake.base_url)
        start = fake.clock.now

        async def step(delivery: DeliveryRequest) -> int:
            number = int(delivery.text)
            if number < 3:
                await client.message.publish(url=f"{APP}/a", body=str(number + 1), delay="2s")
            return 200

        fake.destination(f"{APP}/a").deliver_to(step)
        await client.message.publish(url=f"{APP}/a", body="0")
        fake.clock.advance(60_000)
        assert [a.at - start for a in fake.deliveries] == [200, 2_200, 4_200, 6_200]


def test_the_tasks_endpoint_messages_and_deliveries_agree_at_every_instant(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(f"{APP}/hook").answers(503, 200)
    message_id = client.message.publish(url=f"{APP}/hook", body="x").message_id
    any_fake.expect_unserved("unknown_message", message_id=message_id)  # once delivered
    start = any_fake.clock.now
    retry = start + 200 + 500 + 12_182
    for instant, state, kept in [
        (start + 199, "planned", True),
        (start + 200, "active", True),
        (start + 700, "error", True),
        (retry, "active", True),
        (retry + 500, "delivered", False),
    ]:
        any_fake.clock.set(instant)
        (task,) = any_fake.tasks(message_id)
        assert task.state == state, instant
        answer = requests.get(
            f"{any_fake.base_url}/v2/messages/{message_id}",
            headers={"Authorization": f"Bearer {any_fake.token}"},
            timeout=5,
        )
        assert (answer.status_code == 200) is kept, instant


# -- a chain that never ends ---------------------------------------------------------


def test_a_runaway_chain_stops_the_move_and_names_itself(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.max_chained_events = 40

    def forever(delivery: DeliveryRequest) -> int:
        client.message.publish(url=f"{APP}/again", body="x")
        return 200

    any_fake.destination(f"{APP}/again").deliver_to(forever)
    first = client.message.publish(url=f"{APP}/again", body="x").message_id
    start = any_fake.clock.now
    with pytest.raises(QStashTasksRunawayError) as raised:
        any_fake.clock.advance(dt.timedelta(days=7))
    text = str(raised.value)
    # The first attempt was scheduled before the move; 40 more that it made ran.
    assert len(any_fake.deliveries) == 41
    ids = ids_of(any_fake)
    assert ids[0] == first
    assert "one move of the clock ran 40 events that were scheduled during that same move" in (text)
    assert f"  {APP}/again: 40 attempt(s)" in text
    assert f"Its 40 message(s): {ids[1]}, {ids[2]}, {ids[3]}, ... {ids[40]}." in text
    assert "max_chained_events" in text
    # The clock stays at the last attempt made; the next one is still due.
    assert any_fake.clock.now == start + 200 * 41
    assert [p for p in any_fake.problems() if "runaway" in p] == [text]
    any_fake.reset()  # the fixture's teardown would fail on it (see the pytester test)


def test_a_runaway_fails_the_test_at_teardown_even_when_the_code_swallows_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from qstash import QStash

        @pytest.mark.qstash_tasks(max_chained_events=5, patch_sleep=True)
        def test_it(qstash_tasks):
            client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
            hook = "https://app.example.com/loop"

            def again(delivery):
                client.message.publish(url=hook, body="x")
                return 200

            qstash_tasks.destination(hook).deliver_to(again)
            client.message.publish(url=hook, body="x")
            try:
                import time
                time.sleep(3600)  # the code's own sleep moves the clock
            except BaseException:
                pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*A runaway chain: one move of the clock ran 5 events*",
            "*https://app.example.com/loop: 5 attempt(s)*",
            "*raise the bound with @pytest.mark.qstash_tasks(max_chained_events=...) or the "
            "ini option qstash_tasks_max_chained_events = ...*",
        ]
    )


def test_the_bound_counts_only_what_the_move_itself_scheduled(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.max_chained_events = 3
    for number in range(10):  # scheduled before the move: not a chain
        client.message.publish(url=f"{APP}/plain", body=str(number))
    any_fake.destination(f"{APP}/plain").deliver_to(lambda delivery: 200)
    any_fake.clock.advance(1_000)
    assert len(any_fake.deliveries) == 10
    assert any_fake.problems() == []


def test_max_chained_events_is_checked(any_fake: QStashTasksFake) -> None:
    with pytest.raises(ValueError, match="max_chained_events must be an int >= 1, got 0"):
        any_fake.max_chained_events = 0
    with pytest.raises(ValueError, match="max_chained_events must be an int >= 1, got 0"):
        QStashTasksMock(max_chained_events=0)


# -- run_all: everything that is going to happen ----------------------------------------


def test_run_all_delivers_every_retry_and_chain_and_stops_when_quiet(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(f"{APP}/flaky").answers(500, 500, 200)

    def fan_out(delivery: DeliveryRequest) -> int:
        if delivery.text == "go":
            client.message.publish(url=f"{APP}/fan", body="later", delay="1h")
        return 200

    any_fake.destination(f"{APP}/fan").deliver_to(fan_out)
    flaky = client.message.publish(url=f"{APP}/flaky", body="x").message_id
    client.message.publish(url=f"{APP}/fan", body="go")
    simulated = any_fake.simulate_delivery("msg_sim", url=f"{APP}/sim", outcomes=[500, 200])
    start = any_fake.clock.now
    moved = any_fake.clock.run_all()
    # The last attempt: the one published an hour after the first fan-out attempt.
    assert moved == 200 + 3_600_000 + 500
    assert any_fake.clock.now == start + moved
    assert [t.state for t in any_fake.tasks(flaky)] == ["delivered"]
    assert [t.state for t in any_fake.tasks("msg_sim")] == ["delivered"]
    assert simulated
    assert [a.body for a in any_fake.deliveries] == [b"go", b"later"]
    assert any_fake.clock.run_all() == 0  # nothing left


def test_run_all_waits_for_a_simulated_delivery_alone(any_fake: QStashTasksFake) -> None:
    any_fake.simulate_delivery("m", url=f"{APP}/x", outcomes=[500, 500, 200], active_ms=300)
    moved = any_fake.clock.run_all()
    (task,) = any_fake.tasks("m")
    assert task.state == "delivered"
    assert moved == task.completed_at - any_fake.clock.start


def test_run_all_stops_at_its_horizon(any_fake: QStashTasksFake, client: QStash) -> None:
    def daily(delivery: DeliveryRequest) -> int:
        client.message.publish(url=f"{APP}/daily", body="x", delay="1d")
        return 200

    any_fake.destination(f"{APP}/daily").deliver_to(daily)
    client.message.publish(url=f"{APP}/daily", body="x")
    assert any_fake.clock.run_all(horizon=dt.timedelta(days=3, hours=1)) == 3 * 86_400_000 + (
        3_600_000
    )
    assert len(any_fake.deliveries) == 4  # at 200 ms, then a day after each


def test_run_all_refuses_a_horizon_in_the_past(any_fake: QStashTasksFake) -> None:
    with pytest.raises(ValueError, match=r"the clock only moves forward; run_all\(-1\) goes back"):
        any_fake.clock.run_all(-1)
    with pytest.raises(TypeError, match=r"run_all\(\) takes ms \(int or float\) or a timedelta"):
        any_fake.clock.run_all("1d")  # type: ignore[arg-type]


def test_a_cancelled_message_does_not_hold_run_all(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    message_id = client.message.publish(url=f"{APP}/x", body="x", delay="7d").message_id
    client.message.cancel(message_id)
    assert any_fake.clock.run_all() == 0


def test_run_all_stops_a_runaway_too(any_fake: QStashTasksFake, client: QStash) -> None:
    any_fake.max_chained_events = 10

    def again(delivery: DeliveryRequest) -> int:
        client.message.publish(url=f"{APP}/again", body="x")
        return 200

    any_fake.destination(f"{APP}/again").deliver_to(again)
    client.message.publish(url=f"{APP}/again", body="x")
    with pytest.raises(QStashTasksRunawayError, match="ran 10 events"):
        any_fake.clock.run_all()
    any_fake.reset()


# -- the wall clock delivers by itself ------------------------------------------------


def _receiver_log() -> tuple[list[tuple[float, str, str]], threading.Event, Any]:
    calls: list[tuple[float, str, str]] = []
    arrived = threading.Event()

    def receiver(delivery: DeliveryRequest) -> int:
        calls.append((time.time() * 1000, threading.current_thread().name, delivery.text))
        arrived.set()
        return 200

    return calls, arrived, receiver


@pytest.mark.qstash_tasks(clock="wall")
def test_the_wall_clock_delivers_on_time_with_no_request(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    calls, arrived, receiver = _receiver_log()
    any_fake.destination(f"{APP}/hook").deliver_to(receiver)
    client.message.publish(url=f"{APP}/hook", body="x", delay="1s")
    due = any_fake.published[0].published_at + 1_000
    requests_before = len(any_fake.calls)
    assert arrived.wait(5), "the wall clock never delivered"
    ((at, thread, _),) = calls
    assert thread == "qstash-tasks-clock"
    assert 0 <= at - due < 100  # on time (the benchmark measures how close)
    assert len(any_fake.calls) == requests_before  # no request made it happen
    assert [attempt.at for attempt in any_fake.deliveries] == [due]


def test_the_standalone_command_delivers_with_the_wall_clock_by_itself(sdk: Sdk) -> None:
    arrivals: list[tuple[float, bytes]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.append((time.time() * 1000, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    command = [sys.executable, "-m", "pytest_qstash_tasks", "serve", "--port", "0"]
    command += ["--deliver", "--clock", "wall", "--quiet"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, env=os.environ
    ) as server:
        try:
            assert server.stdout is not None
            base_url = server.stdout.readline().strip()  # the first line: the base URL
            client = sdk("t", base_url=base_url)
            hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            message_id = client.message.publish(url=hook, body="by itself", delay="1s").message_id
            due = client.message.get(message_id).not_before  # asked at once: nothing due yet
            assert arrived.wait(5), "the standalone wall clock never delivered"
            ((at, body),) = arrivals
            assert body == b"by itself"
            assert 0 <= at - due < 100
        finally:
            server.terminate()
            receiver.shutdown()
            receiver.server_close()


def test_stop_ends_the_wall_clocks_thread_at_once() -> None:
    fake = QStashTasksMock(clock="wall").start()
    fake.simulate_delivery("m", url=f"{APP}/x", outcomes=[200])
    QStash(fake.token, base_url=fake.base_url).message.publish(url=f"{APP}/x", body="x", delay="1h")
    assert "qstash-tasks-clock" in [t.name for t in threading.enumerate()]
    started = time.perf_counter()
    fake.stop()
    assert time.perf_counter() - started < 0.5
    assert "qstash-tasks-clock" not in [t.name for t in threading.enumerate()]


def test_a_receiver_that_raises_on_the_wall_clocks_thread_fails_the_test() -> None:
    fake = QStashTasksMock(clock="wall")
    arrived = threading.Event()

    def broken(delivery: DeliveryRequest) -> int:
        arrived.set()
        raise RuntimeError("the app broke")

    fake.start()
    fake.destination(f"{APP}/x").deliver_to(broken)
    QStash(fake.token, base_url=fake.base_url).message.publish(url=f"{APP}/x", body="x", retries=0)
    assert arrived.wait(5)
    fake.stop()
    # stop() waited for the receiver the thread ran: its bug is the test's teardown problem.
    assert [attempt.status for attempt in fake.deliveries] == [None]
    with pytest.raises(AssertionError, match="RuntimeError: the app broke"):
        fake.verify()


def test_the_fake_clock_runs_receivers_in_the_thread_that_moves_it() -> None:
    calls, _, receiver = _receiver_log()
    with QStashTasksMock() as fake:
        fake.destination(f"{APP}/x").deliver_to(receiver)
        QStash(fake.token, base_url=fake.base_url).message.publish(url=f"{APP}/x", body="x")
        assert "qstash-tasks-clock" not in [t.name for t in threading.enumerate()]
        fake.clock.advance(1_000)
    assert [thread for _, thread, _ in calls] == [threading.current_thread().name]


def test_a_wall_clock_moved_on_wakes_its_thread_for_the_earlier_due_time(sdk: Sdk) -> None:
    calls, arrived, receiver = _receiver_log()
    with QStashTasksServer(clock="wall") as fake:
        fake.destination(f"{APP}/x").deliver_to(receiver)
        client = sdk(fake.token, base_url=fake.base_url)
        client.message.publish(url=f"{APP}/x", body="in an hour", delay="1h")
        fake.clock.advance(dt.timedelta(minutes=59, seconds=59, milliseconds=700))
        assert calls == []
        assert arrived.wait(5), "the thread slept on past the new due time"
        assert [text for _, _, text in calls] == ["in an hour"]


def test_the_control_endpoint_runs_all_and_reports_a_runaway(sdk: Sdk) -> None:
    with QStashTasksServer(control=True, max_chained_events=5) as fake:
        base = fake.base_url
        client = sdk(fake.token, base_url=base)

        def again(delivery: DeliveryRequest) -> int:
            client.message.publish(url=f"{APP}/again", body="x")
            return 200

        fake.destination(f"{APP}/done").deliver_to(lambda delivery: 200)
        client.message.publish(url=f"{APP}/done", body="x", delay="90s")
        answer = requests.post(f"{base}/_fake/clock", json={"runAll": True}, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["movedMs"] == 90_500
        answer = requests.post(f"{base}/_fake/clock", json={"runAll": 1_000}, timeout=5)
        assert answer.json()["movedMs"] == 0
        fake.destination(f"{APP}/again").deliver_to(again)
        client.message.publish(url=f"{APP}/again", body="x")
        answer = requests.post(f"{base}/_fake/clock", json={"advanceMs": 60_000}, timeout=5)
        assert answer.status_code == 409
        assert "A runaway chain: one move of the clock ran 5 events" in answer.json()["error"]
        assert "--max-chained-events" not in answer.json()["error"]  # built as a class
        fake.reset()


@pytest.fixture(autouse=True)
def _no_clock_thread_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 2
    while any(t.name == "qstash-tasks-clock" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a wall clock's thread outlived its fake"
        threading.Event().wait(0.01)


def test_a_restarted_wall_fake_runs_one_thread_that_delivers(sdk: Sdk) -> None:
    calls, arrived, receiver = _receiver_log()
    fake = QStashTasksMock(clock="wall")
    for _ in range(2):
        fake.start()
        fake.stop()
    with fake:
        assert [t.name for t in threading.enumerate()].count("qstash-tasks-clock") == 1
        fake.destination(f"{APP}/x").deliver_to(receiver)
        sdk(fake.token, base_url=fake.base_url).message.publish(url=f"{APP}/x", body="x")
        assert arrived.wait(5)
    assert [thread for _, thread, _ in calls] == ["qstash-tasks-clock"]


def test_a_clock_of_its_own_moves_with_nothing_to_run() -> None:
    from pytest_qstash_tasks import DEFAULT_START_MS, Clock

    clock = Clock()
    assert clock.advance(1_000) == DEFAULT_START_MS + 1_000
    assert clock.run_all() == 0
    assert clock.now == DEFAULT_START_MS + 1_000


def test_an_error_on_the_wall_clocks_thread_is_reported_and_the_thread_goes_on(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_qstash_tasks._core.engine.courier import Courier

    calls, arrived, receiver = _receiver_log()
    begin = Courier.begin
    broken = [True]

    def begin_once_broken(self: Courier, due: int, delivery: Any) -> Any:
        if broken.pop() if broken else False:
            raise RuntimeError("a bug of the fake's")
        return begin(self, due, delivery)

    monkeypatch.setattr(Courier, "begin", begin_once_broken)
    fake = QStashTasksMock(clock="wall").start()
    fake.destination(f"{APP}/x").deliver_to(receiver)
    client = sdk(fake.token, base_url=fake.base_url)
    client.message.publish(url=f"{APP}/x", body="lost")
    client.message.publish(url=f"{APP}/x", body="second", delay="1s")
    assert arrived.wait(5)
    fake.stop()
    with pytest.raises(AssertionError, match="RuntimeError: a bug of the fake's"):
        fake.verify()
    assert [text for _, _, text in calls] == ["second"]
    (problem,) = fake.problems()
    first_line, *_ = problem.splitlines()
    assert first_line == (
        "An event raised on the wall clock's thread (a bug of the fake's: please report it), "
        "which went on with the next:"
    )
    assert problem.splitlines()[1] == "Traceback (most recent call last):"
    assert problem.endswith("RuntimeError: a bug of the fake's")


# -- what the agenda keeps, and the wall clock's thread at rest -----------------------


def test_a_cancelled_message_leaves_the_others_of_the_move_to_run(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    first = client.message.publish(url=f"{APP}/a", body="a").message_id
    client.message.publish(url=f"{APP}/b", body="b", delay="1s")
    client.message.cancel(first)
    received: list[str] = []
    any_fake.destination(f"{APP}/*").deliver_to(lambda d: received.append(d.text) or 200)
    any_fake.clock.advance(2_000)
    assert received == ["b"]  # by the move itself, before anything reads the fake


def test_a_stopped_chain_goes_on_from_where_it_stopped(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.max_chained_events = 3

    def again(delivery: DeliveryRequest) -> int:
        if int(delivery.text) < 6:
            client.message.publish(url=f"{APP}/again", body=str(int(delivery.text) + 1))
        return 200

    any_fake.destination(f"{APP}/again").deliver_to(again)
    client.message.publish(url=f"{APP}/again", body="0")
    start = any_fake.clock.now
    with pytest.raises(QStashTasksRunawayError):
        any_fake.clock.advance(60_000)
    assert [a.body for a in any_fake.deliveries] == [b"0", b"1", b"2", b"3"]
    any_fake.max_chained_events = 100
    any_fake.clock.advance(60_000)  # the rest, each at its own instant
    assert [a.at - start for a in any_fake.deliveries] == [200 * n for n in range(1, 8)]
    any_fake.reset()


def test_an_interrupted_attempt_keeps_its_place_among_those_due_with_it(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    seen: list[str] = []

    def receiver(delivery: DeliveryRequest) -> int:
        seen.append(delivery.text)
        if seen == ["first"]:
            raise KeyboardInterrupt
        return 200

    any_fake.destination(f"{APP}/x").deliver_to(receiver)
    client.message.publish(url=f"{APP}/x", body="first")
    client.message.publish(url=f"{APP}/x", body="second")  # due at the same instant
    with pytest.raises(KeyboardInterrupt):
        any_fake.clock.advance(1_000)
    any_fake.clock.advance(1_000)
    assert seen == ["first", "first", "second"]


def test_run_all_on_a_clock_from_zero_with_nothing_to_do_moves_nowhere() -> None:
    fake = QStashTasksMock(start=0)
    assert fake.clock.run_all() == 0
    fake.simulate_delivery("m", url=f"{APP}/x", outcomes=[200])
    fake.reset()
    assert fake.clock.run_all() == 0
    assert fake.clock.now == 0


def _thread_cpu_ticks(thread: threading.Thread) -> int:
    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_wall_clocks_thread_spends_no_cpu_while_it_waits(sdk: Sdk) -> None:
    release = threading.Event()

    def slow(delivery: DeliveryRequest) -> int:
        release.wait(5)  # another run holds the timeline meanwhile
        return 200

    with QStashTasksMock(clock="wall") as fake:
        (thread,) = [t for t in threading.enumerate() if t.name == "qstash-tasks-clock"]
        # A daemon: a process that never stops its fake still exits (the subprocess test).
        assert thread.daemon
        client = sdk(fake.token, base_url=fake.base_url)
        before = _thread_cpu_ticks(thread)
        time.sleep(0.3)  # nothing on the agenda
        client.message.publish(url=f"{APP}/later", body="x", delay="1h")
        time.sleep(0.3)  # one event, an hour away
        fake.destination(f"{APP}/slow").deliver_to(slow)
        client.message.publish(url=f"{APP}/slow", body="x")
        client.message.publish(url=f"{APP}/due", body="x", delay="300ms")
        mover = threading.Thread(target=fake.clock.advance, args=(200,))
        mover.start()  # runs /slow; /due falls due while it waits
        time.sleep(0.6)
        ticks = _thread_cpu_ticks(thread) - before
        release.set()
        mover.join(5)
    assert ticks <= 2, f"the thread spent {ticks} ticks of CPU waiting"


def test_stop_waits_for_the_receiver_under_way_but_not_past_the_timeout(sdk: Sdk) -> None:
    arrived = threading.Event()
    finished: list[str] = []

    def receiver(delivery: DeliveryRequest) -> int:
        arrived.set()
        threading.Event().wait(float(delivery.text))  # real time, whatever patches sleep
        finished.append(delivery.text)
        return 200

    fake = QStashTasksMock(clock="wall", delivery_timeout=0.1, assert_all_requests_served=False)
    fake.start()
    fake.destination(f"{APP}/x").deliver_to(receiver)
    client = sdk(fake.token, base_url=fake.base_url)
    client.message.publish(url=f"{APP}/x", body="0.4")
    assert arrived.wait(5)
    fake.stop()  # waits for it: 0.4 s, within the timeout and the grace
    assert finished == ["0.4"]
    arrived.clear()
    fake.start()
    client.message.publish(url=f"{APP}/x", body="1.8")
    assert arrived.wait(5)
    started = time.perf_counter()
    fake.stop()  # gives up after the timeout and a second's grace
    assert 1.0 < time.perf_counter() - started < 1.7
    assert finished == ["0.4"]
    fake.start()  # a new thread; the old one ends once its receiver returns
    deadline = time.monotonic() + 3
    while len(finished) < 2 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    threading.Event().wait(0.1)
    assert [t.name for t in threading.enumerate()].count("qstash-tasks-clock") == 1
    fake.stop()


def test_a_process_that_never_stops_its_wall_fake_still_exits() -> None:
    code = (
        "from pytest_qstash_tasks import QStashTasksMock\n"
        "fake = QStashTasksMock(clock='wall').start()\n"
        "fake.simulate_delivery('m', url='https://app.example.com/x', outcomes=[200])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    assert done.returncode == 0
