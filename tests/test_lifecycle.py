"""Simulated deliveries on the fake's clock, seen through real clients."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import httpx
import pytest
from qstash import QStash

from pytest_qstash_tasks import (
    DEFAULT_START_MS,
    QStashTasksFake,
    QStashTasksMock,
    Task,
    TaskState,
    backoff_ms,
)
from tests.helpers import client_for, is_qstash_id


def state_at(fake: QStashTasksMock, at: int) -> str:
    fake.clock.set(DEFAULT_START_MS + at)
    (task,) = fake.tasks("msg_1")
    return str(task.state)


def assert_timeline(fake: QStashTasksMock, changes: list[tuple[int, str]]) -> None:
    """Each state begins exactly at its time: the millisecond before shows the one before."""
    previous = None
    for at, state in changes:
        if previous is not None:
            assert state_at(fake, at - 1) == previous, f"at +{at - 1} ms"
        assert state_at(fake, at) == state, f"at +{at} ms"
        previous = state


def test_retry_twice_then_deliver(any_fake: QStashTasksFake) -> None:
    any_fake.simulate_delivery("msg_1", url="https://example.com/hook", outcomes=[500, 503, 200])
    first_retry = 200 + 500 + backoff_ms(1)
    second_retry = first_retry + 500 + backoff_ms(2)
    assert_timeline(
        any_fake,
        [
            (0, "created"),
            (100, "planned"),
            (200, "active"),
            (700, "error"),
            (first_retry - 100, "planned"),
            (first_retry, "active"),
            (first_retry + 500, "error"),
            (second_retry - 100, "planned"),
            (second_retry, "active"),
            (second_retry + 500, "delivered"),
        ],
    )
    any_fake.clock.advance(dt.timedelta(days=1))
    (done,) = any_fake.tasks("msg_1")
    assert done.retried == 2
    assert done.error == "HTTP status 503"  # the last failed attempt's
    assert done.last_error_at == DEFAULT_START_MS + first_retry + 500
    assert done.completed_at == DEFAULT_START_MS + second_retry + 500
    assert done.next_process_at == 0


def test_waiting_for_a_retry_shows_error_with_the_spec_backoff(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.simulate_delivery("msg_1", url="https://example.com", outcomes=[500, 200])
    any_fake.clock.advance(700)
    (task,) = any_fake.tasks("msg_1")
    assert task.state is TaskState.ERROR
    assert (task.retried, task.error, task.last_error_at) == (
        1,
        "HTTP status 500",
        DEFAULT_START_MS + 700,
    )
    # QStash v1: nextProcessAt = lastErrorAt + min(86400, e ** (2 * retried)) seconds
    assert task.next_process_at == DEFAULT_START_MS + 700 + int(math.exp(2) * 1000)


def test_exhausted_retries_fail_and_days_pass_in_one_jump(any_fake: QStashTasksFake) -> None:
    any_fake.simulate_delivery("msg_1", url="https://example.com", outcomes=[500] * 6, max_retry=5)
    any_fake.clock.advance(dt.timedelta(days=3))
    (task,) = any_fake.tasks("msg_1")
    assert task.state is TaskState.FAILED
    assert (task.retried, task.max_retry, task.next_process_at, task.completed_at) == (5, 5, 0, 0)
    waits = sum(backoff_ms(n) for n in range(1, 6))
    assert task.last_error_at == DEFAULT_START_MS + 200 + 6 * 500 + waits


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (httpx.ConnectTimeout, "request timed out"),
        (TimeoutError("after 30s"), "request timed out: after 30s"),
        (httpx.ConnectError, "connection failed: ConnectError"),
        (ConnectionRefusedError("refused"), "connection failed: refused"),
        (
            "dial tcp: lookup example.invalid: no such host",
            "dial tcp: lookup example.invalid: no such host",
        ),
        (404, "HTTP status 404"),
    ],
)
def test_outcomes_that_are_not_a_2xx(
    any_fake: QStashTasksFake, outcome: object, error: str
) -> None:
    any_fake.simulate_delivery("msg_1", url="https://example.com", outcomes=[outcome, 200])  # type: ignore[list-item]
    any_fake.clock.advance(700)
    (task,) = any_fake.tasks("msg_1")
    assert (task.state, task.error) == (TaskState.ERROR, error)


def test_a_polling_client_sees_the_state_at_the_clock(any_fake: QStashTasksFake) -> None:
    """A "wait until delivered" loop that sleeps by moving the fake's clock."""
    any_fake.simulate_delivery("msg_1", url="https://a.example", outcomes=[500, 200])
    any_fake.simulate_delivery("msg_1", url="https://b.example", outcomes=[200])
    seen: list[dict[str, str]] = []
    with client_for(any_fake) as client:
        while True:
            tasks = client.get("/v1/messages/msg_1/tasks").raise_for_status().json()["tasks"]
            seen.append({t["url"]: t["state"] for t in tasks})
            if all(t["state"] == "delivered" for t in tasks):
                break
            any_fake.clock.advance(dt.timedelta(seconds=1))
    assert seen[0] == {"https://a.example": "created", "https://b.example": "created"}
    assert seen[1] == {"https://a.example": "error", "https://b.example": "delivered"}
    assert seen[-1] == {"https://a.example": "delivered", "https://b.example": "delivered"}
    assert len(seen) == 10  # 200 + 500 ms, e ** 2 s of backoff, then 500 ms more
    assert len(any_fake.calls) == len(seen)  # polling while time moves is not a loop


