"""A chain of messages (charge, then ship an hour later, then follow up a day later),
each step published by the receiver of the one before, run offline on the fake's clock:
every step at its own instant, in the one move of the clock that reaches it."""

from __future__ import annotations

import datetime as dt

import pytest
from shipping import PUBLIC_URL, create_app

from pytest_qstash_tasks import QStashTasksMock

HOUR, DAY = 3_600_000, 86_400_000


@pytest.fixture(autouse=True)
def qstash_env(qstash_tasks: QStashTasksMock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in qstash_tasks.env.items():  # URL, token and signing keys
        monkeypatch.setenv(name, value)


def test_each_step_runs_at_its_own_instant(qstash_tasks: QStashTasksMock) -> None:
    log: list[tuple[str, int, int]] = []
    app = create_app(log, now=lambda: qstash_tasks.clock.now)
    qstash_tasks.destination(f"{PUBLIC_URL}/hooks/*").deliver_to(app)
    start = qstash_tasks.clock.now

    assert app.test_client().post("/orders", json={"id": 7}).status_code == 202
    qstash_tasks.clock.advance(dt.timedelta(hours=2))  # charged, then shipped an hour later
    charged = start + 200  # the first attempt, 200 ms after the publish
    assert log == [("charge", 7, charged), ("ship", 7, charged + HOUR)]

    qstash_tasks.clock.advance(dt.timedelta(days=1))
    assert log[-1] == ("follow-up", 7, charged + HOUR + DAY)
    qstash_tasks.assert_delivered(f"{PUBLIC_URL}/hooks/follow-up", status=204, times=1)


def test_run_all_takes_the_whole_chain_and_says_how_long_it_took(
    qstash_tasks: QStashTasksMock,
) -> None:
    log: list[tuple[str, int, int]] = []
    app = create_app(log, now=lambda: qstash_tasks.clock.now)
    qstash_tasks.destination(f"{PUBLIC_URL}/hooks/*").deliver_to(app)
    web = app.test_client()
    web.post("/orders", json={"id": 1})
    web.post("/orders", json={"id": 2})

    took = qstash_tasks.clock.run_all()

    assert [step for step, _, _ in log] == ["charge"] * 2 + ["ship"] * 2 + ["follow-up"] * 2
    assert took == 200 + HOUR + DAY + 500  # the last attempt, and its half second
