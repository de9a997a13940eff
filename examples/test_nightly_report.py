"""A nightly job on QStash, tested by moving the fake's clock a week: the app makes its
schedule at start, each night's firing reaches the app's job, a failing night is retried
and, failing for good, ends in the DLQ with the app's failure callback told."""

from __future__ import annotations

import datetime as dt

import pytest
from nightly_report import PUBLIC_URL, create_app
from qstash import QStash

from pytest_qstash_tasks import QStashTasksMock

DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def qstash_env(qstash_tasks: QStashTasksMock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in qstash_tasks.env.items():  # URL, token and signing keys
        monkeypatch.setenv(name, value)


def test_a_week_of_nights_makes_a_report_each(qstash_tasks: QStashTasksMock) -> None:
    reports: list[tuple[str, int]] = []
    app = create_app(
        reports, [], orders_of=lambda day: len(day), now=lambda: qstash_tasks.clock.now
    )
    qstash_tasks.destination(f"{PUBLIC_URL}/jobs/*").deliver_to(app)
    # The clock starts at 2026-01-01T00:00:00Z: the first night is at 03:00 Berlin, 02:00 UTC.
    qstash_tasks.clock.advance(7 * DAY)

    fired = qstash_tasks.schedules.assert_fired("nightly-report", times=7)
    assert [dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc).hour for t in fired] == [2] * 7
    assert [day for day, _ in reports] == ["2025-12-31"] + [f"2026-01-0{n}" for n in range(1, 7)]
    qstash_tasks.assert_delivered(f"{PUBLIC_URL}/jobs/nightly-report", status=204, times=7)


def test_a_restart_does_not_make_a_second_schedule(qstash_tasks: QStashTasksMock) -> None:
    for _ in range(3):  # three starts of the app
        create_app([], [], orders_of=len, now=lambda: qstash_tasks.clock.now)
    client = QStash(qstash_tasks.token, base_url=qstash_tasks.base_url)
    (schedule,) = client.schedule.list()
    assert (schedule.schedule_id, schedule.cron) == (
        "nightly-report",
        "CRON_TZ=Europe/Berlin 0 3 * * *",
    )


def test_a_night_the_database_is_down_is_retried_then_lost(qstash_tasks: QStashTasksMock) -> None:
    reports: list[tuple[str, int]] = []
    lost: list[str] = []
    down = {"2026-01-02"}

    def orders_of(day: str) -> int:
        if day in down:
            raise ConnectionError("database down")
        return 10

    app = create_app(reports, lost, orders_of, now=lambda: qstash_tasks.clock.now)
    qstash_tasks.destination(f"{PUBLIC_URL}/jobs/*").deliver_to(app)
    qstash_tasks.clock.advance(4 * DAY)

    assert [day for day, _ in reports] == ["2025-12-31", "2026-01-01", "2026-01-03"]
    (entry,) = qstash_tasks.dlq.assert_dead_lettered(f"{PUBLIC_URL}/jobs/nightly-report")
    assert entry.response_status == 503
    assert lost == [entry.message_id]  # the failure callback named the lost night
    third_night = qstash_tasks.schedules.get("nightly-report").message_ids[2]
    assert third_night == (entry.message_id,)
