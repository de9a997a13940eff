import asyncio

import httpx
import pytest


async def count_tasks(client: httpx.AsyncClient, message_id: str) -> int:
    """Your code, async."""
    total, cursor = 0, None
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = (await client.get(f"/v1/messages/{message_id}/tasks", params=params)).json()
        total += len(page["tasks"])
        cursor = page.get("cursor")
        if not cursor:
            return total


@pytest.mark.asyncio
async def test_with_pytest_asyncio(qstash_tasks):
    qstash_tasks.add("msg_1", count=250)
    async with httpx.AsyncClient(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    ) as client:
        assert await count_tasks(client, "msg_1") == 250


@pytest.mark.anyio
async def test_with_anyio(qstash_tasks):
    qstash_tasks.add("msg_1", count=5)
    async with httpx.AsyncClient(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    ) as client:
        assert await count_tasks(client, "msg_1") == 5


@pytest.mark.asyncio
async def test_a_slow_answer_times_out(qstash_tasks):
    qstash_tasks.add("msg_1", count=5)
    qstash_tasks.delay_next(0.5)  # awaited: the event loop keeps running
    async with httpx.AsyncClient(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    ) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(count_tasks(client, "msg_1"), timeout=0.1)
