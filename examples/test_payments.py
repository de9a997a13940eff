"""A failed payment, noticed: QStash retries the charge, gives up, calls the app's
failure callback and keeps the message in the DLQ, all on the fake's clock."""

from __future__ import annotations

import pytest
from payments import PUBLIC_URL, create_app
from qstash import QStash

from pytest_qstash_tasks import QStashTasksMock


@pytest.fixture(autouse=True)
def qstash_env(qstash_tasks: QStashTasksMock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in qstash_tasks.env.items():  # URL, token and signing keys
        monkeypatch.setenv(name, value)


def test_a_declined_card_is_recorded_with_its_dlq_entry(qstash_tasks: QStashTasksMock) -> None:
    failures: list[dict[str, object]] = []
    app = create_app(failures)
    qstash_tasks.destination(f"{PUBLIC_URL}/hooks/*").deliver_to(app)

    app.test_client().post("/payments", json={"order": 9, "card": "declined"})
    qstash_tasks.clock.run_all()  # four attempts over half an hour, then the callback

    (entry,) = qstash_tasks.dlq.assert_dead_lettered(f"{PUBLIC_URL}/hooks/charge")
    assert failures == [
        {
            "payment": {"order": 9, "card": "declined"},
            "reason": "card declined",
            "dlqId": entry.dlq_id,
        }
    ]
    qstash_tasks.assert_delivered(f"{PUBLIC_URL}/hooks/charge", status=402, times=4)
    client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
    assert [m.response_status for m in client.dlq.list().messages] == [402]


def test_a_good_card_leaves_nothing_to_notice(qstash_tasks: QStashTasksMock) -> None:
    failures: list[dict[str, object]] = []
    app = create_app(failures)
    qstash_tasks.destination(f"{PUBLIC_URL}/hooks/*").deliver_to(app)
    app.test_client().post("/payments", json={"order": 10, "card": "4242"})
    qstash_tasks.clock.run_all()
    assert failures == []
    assert qstash_tasks.dlq.list() == []
