"""Polling code that sleeps for real: patch_sleep, and clock="wall" with time-machine."""

import asyncio
import datetime as dt
import time

import httpx
import pytest
import time_machine


def wait_until_delivered(client: httpx.Client, message_id: str) -> int:
    """Your code, unchanged: poll every five minutes with time.sleep; returns the polls."""
    polls = 0
    while True:
        polls += 1
        tasks = client.get(f"/v1/messages/{message_id}/tasks").json()["tasks"]
        if all(task["state"] == "delivered" for task in tasks):
            return polls
        time.sleep(300)


async def await_delivered(client: httpx.AsyncClient, message_id: str) -> int:
    """The same with asyncio.sleep."""
    polls = 0
    while True:
        polls += 1
        tasks = (await client.get(f"/v1/messages/{message_id}/tasks")).json()["tasks"]
        if all(task["state"] == "delivered" for task in tasks):
            return polls
        await asyncio.sleep(300)


def client_for(fake) -> httpx.Client:
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"})


@pytest.mark.qstash_tasks(patch_sleep=True)
def test_time_sleep_moves_the_fake_clock(qstash_tasks):
    # Four failures first: the last retry is due about 56 minutes after creation.
    outcomes = [500, 500, 500, 500, 200]
    qstash_tasks.simulate_delivery("msg_1", url="https://a.example", outcomes=outcomes, max_retry=4)
    with client_for(qstash_tasks) as client:
        assert wait_until_delivered(client, "msg_1") == 13  # in milliseconds of real time
    assert qstash_tasks.clock.now - qstash_tasks.clock.start == 12 * 300_000


@pytest.mark.asyncio
@pytest.mark.qstash_tasks(patch_sleep=True)
async def test_asyncio_sleep_moves_the_fake_clock(qstash_tasks):
    qstash_tasks.simulate_delivery("msg_1", url="https://a.example", outcomes=[500, 200])
    headers = {"Authorization": f"Bearer {qstash_tasks.token}"}
    async with httpx.AsyncClient(base_url=qstash_tasks.base_url, headers=headers) as client:
        assert await await_delivered(client, "msg_1") == 2


@pytest.mark.qstash_tasks(clock="wall")
def test_time_machine_moves_the_fake_clock(qstash_tasks):
    launch = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
    with time_machine.travel(launch, tick=False) as traveller:
        qstash_tasks.simulate_delivery("msg_1", url="https://a.example", outcomes=[500, 200])
        with client_for(qstash_tasks) as client:
            (task,) = client.get("/v1/messages/msg_1/tasks").json()["tasks"]
            assert task["state"] == "created"
            traveller.shift(dt.timedelta(minutes=1))
            (task,) = client.get("/v1/messages/msg_1/tasks").json()["tasks"]
    assert (task["state"], task["retried"]) == ("delivered", 1)
