import httpx
import pytest


def fetch_page(client: httpx.Client, path: str, params: dict, attempts: int = 4) -> dict:
    """Your code: retry 5xx answers and transport errors, a few times."""
    for attempt in range(attempts):
        try:
            response = client.get(path, params=params)
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
            continue
        if response.status_code < 500 or attempt == attempts - 1:
            response.raise_for_status()
            return response.json()
    raise AssertionError("unreachable")


@pytest.fixture
def client(qstash_tasks):
    with httpx.Client(
        base_url=qstash_tasks.base_url,
        headers={"Authorization": f"Bearer {qstash_tasks.token}"},
    ) as client:
        yield client


def test_two_failures_then_success(qstash_tasks, client):
    qstash_tasks.add("msg_1", count=3)
    qstash_tasks.fail_next(503, times=2)  # the next two requests get 503
    page = fetch_page(client, "/v1/messages/msg_1/tasks", {})
    assert len(page["tasks"]) == 3
    assert [call.status for call in qstash_tasks.calls] == [503, 503, 200]


def test_a_sequence_of_faults(qstash_tasks, client):
    qstash_tasks.add("msg_1", count=3)
    qstash_tasks.raise_next(httpx.ConnectError)  # then ...
    qstash_tasks.fail_next(502)  # ... then a normal answer
    assert len(fetch_page(client, "/v1/messages/msg_1/tasks", {})["tasks"]) == 3
    assert [call.fault for call in qstash_tasks.calls] == [
        "raise_next(ConnectError)",
        "fail_next(502)",
        None,
    ]


def test_only_the_second_page_fails(qstash_tasks, client):
    qstash_tasks.add("msg_1", count=150)
    qstash_tasks.fail_next(500, page=2)
    first = fetch_page(client, "/v1/messages/msg_1/tasks", {})
    second = fetch_page(client, "/v1/messages/msg_1/tasks", {"cursor": first["cursor"]})
    assert len(second["tasks"]) == 50
    qstash_tasks.assert_all_pages_fetched("msg_1")


def test_giving_up(qstash_tasks, client):
    qstash_tasks.add("msg_1", count=3)
    qstash_tasks.fail_next(500, times=4, error="internal error")
    with pytest.raises(httpx.HTTPStatusError, match="500 Internal Server Error"):
        fetch_page(client, "/v1/messages/msg_1/tasks", {})
