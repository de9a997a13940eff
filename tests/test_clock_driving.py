"""A clock that real code drives: clock.sleep, patch_sleep (time.sleep, asyncio.sleep,
anyio.sleep, trio.sleep) and clock="wall" (time-machine, freezegun)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from time import sleep as sleep_imported_by_name
from typing import Any

import anyio
import httpx
import pytest

from pytest_qstash_tasks import (
    DEFAULT_START_MS,
    QStashTasksFake,
    QStashTasksLoopError,
    QStashTasksMock,
)
from tests.helpers import async_client_for, client_for, forget_stops, in_process_only

HOOK = "https://example.com/hook"
#: Five attempts with growing backoffs: the last settles about 56 minutes after creation.
SLOW = [500, 500, 500, 500, 200]


def state_of(client: httpx.Client, message_id: str = "msg_1") -> dict[str, Any]:
    task: dict[str, Any] = client.get(f"/v1/messages/{message_id}/tasks").json()["tasks"][0]
    return task


def poll_until_settled(fake: Any, sleep: Any, every: float) -> tuple[int, dict[str, Any]]:
    """The code under test: poll, sleeping ``every`` seconds, until the task settles."""
    polls = 0
    with client_for(fake) as client:
        while True:
            polls += 1
            task = state_of(client)
            if task["state"] in ("delivered", "failed"):
                return polls, task
            sleep(every)


def test_clock_sleep_takes_seconds_and_rounds_up_to_a_millisecond() -> None:
    fake = QStashTasksMock()
    assert fake.clock.sleep(2.5) == DEFAULT_START_MS + 2500
    assert fake.clock.sleep(0.0001) == DEFAULT_START_MS + 2501
    assert fake.clock.sleep(0) == DEFAULT_START_MS + 2501
    with pytest.raises(ValueError, match=r"sleep\(\) takes a finite number of seconds >= 0"):
        fake.clock.sleep(-1)
    with pytest.raises(ValueError, match="got inf"):
        fake.clock.sleep(float("inf"))
    with pytest.raises(TypeError, match=r"sleep\(\) takes seconds \(int or float\), got '5'"):
        fake.clock.sleep("5")  # type: ignore[arg-type]


def test_clock_sleep_as_an_injected_sleep(any_fake: QStashTasksFake) -> None:
    any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=SLOW, max_retry=4)
    polls, task = poll_until_settled(any_fake, any_fake.clock.sleep, every=600)
    assert (task["state"], task["retried"]) == ("delivered", 4)
    assert polls == 7


@pytest.mark.qstash_tasks(patch_sleep=True)
def test_a_poller_that_sleeps_for_an_hour_finishes_at_once(any_fake: QStashTasksFake) -> None:
    any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=SLOW, max_retry=4)
    started = time.monotonic()
    polls, task = poll_until_settled(any_fake, time.sleep, every=600)
    assert (task["state"], polls) == ("delivered", 7)
    assert any_fake.clock.now - DEFAULT_START_MS == 6 * 600_000  # an hour on the fake's clock
    assert time.monotonic() - started < 30  # and no real ten-minute sleep, let alone six


@pytest.mark.qstash_tasks(patch_sleep=True)
def test_patch_sleep_reaches_sleep_imported_by_name(qstash_tasks: QStashTasksMock) -> None:
    sleep_imported_by_name(90)
    time.sleep(10)
    assert qstash_tasks.clock.now == DEFAULT_START_MS + 100_000


def test_patch_sleep_is_undone_after_the_test() -> None:
    real = time.sleep
    with QStashTasksMock(patch_sleep=True) as fake:
        assert time.sleep is not real
        assert sleep_imported_by_name is not real
        assert globals()["sleep_imported_by_name"] is not real
        time.sleep(1)
    assert time.sleep is real
    assert globals()["sleep_imported_by_name"] is real
    assert fake.clock.now == DEFAULT_START_MS + 1000


def test_one_fake_at_a_time_takes_the_sleeps() -> None:
    with QStashTasksMock(patch_sleep=True), pytest.raises(RuntimeError) as raised:
        QStashTasksMock(base_url="https://other.test", patch_sleep=True).start()
    assert str(raised.value) == (
        "patch_sleep is already on for another fake: one fake at a time can take the "
        "process's sleeps"
    )
    assert time.sleep is globals()["time"].sleep


@pytest.mark.asyncio
async def test_a_taken_sleep_takes_no_real_time() -> None:
    with QStashTasksMock(patch_sleep=True) as fake:
        started = time.monotonic()
        for _ in range(5):
            time.sleep(3600)
            await asyncio.sleep(3600)
        took = time.monotonic() - started
    assert fake.clock.now == DEFAULT_START_MS + 10 * 3_600_000
    assert took < 2.5  # ten sleeps: not a real second each


class _Odd:
    """What else sys.modules may hold: objects that are not modules."""

    def __init__(self, **attributes: object) -> None:
        self.__dict__.update(attributes)


class _Slotted:
    __slots__ = ("__name__",)

    def __init__(self) -> None:
        self.__name__ = "slotted"


class _Refusing(_Odd):
    def __setattr__(self, name: str, value: object) -> None:
        if name == "frozen":
            raise AttributeError(name)
        super().__setattr__(name, value)


def test_patch_sleep_passes_over_what_is_not_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    nameless = _Odd(sleep=time.sleep)
    refusing = _Refusing(__name__="refusing", frozen=time.sleep, free=time.sleep)
    monkeypatch.setitem(sys.modules, "qstash_test_nameless", nameless)
    monkeypatch.setitem(sys.modules, "qstash_test_slotted", _Slotted())
    monkeypatch.setitem(sys.modules, "qstash_test_refusing", refusing)
    real = time.sleep
    with QStashTasksMock(patch_sleep=True):
        # One attribute that takes no new value leaves the others taken.
        assert (refusing.frozen, refusing.free is real) == (real, False)
        assert nameless.sleep is real  # no name: not a module to patch
    assert (refusing.frozen, refusing.free) == (real, real)


@pytest.mark.qstash_tasks(patch_sleep=True)
def test_a_planned_delay_still_takes_real_time(any_fake: QStashTasksFake) -> None:
    any_fake.add("msg_1", count=1)
    any_fake.delay_next(0.05)
    started = time.monotonic()
    with client_for(any_fake) as client:
        assert client.get("/v1/messages/msg_1/tasks").status_code == 200
    assert time.monotonic() - started >= 0.05
    assert any_fake.clock.now == DEFAULT_START_MS  # latency is not the fake's time


@pytest.mark.asyncio
@pytest.mark.qstash_tasks(patch_sleep=True)
async def test_asyncio_sleep_moves_the_clock_and_the_loop_keeps_running(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=SLOW, max_retry=4)
    ticks = 0

    async def neighbour() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)  # a zero sleep still yields

    other = asyncio.create_task(neighbour())
    async with async_client_for(any_fake) as client:
        polls = 0
        while True:
            polls += 1
            page = (await client.get("/v1/messages/msg_1/tasks")).json()
            if page["tasks"][0]["state"] == "delivered":
                break
            assert await asyncio.sleep(600, result="slept") == "slept"
    other.cancel()
    assert polls == 7
    assert ticks >= polls - 1  # the other task ran at each of the poller's sleeps
    assert any_fake.clock.now == DEFAULT_START_MS + 6 * 600_000


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
@pytest.mark.qstash_tasks(patch_sleep=True)
async def test_anyio_sleep_moves_the_clock_under_asyncio_and_trio(
    qstash_tasks: QStashTasksMock, anyio_backend: str
) -> None:
    qstash_tasks.simulate_delivery("msg_1", url=HOOK, outcomes=[500, 200])
    ran: list[str] = []

    async def neighbour() -> None:
        ran.append("neighbour")

    async with anyio.create_task_group() as group, async_client_for(qstash_tasks) as client:
        group.start_soon(neighbour)
        states = []
        while not states or states[-1] != "delivered":
            page = (await client.get("/v1/messages/msg_1/tasks")).json()
            states.append(page["tasks"][0]["state"])
            await anyio.sleep(5)
    assert states[-1] == "delivered"
    assert "error" in states
    assert ran == ["neighbour"]
    if anyio_backend == "trio":
        import trio

        before = qstash_tasks.clock.now
        await trio.sleep(1.5)
        assert qstash_tasks.clock.now == before + 1500


@pytest.mark.qstash_tasks(clock="wall")
def test_wall_clock_follows_time_machine(any_fake: QStashTasksFake) -> None:
    import time_machine

    with time_machine.travel(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc), tick=False) as t:
        any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=[500, 200])
        with client_for(any_fake) as client:
            assert state_of(client)["state"] == "created"
            t.shift(dt.timedelta(seconds=3))
            assert state_of(client)["state"] == "error"
            t.shift(dt.timedelta(minutes=1))
            task = state_of(client)
    assert (task["state"], task["retried"]) == ("delivered", 1)
    assert any_fake.clock.mode == "wall"


@pytest.mark.asyncio
@pytest.mark.qstash_tasks(clock="wall")
async def test_wall_clock_follows_time_machine_in_async_code(any_fake: QStashTasksFake) -> None:
    import time_machine

    with time_machine.travel(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc), tick=False) as t:
        any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=[200])
        async with async_client_for(any_fake) as client:
            first = (await client.get("/v1/messages/msg_1/tasks")).json()["tasks"][0]
            t.shift(dt.timedelta(seconds=1))
            later = (await client.get("/v1/messages/msg_1/tasks")).json()["tasks"][0]
    assert (first["state"], later["state"]) == ("created", "delivered")


@pytest.mark.qstash_tasks(clock="wall")
def test_wall_clock_follows_freezegun(any_fake: QStashTasksFake) -> None:
    from freezegun import freeze_time

    with freeze_time("2026-06-01T00:00:00Z") as frozen:
        any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=[500, 200])
        assert any_fake.clock.now == 1780272000000
        with client_for(any_fake) as client:
            assert state_of(client)["state"] == "created"
            frozen.tick(dt.timedelta(minutes=1))
            assert state_of(client)["state"] == "delivered"


@pytest.mark.qstash_tasks(clock="wall")
def test_wall_clock_moves_with_real_time_and_with_clock_sleep(
    qstash_tasks: QStashTasksMock,
) -> None:
    first = qstash_tasks.clock.now
    assert abs(first - time.time() * 1000) < 1000
    assert abs(qstash_tasks.clock.start - first) < 1000  # it started at the wall's time
    qstash_tasks.clock.sleep(3600)
    assert qstash_tasks.clock.now >= first + 3_600_000


@in_process_only
def test_the_loop_guard_names_a_clock_that_stood_still(any_fake: QStashTasksFake) -> None:
    any_fake.simulate_delivery("msg_1", url=HOOK, outcomes=[500, 200])
    any_fake.max_identical_requests = 3
    with client_for(any_fake) as client:
        for _ in range(3):
            client.get("/v1/messages/msg_1/tasks")
        with pytest.raises(QStashTasksLoopError) as caught:
            client.get("/v1/messages/msg_1/tasks")
    assert str(caught.value) == (
        "likely infinite loop: GET https://qstash.upstash.io/v1/messages/msg_1/tasks was sent "
        "4 times in a row and got the same 200 answer each time, while the fake's clock "
        "stood still at 2026-01-01T00:00:00.000Z and 1 delivery of 'msg_1' was "
        "still under way (the next settles at 2026-01-01T00:00:08.589Z, 8.589 s later). "
        "The fake's time moves only when something moves it: call "
        "qstash_tasks.clock.sleep(seconds) where the code waits, mark the test "
        "@pytest.mark.qstash_tasks(patch_sleep=True) so that time.sleep, asyncio.sleep and "
        'anyio.sleep move it, or use @pytest.mark.qstash_tasks(clock="wall") to follow '
        "time.time() (real time, time-machine, freezegun). (The limit is "
        "max_identical_requests=3; raise it with "
        "@pytest.mark.qstash_tasks(max_identical_requests=...) or the ini option "
        "qstash_tasks_max_identical_requests = ....)"
    )
    forget_stops(any_fake)  # the guard was the point


def test_patch_sleep_false_in_the_ini_is_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_tasks_patch_sleep = false\n")
    pytester.makepyfile(
        "def test_ini(qstash_tasks):\n    assert qstash_tasks.patch_sleep is False\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_clock_and_patch_sleep_from_ini_and_a_bad_value(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        qstash_tasks_clock = wall
        qstash_tasks_patch_sleep = true
        """
    )
    pytester.makepyfile(
        """
        import time
        import pytest

        def test_ini(qstash_tasks):
            assert qstash_tasks.clock.mode == "wall"
            before = qstash_tasks.clock.now
            time.sleep(3600)
            assert qstash_tasks.clock.now >= before + 3_600_000

        @pytest.mark.qstash_tasks(clock="fake", patch_sleep=False)
        def test_marker(qstash_tasks):
            assert qstash_tasks.clock.mode == "fake"
            assert not qstash_tasks.patch_sleep

        @pytest.mark.qstash_tasks(clock="sundial")
        def test_bad(qstash_tasks):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ValueError: clock must be 'fake' or 'wall', got 'sundial'"])


def test_datetimes_are_rounded_to_the_nearest_millisecond() -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert QStashTasksMock(start=base + dt.timedelta(microseconds=999_600)).clock.now == (
        DEFAULT_START_MS + 1000
    )
    assert QStashTasksMock(start=base + dt.timedelta(microseconds=1_400)).clock.now == (
        DEFAULT_START_MS + 1
    )


def test_reset_of_a_wall_clock_drops_what_moved_it_on() -> None:
    import time_machine

    with time_machine.travel(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), tick=False):
        fake = QStashTasksMock(clock="wall")
        fake.clock.advance(60_000)
        assert fake.clock.now == 1893456060000
        fake.reset()
        assert fake.clock.now == 1893456000000


def test_a_restarted_fake_takes_the_sleeps_again() -> None:
    fake = QStashTasksMock(patch_sleep=True)
    for _ in range(2):
        with fake:
            before = fake.clock.now
            time.sleep(3600)
            assert fake.clock.now == before + 3_600_000
        started = time.perf_counter()
        time.sleep(0.01)  # the real one again, between the two
        assert time.perf_counter() - started >= 0.01


@pytest.mark.asyncio
async def test_an_async_delay_still_takes_real_time_under_patch_sleep() -> None:
    with QStashTasksMock(patch_sleep=True) as fake:
        fake.add_message("m")
        fake.delay_next(0.2)
        now = fake.clock.now
        async with async_client_for(fake) as client:
            started = time.perf_counter()
            assert (await client.get("/v1/messages/m/tasks")).status_code == 200
        assert time.perf_counter() - started >= 0.2
        assert fake.clock.now == now  # the fake's own delay does not move its clock


def test_advance_takes_a_timedelta_exactly_and_zero_is_no_move() -> None:
    clock = QStashTasksMock().clock
    assert clock.advance(dt.timedelta(seconds=1.5)) == DEFAULT_START_MS + 1500
    assert clock.advance(0) == DEFAULT_START_MS + 1500
    assert clock.advance(dt.timedelta(0)) == DEFAULT_START_MS + 1500


def test_moves_of_a_wall_clock_add_up_and_its_repr_says_so() -> None:
    import time_machine

    with time_machine.travel(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc), tick=False):
        clock = QStashTasksMock(clock="wall").clock
        clock.advance(1000)
        clock.sleep(2)
        assert clock.now == 1893456003000
        assert repr(clock) == (
            "<Clock 1893456003000 (2030-01-01T00:00:03.000+00:00), following the wall>"
        )
