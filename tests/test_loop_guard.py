"""The loop guard's bookkeeping: what counts as the same request again, and for whom."""

from __future__ import annotations

import asyncio

import pytest

from pytest_qstash_tasks import (
    QStashTasksFake,
    QStashTasksLoopError,
)
from tests.helpers import async_client_for, client_for, forget_stops, in_process_only


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
    forget_stops(any_fake)  # the guard was the point


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


def test_a_keep_alive_client_s_first_request_counts_with_the_rest() -> None:
    import requests

    from pytest_qstash_tasks import QStashTasksServer

    with QStashTasksServer(max_identical_requests=2) as fake:
        fake.add_message("m")
        with requests.Session() as session:
            statuses = [
                session.get(
                    fake.base_url + "/v1/messages/m/tasks",
                    headers={"Authorization": "Bearer t"},
                    timeout=5,
                ).status_code
                for _ in range(3)
            ]
        forget_stops(fake)  # the guard was the point
    assert statuses == [200, 200, 508]


@in_process_only
def test_requests_held_back_by_a_delay_do_not_count_as_repeats(any_fake: QStashTasksFake) -> None:
    any_fake.add("m", count=1)
    any_fake.max_identical_requests = 2
    any_fake.delay_next(0.01, times=3)
    with client_for(any_fake) as client:
        statuses = [client.get("/v1/messages/m/tasks").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        client.get("/v1/messages/m/tasks")
        client.get("/v1/messages/m/tasks")
        with pytest.raises(QStashTasksLoopError) as stopped:
            client.get("/v1/messages/m/tasks")
    assert any_fake.calls[-1].exception is stopped.value  # the call records what was raised
    forget_stops(any_fake)
