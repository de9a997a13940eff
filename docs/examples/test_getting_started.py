import httpx
from qstash import QStash


def task_count(client: httpx.Client, message_id: str) -> int:
    """Your code: count a message's tasks, following the cursors."""
    total, cursor = 0, None
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = client.get(f"/v1/messages/{message_id}/tasks", params=params).json()
        total += len(page["tasks"])
        cursor = page.get("cursor")
        if not cursor:
            return total


def test_task_count(qstash_tasks):
    qstash_tasks.add("msg_123", count=250)  # generated, valid tasks
    client = httpx.Client(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    )
    assert task_count(client, "msg_123") == 250
    qstash_tasks.assert_all_pages_fetched("msg_123")
    qstash_tasks.assert_called("msg_123", times=3)  # 100 + 100 + 50


def test_with_the_official_sdk(qstash_tasks):
    qstash_tasks.add("msg_1", count=5)
    client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
    page = client.http.request(path="/v1/messages/msg_1/tasks", method="GET")
    assert len(page["tasks"]) == 5