def test_the_sdk_reads_simulated_tasks(
    any_fake: QStashTasksFake, sdk: Callable[..., QStash]
) -> None:
    task_id = any_fake.simulate_delivery("msg_1", url="https://example.com", outcomes=[200])
    any_fake.clock.advance(10_000)
    client = sdk(any_fake.token, base_url=any_fake.base_url, retry=False)
    body = client.http.request(path="/v1/messages/msg_1/tasks", method="GET")
    (task,) = body["tasks"]
    assert Task.model_validate(task).task_id == task_id
    assert is_qstash_id(task_id, "tsk")
    assert task["state"] == "delivered"
    assert task["completedAt"] == DEFAULT_START_MS + 700


def test_simulated_and_stored_tasks_share_one_timeline(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("msg_1", count=3)
    any_fake.clock.advance(1_000)
    simulated = any_fake.simulate_delivery("msg_1", url="https://example.com", outcomes=[200])
    assert [t.task_id for t in any_fake.tasks("msg_1")] == [
        simulated,
        *(t.task_id for t in stored),
    ]
    assert any_fake.tasks("msg_1")[0].timeline_at == DEFAULT_START_MS + 1_000


@pytest.mark.qstash_tasks(start="2030-05-01T12:00:00Z")
def test_the_clock_starts_where_configured(any_fake: QStashTasksFake) -> None:
    start = int(dt.datetime(2030, 5, 1, 12, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert any_fake.clock.now == start
    any_fake.simulate_delivery("msg_1", url="https://example.com", outcomes=[200])
    for task in any_fake.add("msg_2", count=200):
        assert task.timeline_at is not None
        assert task.timeline_at <= start
        assert task.completed_at <= start
        assert task.last_error_at <= start
    assert any_fake.clock.set(dt.datetime(2030, 5, 2, tzinfo=dt.timezone.utc)) > start
    assert any_fake.tasks("msg_1")[0].state is TaskState.DELIVERED


def test_explicit_task_id(any_fake: QStashTasksFake) -> None:
    assert (
        any_fake.simulate_delivery("msg_1", url="https://x", outcomes=[200], task_id="tsk_a")
        == "tsk_a"
    )
    with pytest.raises(ValueError, match="already has a task 'tsk_a'"):
        any_fake.simulate_delivery("msg_1", url="https://x", outcomes=[200], task_id="tsk_a")
    assert len(any_fake.tasks("msg_1")) == 1


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"outcomes": []}, "outcomes cannot be empty"),
        ({"outcomes": 200}, "outcomes must be a list"),
        ({"outcomes": [500]}, r"outcomes \[500\] run out while a retry is still due"),
        ({"outcomes": [200, 500]}, "the task is delivered at attempt 1, so the 1 outcome"),
        ({"outcomes": [500, 500], "max_retry": 1, "url": "u"}, None),
        ({"outcomes": [500, 500, 500], "max_retry": 1}, "fails \\(max_retry=1\\) at attempt 2"),
        ({"outcomes": [700]}, "an outcome status must be 100-599, got 700"),
        ({"outcomes": [True]}, "an outcome is an HTTP status"),
        ({"outcomes": [object()]}, "an outcome is an HTTP status"),
        ({"outcomes": [""]}, "error text cannot be empty"),
        ({"outcomes": [200], "url": ""}, "url must be a non-empty str"),
        ({"outcomes": [200], "max_retry": -1}, "max_retry must be an int >= 0"),
        ({"outcomes": [200], "active_ms": 0}, "active_ms must be an int >= 1"),
    ],
)
def test_bad_plans_are_refused(
    any_fake: QStashTasksFake, kwargs: dict[str, object], complaint: str | None
) -> None:
    arguments: dict[str, object] = {"url": "https://example.com", **kwargs}
    if complaint is None:
        any_fake.simulate_delivery("msg_1", **arguments)  # type: ignore[arg-type]
        return
    with pytest.raises((ValueError, TypeError), match=complaint):
        any_fake.simulate_delivery("msg_1", **arguments)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        any_fake.tasks("msg_1")  # nothing half-stored


