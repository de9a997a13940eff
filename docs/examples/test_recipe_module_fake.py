import httpx
import pytest

from pytest_qstash_tasks import QStashTasksMock


@pytest.fixture(scope="module")
def shared_fake():
    """One fake for the whole module: set up the expensive data once."""
    with QStashTasksMock(base_url="https://qstash.example", seed=7) as fake:
        fake.add("msg_big", count=20_000)
        yield fake  # at the end of the module, verify() runs on a clean exit


@pytest.fixture
def client(shared_fake):
    with httpx.Client(
        base_url=shared_fake.base_url,
        headers={"Authorization": f"Bearer {shared_fake.token}"},
    ) as client:
        yield client


def test_first_page(client):
    assert len(client.get("/v1/messages/msg_big/tasks").json()["tasks"]) == 100


def test_newest_first(shared_fake, client):
    page = client.get("/v1/messages/msg_big/tasks").json()
    assert page["tasks"][0]["taskId"] == shared_fake.tasks("msg_big")[0].task_id
