"""One fake under concurrent load: every call recorded once, faults fire as planned."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
import pytest

from pytest_qstash_tasks import QStashTasksFake
from tests.helpers import client_for

TASKS = "/v1/messages/msg_1/tasks"


@pytest.mark.asyncio
async def test_a_thousand_concurrent_async_requests(
    any_fake: QStashTasksFake, request: pytest.FixtureRequest
) -> None:
    # Over a socket, httpcore's pool costs the client time quadratic in the requests
    # it queues: a thousand would measure the client, not the fake.
    total = 1_000 if request.node.callspec.params["any_fake"] == "in_process" else 200
    stored = any_fake.add("msg_1", count=250, timeline_at=lambda i: 100_000 - i)
    any_fake.fail_next(503, times=25)
    any_fake.rate_limit_next(times=25)
    any_fake.raise_next(httpx.ConnectError, times=10)
    cursors = [None, 99_900, 99_800]
    async with httpx.AsyncClient(
        base_url=any_fake.base_url,
        headers={"Authorization": f"Bearer {any_fake.token}"},
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        # Correctness under concurrency, not latency: on a loaded two-core CI machine
        # the last of 200 socket requests can wait past httpx's default 5 s.
        timeout=60,
    ) as client:

        async def one(number: int) -> int | str:
            cursor = cursors[number % 3]
            try:
                answer = await client.get(TASKS, params={"cursor": cursor} if cursor else {})
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                # In-process the client raises what was planned; over a socket the
                # server closes the connection without an answer.
                return "no answer"
            if answer.status_code == 200:
                body = answer.json()
                expected = {None: stored[:100], 99_900: stored[100:200], 99_800: stored[200:]}[
                    cursor
                ]
                assert [t["taskId"] for t in body["tasks"]] == [t.task_id for t in expected]
            return answer.status_code

        outcomes = Counter(await asyncio.gather(*(one(n) for n in range(total))))
    assert outcomes == {200: total - 60, 503: 25, 429: 25, "no answer": 10}
    calls = any_fake.calls
    assert len(calls) == total
    assert len({id(call.request) for call in calls}) == total  # each request once
    assert Counter(call.fault is not None for call in calls)[True] == 60
    assert all(fault.fired == fault.times for fault in any_fake.faults)


def test_eight_threads_of_sync_requests(any_fake: QStashTasksFake) -> None:
    stored = any_fake.add("msg_1", count=150, timeline_at=lambda i: 100_000 - i)
    any_fake.fail_next(500, times=40)
    results: list[tuple[int, list[str]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        with client_for(any_fake) as client:
            for _ in range(50):
                answer = client.get(TASKS)
                ids = (
                    [t["taskId"] for t in answer.json()["tasks"]]
                    if answer.status_code == 200
                    else []
                )
                with lock:
                    results.append((answer.status_code, ids))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 360, 500: 40}
    first_page = [t.task_id for t in stored[:100]]
    assert all(ids == first_page for status, ids in results if status == 200)
    assert len(any_fake.calls) == 400
