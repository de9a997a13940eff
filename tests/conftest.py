from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

SEED_EXAMPLE = Path(__file__).parent / "data" / "seed_example.json"


@pytest.fixture
def seed_example() -> dict[str, Any]:
    """The example response of the API page the project starts from."""
    data: dict[str, Any] = json.loads(SEED_EXAMPLE.read_text())
    return data


def walk(client: httpx.Client, message_id: str) -> tuple[list[dict[str, Any]], int]:
    """Follow the cursors like a careful client: (tasks seen, requests made)."""
    seen: list[dict[str, Any]] = []
    cursor: int | None = None
    requests = 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        response = client.get(f"/v1/messages/{message_id}/tasks", params=params)
        requests += 1
        response.raise_for_status()
        body = response.json()
        seen.extend(body["tasks"])
        cursor = body.get("cursor")
        if not cursor:
            return seen, requests


async def awalk(client: httpx.AsyncClient, message_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor: int | None = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        response = await client.get(f"/v1/messages/{message_id}/tasks", params=params)
        response.raise_for_status()
        body = response.json()
        seen.extend(body["tasks"])
        cursor = body.get("cursor")
        if not cursor:
            return seen


def client_for(fake: Any) -> httpx.Client:
    """An httpx client pointed at ``fake`` with the token it accepts."""
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"})


def async_client_for(fake: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {fake.token}"}
    )
