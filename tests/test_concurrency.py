"""One fake under concurrent load: every call recorded once, faults fire as planned."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
import pytest

from pytest_qstash_tasks import QStashTasksMock
from tests.conftest import async_client_for, client_for

TASKS = "/v1/messages/msg_1/tasks"


@pytest.mark.asyncio
async def test_a_thousand_concurrent_async_requests(qstash_tasks: QStashTasksMock) -> None:
    stored = qstash_tasks.add("msg_1", count=250, timeline_at=lambda i: 100_000 - i)
    qstash_tasks.fail_next(503, times=25)
    qstash_tasks.rate_limit_next(times=25)
    qstash_tasks.raise_next(httpx.ConnectError, times=10)
    cursors = [None, 99_900, 99_800]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with async_client_for(qstash_tasks) as client:
        client._transport = httpx.AsyncHTTPTransport(limits=limits)

        async def one(number: int) -> int | str:
            cursor = cursors[number % 3]
            try:
                answer = await client.get(TASKS, params={"cursor": cursor} if cursor else {})
            except httpx.ConnectError:
                return "ConnectError"
            if answer.status_code == 200:
                body = answer.json()
                expected = {None: stored[:100], 99_900: stored[100:200], 99_800: stored[200:]}[
                    cursor
                ]
                assert [t["taskId"] for t in body["tasks"]] == [t.task_id for t in expected]
            return answer.status_code

        outcomes = Counter(await asyncio.gather(*(one(n) for n in range(1_000))))
    assert outcomes == {200: 940, 503: 25, 429: 25, "ConnectError": 10}
    calls = qstash_tasks.calls
    assert len(calls) == 1_000
    assert len({id(call.request) for call in calls}) == 1_000  # each request once
    assert Counter(call.fault is not None for call in calls)[True] == 60
    assert all(fault.fired == fault.times for fault in qstash_tasks.faults)


def test_eight_threads_of_sync_requests(qstash_tasks: QStashTasksMock) -> None:
    stored = qstash_tasks.add("msg_1", count=150, timeline_at=lambda i: 100_000 - i)
    qstash_tasks.fail_next(500, times=40)
    results: list[tuple[int, list[str]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        with client_for(qstash_tasks) as client:
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
    assert len(qstash_tasks.calls) == 400