def test_the_clock_refuses_to_go_back_or_take_odd_values() -> None:
    from pytest_qstash_tasks import Clock

    clock = Clock("2026-01-01T00:00:00Z")
    assert clock.now == DEFAULT_START_MS
    assert repr(clock) == "<Clock 1767225600000 (2026-01-01T00:00:00.000+00:00)>"
    assert clock.advance(dt.timedelta(milliseconds=1.6)) == DEFAULT_START_MS + 2
    with pytest.raises(ValueError, match="the clock only moves forward; advance"):
        clock.advance(-1)
    assert clock.advance(2.5 * 1000) == DEFAULT_START_MS + 2 + 2500
    assert clock.advance(0.2) == DEFAULT_START_MS + 2 + 2501  # rounded up to a whole ms
    with pytest.raises(TypeError, match=r"advance\(\) takes ms \(int or float\) or a timedelta"):
        clock.advance("5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"advance\(\) takes a finite number of ms, got nan"):
        clock.advance(float("nan"))
    with pytest.raises(ValueError, match="the clock only moves forward: it is at"):
        clock.set(DEFAULT_START_MS)
    with pytest.raises(ValueError, match="use an aware datetime"):
        clock.set(dt.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        clock.set("tomorrow")
    with pytest.raises(ValueError, match="a timestamp must be >= 0 ms"):
        Clock(-5)
    with pytest.raises(TypeError, match="a timestamp must be unix milliseconds"):
        Clock(True)
    with pytest.raises(TypeError, match="a timestamp must be unix milliseconds"):
        Clock(1.5)  # type: ignore[arg-type]


def test_backoff_follows_the_v1_formula() -> None:
    assert [backoff_ms(n) for n in range(8)] == [
        int(min(86_400, math.exp(2 * n)) * 1000) for n in range(8)
    ]
    with pytest.raises(ValueError, match="retried must be an int >= 0"):
        backoff_ms(-1)


@pytest.mark.qstash_tasks(start="2020-06-01T00:00:00Z")
def test_factories_follow_the_fake_clock(any_fake: QStashTasksFake) -> None:
    from pytest_qstash_tasks import make_task, make_tasks

    any_fake.clock.advance(dt.timedelta(hours=1))
    now = any_fake.clock.now
    for task in [*make_tasks(300), make_task(state="delivered")]:
        assert task.timeline_at is not None
        assert task.timeline_at <= now
        assert task.completed_at <= now
        assert task.last_error_at <= now
    assert max(t.timeline_at or 0 for t in make_tasks(50)) > now - 86_400_000


def test_every_field_of_the_wire_through_each_phase() -> None:
    """What a client reads at each step of [500, "boom", 200]: the fields QStash always
    sends, zero until they mean something."""
    first_retry = 200 + 500 + backoff_ms(1)
    second_retry = first_retry + 500 + backoff_ms(2)
    steps = [
        (0, "created", 0, "", 0, 200, 0),
        (100, "planned", 0, "", 0, 200, 0),
        (200, "active", 0, "", 0, 200, 0),
        (700, "error", 1, "HTTP status 500", 700, first_retry, 0),
        (first_retry - 100, "planned", 1, "HTTP status 500", 700, first_retry, 0),
        (first_retry, "active", 1, "HTTP status 500", 700, first_retry, 0),
        (first_retry + 500, "error", 2, "boom", first_retry + 500, second_retry, 0),
        (second_retry, "active", 2, "boom", first_retry + 500, second_retry, 0),
    ]
    with QStashTasksMock() as fake:
        fake.simulate_delivery(
            "m", url="https://example.com/hook", outcomes=[500, "boom", 200], task_id="t1"
        )
        with client_for(fake) as client:

            def read(at: int) -> dict[str, object]:
                fake.clock.set(DEFAULT_START_MS + at)
                (task,) = client.get("/v1/messages/m/tasks").json()["tasks"]
                return dict(task)

            for at, state, retried, error, error_at, next_at, done_at in steps:
                assert read(at) == {
                    "taskId": "t1",
                    "messageId": "m",
                    "url": "https://example.com/hook",
                    "maxRetry": 3,
                    "state": state,
                    "retried": retried,
                    "error": error,
                    "lastErrorAt": DEFAULT_START_MS + error_at if error_at else 0,
                    "nextProcessAt": DEFAULT_START_MS + next_at,
                    "completedAt": done_at,
                }, f"at +{at} ms"
            assert read(second_retry + 500) == {
                "taskId": "t1",
                "messageId": "m",
                "url": "https://example.com/hook",
                "maxRetry": 3,
                "state": "delivered",
                "retried": 2,
                "error": "boom",
                "lastErrorAt": DEFAULT_START_MS + first_retry + 500,
                "nextProcessAt": 0,
                "completedAt": DEFAULT_START_MS + second_retry + 500,
            }


@pytest.mark.parametrize(
    ("outcome", "state"),
    [(199, "failed"), (200, "delivered"), (299, "delivered"), (300, "failed"), (599, "failed")],
)
def test_statuses_at_the_ends_of_their_class(outcome: int, state: str) -> None:
    fake = QStashTasksMock()
    fake.simulate_delivery("m", url="https://x", outcomes=[outcome], max_retry=0)
    fake.clock.advance(60_000)
    (task,) = fake.tasks("m")
    assert task.state == state
    assert fake.fail_next(599).status == 599
    with pytest.raises(ValueError, match="error status 400-599, got 600"):
        fake.fail_next(600)
    with pytest.raises(ValueError, match="error status 400-599, got 399"):
        fake.fail_next(399)
