"""Behaviour at the edges the mutation audit found untested (issue 19): boundaries,
validation, ordering and the loop guard's bookkeeping, each as a user can observe it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_qstash_tasks import QStashTasksFake, QStashTasksLoopError, QStashTasksMock, make_task

from .conftest import async_client_for, client_for, in_process_only

START = 1767225600000  # 2026-01-01T00:00:00Z


def test_the_int64_cursor_edge(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.expect_unserved("bad_cursor", message_id="m")
    with client_for(any_fake) as client:
        largest = client.get("/v1/messages/m/tasks", params={"cursor": 2**63 - 1})
        beyond = client.get("/v1/messages/m/tasks", params={"cursor": 2**63})
    assert largest.status_code == 200
    assert (beyond.status_code, beyond.json()["error"]) == (
        400,
        "invalid cursor '9223372036854775808': want a unix timestamp in ms (integer >= 0)",
    )


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


def test_the_daily_reset_is_the_next_utc_midnight_from_any_time(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.clock.advance(5 * 3_600_000 + 1234)  # 05:00:01.234
    any_fake.rate_limit_next(daily=True)
    any_fake.rate_limit_next()
    with client_for(any_fake) as client:
        daily = client.get("/v1/messages/m/tasks")
        burst = client.get("/v1/messages/m/tasks")
    assert daily.headers["RateLimit-Reset"] == str(START // 1000 + 86_400)
    assert burst.headers["Burst-RateLimit-Reset"] == str(START // 1000 + 5 * 3600 + 2)


def test_fault_arguments_that_cannot_mean_anything_are_refused() -> None:
    fake = QStashTasksMock()
    with pytest.raises(ValueError, match="delay must be a number of seconds >= 0, got nan"):
        fake.fail_next(503, delay=float("nan"))
    with pytest.raises(ValueError, match=r"cursor must be an int >= 0, None .* got True"):
        fake.fail_next(503, cursor=True)  # type: ignore[arg-type]
    assert fake.faults == []


def test_a_duplicate_task_id_in_one_batch_is_refused_and_nothing_is_stored() -> None:
    fake = QStashTasksMock()
    task = make_task(seed=1, message_id="m")
    with pytest.raises(ValueError, match=f"message 'm' already has a task '{task.task_id}'"):
        fake.add("m", [task, task])
    assert fake.message_ids() == []


def test_added_tasks_older_and_newer_than_the_stored_ones_are_served_in_order() -> None:
    fake = QStashTasksMock()
    middle = [make_task(seed=i, message_id="m", timeline_at=START - 1000 * i) for i in (1, 2)]
    fake.add("m", middle)
    newest = make_task(seed=3, message_id="m", timeline_at=START)
    oldest = make_task(seed=4, message_id="m", timeline_at=START - 10_000)
    fake.add("m", [oldest, newest])
    assert fake.tasks("m") == [newest, *middle, oldest]


@in_process_only
def test_a_store_change_between_identical_requests_starts_the_count_again(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.add("m", count=1)
    any_fake.max_identical_requests = 3
    with client_for(any_fake) as client:
        for _ in range(3):
            client.get("/v1/messages/m/tasks")
        any_fake.add("other", count=1)  # nothing of 'm' changed, but the store did
        for _ in range(3):
            assert client.get("/v1/messages/m/tasks").status_code == 200
        any_fake.add_message("another")  # a second change starts the count again too
        for _ in range(3):
            assert client.get("/v1/messages/m/tasks").status_code == 200
        with pytest.raises(QStashTasksLoopError, match="sent 4 times in a row"):
            client.get("/v1/messages/m/tasks")
    any_fake._calls.loops.clear()  # the guard was the point


@in_process_only
@pytest.mark.asyncio
async def test_identical_requests_count_per_asyncio_task(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.max_identical_requests = 3
    async with async_client_for(any_fake) as client:

        async def three_polls() -> None:
            for _ in range(3):
                await client.get("/v1/messages/m/tasks")
                await asyncio.sleep(0)  # interleave with the other task

        # Six identical requests in a row from this thread, three from each task: no loop.
        await asyncio.gather(three_polls(), three_polls())
    assert len(any_fake.calls) == 6


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
    "register",
    [
        lambda fake, message_id: fake.add(message_id, count=1),
        lambda fake, message_id: fake.add_message(message_id),
        lambda fake, message_id: fake.add_pages(message_id, [{"tasks": []}]),
        lambda fake, message_id: fake.simulate_delivery(
            message_id, url="https://x", outcomes=[200]
        ),
    ],
    ids=["add", "add_message", "add_pages", "simulate_delivery"],
)
def test_a_message_id_that_cannot_be_in_a_path_is_refused(register: Any) -> None:
    fake = QStashTasksMock()
    with pytest.raises(ValueError, match=r"^a message id must be a non-empty str, got ''$"):
        register(fake, "")
    with pytest.raises(ValueError, match=r"^a message id cannot contain '/': 'a/b'$"):
        register(fake, "a/b")
    assert fake.message_ids() == []


def test_stored_tasks_and_scripted_pages_never_share_a_message() -> None:
    fake = QStashTasksMock()
    fake.add_pages("scripted", [{"tasks": []}])
    fake.add("stored", count=1)
    with pytest.raises(
        ValueError,
        match=r"^message 'scripted' is served from scripted pages; it cannot also hold "
        r"stored tasks$",
    ):
        fake.add("scripted", count=1)
    with pytest.raises(
        ValueError,
        match=r"^message 'stored' already holds stored tasks; scripted pages would hide them$",
    ):
        fake.add_pages("stored", [{"tasks": []}])
    with pytest.raises(ValueError, match=r"^message 'scripted' is served from scripted pages"):
        fake.simulate_delivery("scripted", url="https://x", outcomes=[200])
    assert len(fake.tasks("stored")) == 1
