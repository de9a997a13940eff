"""Publish -> deliver -> retry -> delivered, with the apps' own receivers, offline.

The fake delivers what the app published to the app itself (in-process: the WSGI or
ASGI app is called directly), signed with keys the app reads from its environment, on
a clock the test moves.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from orders_fastapi import create_app as create_fastapi_app
from orders_flask import PUBLIC_URL
from orders_flask import create_app as create_flask_app
from qstash import QStash

from pytest_qstash_tasks import QStashTasksMock

HOOK = f"{PUBLIC_URL}/hooks/order"


@pytest.fixture(autouse=True)
def qstash_env(qstash_tasks: QStashTasksMock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in qstash_tasks.env.items():  # URL, token and signing keys
        monkeypatch.setenv(name, value)


def test_flask_publishes_receives_retries_and_shows_the_delivery(
    qstash_tasks: QStashTasksMock,
) -> None:
    orders: list[dict[str, object]] = []
    app = create_flask_app(orders, fail_next=1)
    qstash_tasks.destination(HOOK).deliver_to(app)  # QStash calls the app itself
    web: FlaskClient = app.test_client()

    message_id = web.post("/orders", json={"id": 7, "total": 25}).get_json()["messageId"]
    qstash_tasks.assert_published(HOOK, json={"id": 7, "total": 25})
    assert web.get(f"/orders/{message_id}/delivery").get_json()["state"] == "created"

    qstash_tasks.clock.advance(1_000)  # the first attempt: the hook fails
    assert orders == []
    assert web.get(f"/orders/{message_id}/delivery").get_json() == {"state": "error", "retried": 1}
    qstash_tasks.clock.advance(60_000)  # past QStash's backoff: the retry succeeds
    assert orders == [{"id": 7, "total": 25}]
    assert web.get(f"/orders/{message_id}/delivery").get_json() == {
        "state": "delivered",
        "retried": 1,
    }
    first, second = qstash_tasks.assert_delivered(HOOK, times=2)
    assert (first.status, first.answer_body, second.status) == (500, b"database unavailable", 204)


def test_fastapi_receives_after_a_failed_attempt(qstash_tasks: QStashTasksMock) -> None:
    orders: list[dict[str, object]] = []
    qstash_tasks.destination(HOOK).deliver_to(create_fastapi_app(orders, fail_next=1))
    client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
    message_id = client.message.publish_json(url=HOOK, body={"id": 8}).message_id

    qstash_tasks.clock.advance(61_000)
    assert orders == [{"id": 8}]
    (task,) = qstash_tasks.tasks(message_id)
    assert (task.state, task.retried, task.error) == (
        "delivered",
        1,
        "HTTP status 500: database unavailable",
    )


def test_a_receiver_tested_alone_with_a_signature_the_fake_makes(
    qstash_tasks: QStashTasksMock,
) -> None:
    orders: list[dict[str, object]] = []
    web = create_flask_app(orders).test_client()
    body = '{"id": 9}'
    signature = qstash_tasks.sign(body, HOOK)  # as QStash would sign it, now
    headers = {"Upstash-Signature": signature, "Content-Type": "application/json"}
    assert web.post("/hooks/order", data=body, headers=headers).status_code == 204
    headers["Upstash-Signature"] += "x"
    forged = web.post("/hooks/order", data=body, headers=headers)
    assert forged.status_code == 401
    assert orders == [{"id": 9}]
