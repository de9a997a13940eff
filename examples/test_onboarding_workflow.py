"""An onboarding workflow run end to end on the fake's clock: the welcome, three days
asleep in no time, the activity check made by QStash, and a follow-up only for users who
did not come back."""

from __future__ import annotations

import datetime as dt

import pytest
from onboarding_workflow import ANALYTICS, PUBLIC_URL, create_app
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import DeliveryRequest, QStashTasksMock

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def qstash_env(qstash_tasks: QStashTasksMock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in qstash_tasks.env.items():  # URL, token and signing keys
        monkeypatch.setenv(name, value)


@pytest.fixture
def client(qstash_tasks: QStashTasksMock) -> AsyncQStash:
    """The QStash client the workflow publishes its steps with."""
    return AsyncQStash(qstash_tasks.token, base_url=qstash_tasks.base_url)


def analytics(active: set[str]) -> object:
    """The analytics service: which users came back."""

    def answer(delivery: DeliveryRequest) -> tuple[int, bytes]:
        email = delivery.json()["email"]
        return 200, b'{"active": true}' if email in active else b'{"active": false}'

    return answer


def start(qstash_tasks: QStashTasksMock, email: str) -> None:
    """How the app's sign-up starts the workflow: a publish to its URL."""
    sdk = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
    sdk.message.publish_json(url=f"{PUBLIC_URL}/workflows/onboarding", body={"email": email})


def test_a_user_who_did_not_come_back_gets_a_follow_up_after_three_days(
    qstash_tasks: QStashTasksMock, client: AsyncQStash
) -> None:
    mailbox: list[tuple[str, str]] = []
    qstash_tasks.destination(f"{PUBLIC_URL}/workflows/*").deliver_to(create_app(client, mailbox))
    qstash_tasks.destination(ANALYTICS).deliver_to(analytics(active=set()))
    start(qstash_tasks, "ada@example.com")

    qstash_tasks.clock.advance(dt.timedelta(days=2))
    assert mailbox == [("ada@example.com", "Welcome!")]  # still asleep

    qstash_tasks.clock.run_all()
    assert mailbox == [("ada@example.com", "Welcome!"), ("ada@example.com", "We miss you")]
    run = qstash_tasks.workflows.assert_run_succeeded()
    assert [step.name for step in run.steps] == [
        "welcome",
        "three days",
        "check activity",
        "follow-up",
    ]
    assert run.steps[-1].out is True
    assert run.steps[2].created_at - run.steps[1].created_at >= 3 * DAY_MS


def test_an_active_user_gets_no_follow_up(
    qstash_tasks: QStashTasksMock, client: AsyncQStash
) -> None:
    mailbox: list[tuple[str, str]] = []
    qstash_tasks.destination(f"{PUBLIC_URL}/workflows/*").deliver_to(create_app(client, mailbox))
    qstash_tasks.destination(ANALYTICS).deliver_to(analytics(active={"bo@example.com"}))
    start(qstash_tasks, "bo@example.com")

    qstash_tasks.clock.run_all()

    assert mailbox == [("bo@example.com", "Welcome!")]
    assert qstash_tasks.workflows.assert_run_succeeded().steps[-1].out is False


def test_an_analytics_outage_still_sends_the_follow_up(
    qstash_tasks: QStashTasksMock, client: AsyncQStash
) -> None:
    mailbox: list[tuple[str, str]] = []
    qstash_tasks.destination(f"{PUBLIC_URL}/workflows/*").deliver_to(create_app(client, mailbox))
    qstash_tasks.destination(ANALYTICS).answers(503)  # QStash makes the call: it meets a 503
    start(qstash_tasks, "cy@example.com")

    qstash_tasks.clock.run_all()

    run = qstash_tasks.workflows.assert_run_succeeded()
    assert run.steps[2].out == {"status": 503, "body": "", "header": {}}
    assert mailbox == [("cy@example.com", "Welcome!"), ("cy@example.com", "We miss you")]
