import datetime as dt

import httpx


def wait_until_settled(client: httpx.Client, message_id: str, sleep) -> dict[str, str]:
    """Your code: poll until every task is delivered or failed; url -> final state."""
    while True:
        tasks = client.get(f"/v1/messages/{message_id}/tasks").json()["tasks"]
        if all(task["state"] in ("delivered", "failed") for task in tasks):
            return {task["url"]: task["state"] for task in tasks}
        sleep(dt.timedelta(seconds=5))


def test_one_destination_recovers_one_fails(qstash_tasks):
    qstash_tasks.simulate_delivery("msg_1", url="https://a.example", outcomes=[500, 200])
    qstash_tasks.simulate_delivery(
        "msg_1", url="https://b.example", outcomes=[503, 503, 503, 503], max_retry=3
    )
    client = httpx.Client(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    )
    # Sleeping moves the fake's clock: no real waiting, and days pass in one step.
    final = wait_until_settled(client, "msg_1", sleep=qstash_tasks.clock.advance)
    assert final == {"https://a.example": "delivered", "https://b.example": "failed"}
    failed = next(t for t in qstash_tasks.tasks("msg_1") if t.url == "https://b.example")
    assert (failed.retried, failed.error) == (3, "HTTP status 503")


def test_the_state_at_a_given_time(qstash_tasks):
    qstash_tasks.simulate_delivery("msg_1", url="https://a.example", outcomes=[500, 200])
    qstash_tasks.clock.advance(dt.timedelta(seconds=1))
    (task,) = qstash_tasks.tasks("msg_1")
    assert task.state == "error"  # waiting for its retry
    assert task.retried == 1
    assert task.next_process_at > qstash_tasks.clock.now
