"""requests in the test's own process (the requests extra), beside your own responses
mocks and pytest-httpx."""

import httpx
import requests
import responses


def report(token: str, message_id: str) -> int:
    """Your code: count a message's tasks with requests, following the cursors."""
    total, cursor = 0, None
    url = f"https://qstash.upstash.io/v1/messages/{message_id}/tasks"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        while True:
            params = {"cursor": cursor} if cursor else {}
            page = session.get(url, params=params, timeout=5).json()
            total += len(page["tasks"])
            cursor = page.get("cursor")
            if not cursor:
                return total


def test_requests_in_process(qstash_tasks):
    qstash_tasks.add("msg_123", count=250)
    assert report(qstash_tasks.token, "msg_123") == 250
    qstash_tasks.assert_all_pages_fetched("msg_123")


@responses.activate
def test_beside_your_own_responses_mocks(qstash_tasks):
    # Your routes answer your hosts; the fake answers QStash's tasks endpoint.
    responses.add(responses.GET, "https://api.example.com/owner", json={"name": "ada"})
    qstash_tasks.add("msg_123", count=3)
    assert requests.get("https://api.example.com/owner", timeout=5).json() == {"name": "ada"}
    assert report(qstash_tasks.token, "msg_123") == 3


def test_beside_pytest_httpx(httpx_mock, qstash_tasks):
    # In either order: QStash's requests reach the fake, the rest httpx_mock.
    httpx_mock.add_response(url="https://api.example.com/owner", json={"name": "ada"})
    qstash_tasks.add("msg_123", count=3)
    auth = {"Authorization": f"Bearer {qstash_tasks.token}"}
    with httpx.Client(headers=auth) as client:
        assert client.get("https://api.example.com/owner").json() == {"name": "ada"}
        page = client.get(f"{qstash_tasks.base_url}/v1/messages/msg_123/tasks").json()
    assert len(page["tasks"]) == 3
