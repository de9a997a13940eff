"""A small app: summarise the delivery tasks of a QStash message.

It pages through ``GET /v1/messages/{messageId}/tasks`` with httpx, following the
cursor until QStash says there is no more, and retries 429 and 5xx answers.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class TaskReport:
    message_id: str
    total: int = 0
    by_state: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, error)

    @property
    def delivered_ratio(self) -> float:
        return self.by_state["delivered"] / self.total if self.total else 0.0


def client_from_env() -> httpx.Client:
    """An httpx client for QStash, configured like the official SDK."""
    return httpx.Client(
        base_url=os.environ.get("QSTASH_URL", "https://qstash.upstash.io"),
        headers={"Authorization": f"Bearer {os.environ['QSTASH_TOKEN']}"},
        timeout=10.0,
    )


def task_report(
    client: httpx.Client, message_id: str, *, attempts: int = 3, sleep: float = 0.0
) -> TaskReport:
    """Read every task of ``message_id`` and summarise them."""
    report = TaskReport(message_id)
    cursor: int | None = None
    while True:
        page = _get_page(client, message_id, cursor, attempts, sleep)
        for task in page["tasks"]:
            report.total += 1
            report.by_state[task["state"]] += 1
            if task["state"] == "failed":
                report.failures.append((task["url"], task.get("error", "")))
        cursor = page.get("cursor")
        if not cursor:  # 0 or absent: no more pages
            return report


def _get_page(
    client: httpx.Client, message_id: str, cursor: int | None, attempts: int, sleep: float
) -> dict[str, object]:
    params = {"cursor": cursor} if cursor else {}
    for attempt in range(1, attempts + 1):
        response = client.get(f"/v1/messages/{message_id}/tasks", params=params)
        if response.status_code in RETRY_STATUSES and attempt < attempts:
            time.sleep(sleep * attempt)
            continue
        response.raise_for_status()
        page: dict[str, object] = response.json()
        return page
    raise AssertionError("unreachable")  # pragma: no cover
