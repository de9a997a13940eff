"""Any client, over a real socket: requests, aiohttp and a subprocess."""

import json
import os
import subprocess
import sys

import aiohttp
import pytest
import requests


def report(base_url: str, token: str, message_id: str) -> int:
    """Your code: count a message's tasks with requests, following the cursors."""
    total, cursor = 0, None
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        while True:
            params = {"cursor": cursor} if cursor else {}
            url = f"{base_url}/v1/messages/{message_id}/tasks"
            page = session.get(url, params=params, timeout=5).json()
            total += len(page["tasks"])
            cursor = page.get("cursor")
            if not cursor:
                return total


def test_requests(qstash_tasks_server):
    qstash_tasks_server.add("msg_123", count=250)
    assert report(qstash_tasks_server.base_url, qstash_tasks_server.token, "msg_123") == 250
    qstash_tasks_server.assert_all_pages_fetched("msg_123")


@pytest.mark.asyncio
async def test_aiohttp(qstash_tasks_server):
    qstash_tasks_server.add("msg_123", count=3)
    headers = {"Authorization": f"Bearer {qstash_tasks_server.token}"}
    async with (
        aiohttp.ClientSession(qstash_tasks_server.base_url, headers=headers) as session,
        session.get("/v1/messages/msg_123/tasks") as answer,
    ):
        assert len((await answer.json())["tasks"]) == 3


SCRIPT = """
import json, os, urllib.request
request = urllib.request.Request(
    os.environ["QSTASH_URL"] + "/v1/messages/msg_123/tasks",
    headers={"Authorization": "Bearer " + os.environ["QSTASH_TOKEN"]},
)
print(len(json.load(urllib.request.urlopen(request))["tasks"]))
"""


def test_a_subprocess(qstash_tasks_server):
    qstash_tasks_server.add("msg_123", count=7)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, **qstash_tasks_server.env},  # QSTASH_URL and QSTASH_TOKEN
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == 7
    qstash_tasks_server.assert_called("msg_123", times=1)
