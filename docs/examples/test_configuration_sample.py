import httpx
import pytest

pytestmark = pytest.mark.qstash_tasks(page_size=10)  # every test in this module


@pytest.mark.qstash_tasks(end_cursor=None, token="s3cret")  # closest marker wins per key
def test_client_stops_on_a_missing_cursor(qstash_tasks):
    assert (qstash_tasks.page_size, qstash_tasks.end_cursor) == (10, None)
    qstash_tasks.add("msg_1", count=25)
    client = httpx.Client(
        base_url=qstash_tasks.base_url, headers={"Authorization": "Bearer s3cret"}
    )
    assert "cursor" not in client.get("/v1/messages/msg_1/tasks", params={"cursor": 1}).json()


@pytest.mark.qstash_tasks(assert_all_requests_served=False)
def test_an_unknown_message_on_purpose(qstash_tasks):
    client = httpx.Client(base_url=qstash_tasks.base_url, headers={"Authorization": "Bearer x"})
    response = client.get("/v1/messages/msg_nope/tasks")
    assert response.status_code == 404
    assert response.json() == {"error": "Message not found"}
    assert qstash_tasks.calls[0].miss == "unknown_message"
