"""Schedules that fire on the fake's clock: made, changed, paused and deleted through the
official SDK and over HTTP, each firing a message delivered with its ``scheduleId``, and
read from the test's side (``qstash_tasks.schedules``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import DeliveryRequest, QStashTasksFake, QStashTasksMock
from tests.helpers import v2

APP = "https://app.example.com"
DAY_MS = 86_400_000
Sdk = Callable[..., QStash]


def recorder(fake: QStashTasksFake, into: list[tuple[int, str | None, bytes]]) -> Any:
    def receive(delivery: DeliveryRequest) -> int:
        into.append((fake.clock.now, delivery.header("Upstash-Schedule-Id"), delivery.body))
        return 200

    return receive


def test_a_berlin_schedule_fires_at_the_right_utc_instants_across_dst_for_400_days(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str | None, bytes]] = []
    any_fake.destination(f"{APP}/nightly").deliver_to(recorder(any_fake, received))
    start = any_fake.clock.now
    schedule_id = client.schedule.create(
        destination=f"{APP}/nightly", cron="CRON_TZ=Europe/Berlin 0 3 * * *", body="report"
    )
    any_fake.clock.advance(400 * DAY_MS)

    berlin = ZoneInfo("Europe/Berlin")
    expected = [
        int(moment.timestamp()) * 1000
        for moment in itertools.takewhile(
            lambda moment: moment.timestamp() * 1000 <= start + 400 * DAY_MS,
            CronSim("0 3 * * *", datetime.fromtimestamp(start / 1000, berlin)),
        )
    ]
    fired = any_fake.schedules.assert_fired(schedule_id, times=len(expected))
    assert fired == expected
    assert len(fired) == 400
    hours = {datetime.fromtimestamp(t / 1000, timezone.utc).hour for t in fired}
    assert hours == {1, 2}  # 03:00 in Berlin is 02:00 UTC in winter, 01:00 in summer
    assert [(at, sid, body) for at, sid, body in received] == [
        (t + 200, schedule_id, b"report") for t in expected
    ]  # each delivered, first attempt 200 ms after its message was made
    schedule = client.schedule.get(schedule_id)
    assert schedule.last_schedule_time == expected[-1]
    assert schedule.next_schedule_time == next(
        int(m.timestamp()) * 1000
        for m in CronSim("0 3 * * *", datetime.fromtimestamp(expected[-1] / 1000, berlin))
    )
    (last_message,) = schedule.last_schedule_states or {}
    assert (schedule.last_schedule_states or {})[last_message].value == "SUCCESS"


def test_an_upsert_by_id_changes_the_cron_without_a_second_schedule(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str | None, bytes]] = []
    any_fake.destination(f"{APP}/*").deliver_to(recorder(any_fake, received))
    first = client.schedule.create(
        destination=f"{APP}/sync", cron="0 * * * *", schedule_id="hourly-sync", retries=1
    )
    any_fake.clock.advance(2 * 3_600_000)
    again = client.schedule.create(
        destination=f"{APP}/sync", cron="*/30 * * * *", schedule_id="hourly-sync"
    )
    assert first == again == "hourly-sync"
    (schedule,) = client.schedule.list()
    assert (schedule.cron, schedule.retries) == ("*/30 * * * *", 3)  # the whole schedule
    assert schedule.created_at == any_fake.clock.start
    any_fake.clock.advance(3_600_000)
    fired = any_fake.schedules.assert_fired("hourly-sync", times=4)
    assert [b - a for a, b in itertools.pairwise(fired)] == [3_600_000, 1_800_000, 1_800_000]
    assert len(received) == 3  # the 03:00 firing's message is delivered 200 ms after it


def test_pause_stops_firings_and_resume_restarts_them(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    schedule_id = client.schedule.create(destination=f"{APP}/tick", cron="*/10 * * * *")
    any_fake.clock.advance(30 * 60_000)
    client.schedule.pause(schedule_id)  # PATCH, as both SDKs send
    assert v2(any_fake, "POST", f"/v2/schedules/{schedule_id}/pause").status_code == 200
    paused = client.schedule.get(schedule_id)
    assert (paused.paused, paused.next_schedule_time) == (True, None)
    any_fake.clock.advance(60 * 60_000)
    assert len(any_fake.schedules.get(schedule_id).fired_at) == 3
    assert v2(any_fake, "POST", f"/v2/schedules/{schedule_id}/resume").status_code == 200
    client.schedule.resume(schedule_id)  # resuming twice: a no-op as well
    resumed = any_fake.schedules.get(schedule_id)
    assert (resumed.paused, resumed.next_time) == (False, any_fake.clock.now + 10 * 60_000)
    any_fake.clock.advance(30 * 60_000)
    fired = any_fake.schedules.assert_fired(schedule_id, times=6)
    assert fired[3] - fired[2] == 70 * 60_000  # nothing while paused, nothing made up
    client.schedule.delete(schedule_id)
    any_fake.clock.advance(60 * 60_000)
    assert client.schedule.list() == []
    assert any_fake.schedules.list() == []


@pytest.mark.qstash_tasks(assert_all_requests_served=False)  # refusals are what it wants
def test_bad_schedules_are_refused_in_words_with_nothing_stored(
    any_fake: QStashTasksFake,
) -> None:
    def create(cron: str | None, destination: str = f"{APP}/x", **headers: str) -> Any:
        given = {**headers, **({"Upstash-Cron": cron} if cron is not None else {})}
        return v2(any_fake, "POST", f"/v2/schedules/{destination}", headers=given)

    for answer, status, error in [
        (create(None), 400, "the Upstash-Cron header is required: a cron expression"),
        (create("61 * * * *"), 400, "invalid cron '61 * * * *': Bad minute"),
        (create("0 0 30 2 *"), 400, "invalid cron '0 0 30 2 *': Bad day-of-month"),
        (create("* * *"), 400, "invalid cron '* * *': want five fields"),
        (create("* * * * * *"), 400, "invalid cron '* * * * * *': want five fields"),
        (create("CRON_TZ=Mars/Olympus 0 3 * * *"), 400, "unknown time zone 'Mars/Olympus'"),
        (create("CRON_TZ=../etc 0 3 * * *"), 400, "unknown time zone '../etc'"),
        (
            create("* * * * *", **{"Upstash-Schedule-Id": "no spaces"}),
            400,
            "invalid schedule id 'no spaces': use letters, digits, '.', '_', '-'",
        ),
        (create("* * * * *", **{"Upstash-Retries": "many"}), 400, "invalid Upstash-Retries"),
        (create("* * * * *", "no-such-group"), 404, "destination 'no-such-group' is neither"),
        (v2(any_fake, "GET", "/v2/schedules/scd_nope"), 404, "schedule 'scd_nope' not found"),
        (v2(any_fake, "DELETE", "/v2/schedules/scd_nope"), 404, "schedule 'scd_nope'"),
        (v2(any_fake, "PATCH", "/v2/schedules/scd_nope/pause"), 404, "schedule 'scd_nope'"),
        (v2(any_fake, "PUT", "/v2/schedules"), 405, "method PUT not allowed"),
    ]:
        assert answer.status_code == status, answer.text
        assert error in answer.json()["error"], answer.json()
    assert v2(any_fake, "GET", "/v2/schedules").json() == []
    assert any_fake.schedules.list() == []
    assert any_fake.published == []


def test_a_schedule_s_messages_carry_its_id_to_callbacks_the_dlq_and_the_logs(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    called: list[dict[str, Any]] = []
    any_fake.destination(f"{APP}/job").answers(500, 500)
    any_fake.destination(f"{APP}/failed").deliver_to(lambda d: called.append(d.json()) or 200)
    schedule_id = client.schedule.create(
        destination=f"{APP}/job", cron="0 12 * * *", retries=1,
        failure_callback=f"{APP}/failed", headers={"X-Tenant": "acme"}, label="nightly",
        delay="1m", timeout=30,
    )  # fmt: skip
    schedule = client.schedule.get(schedule_id)
    assert (schedule.failure_callback, schedule.headers, schedule.label) == (
        f"{APP}/failed",
        {"X-Tenant": ["acme"]},
        "nightly",
    )
    assert (schedule.delay, schedule.timeout) == (60, 30)
    any_fake.clock.advance(DAY_MS)
    (failure,) = called
    assert failure["scheduleId"] == schedule_id
    (entry,) = client.dlq.list(filter={"schedule_id": schedule_id}).messages
    assert entry.message_id == failure["sourceMessageId"]
    states = client.schedule.get(schedule_id).last_schedule_states or {}
    assert {k: v.value for k, v in states.items()} == {entry.message_id: "FAIL"}
    logs = client.log.list(filter={"schedule_id": schedule_id}).logs
    assert {log.message_id for log in logs} == {entry.message_id}


def test_a_schedule_to_a_url_group_publishes_to_its_endpoints_at_each_firing(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.url_group.upsert_endpoints(url_group="team", endpoints=[{"url": f"{APP}/a"}])
    schedule_id = client.schedule.create(destination="team", cron="0 * * * *")
    any_fake.clock.advance(3_600_000)
    client.url_group.upsert_endpoints(url_group="team", endpoints=[{"url": f"{APP}/b"}])
    any_fake.clock.advance(3_600_000)
    client.url_group.delete("team")
    any_fake.clock.advance(3_600_000)
    schedule = any_fake.schedules.get(schedule_id)
    assert [len(made) for made in schedule.message_ids] == [1, 2, 0]
    error = client.schedule.get(schedule_id).error or ""
    assert error.startswith("destination 'team' is neither a URL nor a known URL group")


def test_a_day_of_a_minute_s_schedule_is_no_runaway_chain() -> None:
    with QStashTasksMock(max_chained_events=100) as fake:
        client = QStash(fake.token, base_url=fake.base_url)
        schedule_id = client.schedule.create(destination=f"{APP}/tick", cron="* * * * *")
        fake.clock.advance(DAY_MS)
        assert len(fake.schedules.get(schedule_id).fired_at) == 1_440
        assert fake.problems() == []


def test_assert_fired_lists_the_schedules(any_fake: QStashTasksFake, client: QStash) -> None:
    with pytest.raises(AssertionError) as failed:
        any_fake.schedules.assert_fired("nightly")
    assert str(failed.value) == (
        "expected schedule 'nightly' to have fired at least once; it does not exist. "
        "The schedules:\n  (no schedule)"
    )
    client.schedule.create(destination=f"{APP}/x", cron="0 3 * * *", schedule_id="nightly")
    with pytest.raises(AssertionError) as failed:
        any_fake.schedules.assert_fired("nightly", times=1)
    next_time = any_fake.schedules.get("nightly").next_time
    assert str(failed.value) == (
        "expected schedule 'nightly' to have fired 1 time(s); it fired 0 time(s). The "
        f"schedules:\n  - nightly: '0 3 * * *' -> {APP}/x, fired 0 time(s), next at {next_time}"
    )
    with pytest.raises(KeyError, match="no schedule 'other' \\(there are: nightly\\)"):
        any_fake.schedules.get("other")
    any_fake.reset()
    assert any_fake.schedules.list() == []


@pytest.mark.asyncio
async def test_the_async_sdk_makes_and_reads_schedules() -> None:
    async with QStashTasksMock() as fake:
        client = AsyncQStash(fake.token, base_url=fake.base_url)
        schedule_id = await client.schedule.create(destination=f"{APP}/x", cron="*/5 * * * *")
        fake.clock.advance(15 * 60_000)
        (schedule,) = await client.schedule.list()
        assert schedule.schedule_id == schedule_id
        assert len(schedule.last_schedule_states or {}) == 1
        await client.schedule.pause(schedule_id)
        assert (await client.schedule.get(schedule_id)).paused
        await client.schedule.delete(schedule_id)
        assert await client.schedule.list() == []


def test_a_test_gives_a_schedule_the_app_made_in_an_earlier_run(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str | None, bytes]] = []
    any_fake.destination(f"{APP}/nightly").deliver_to(recorder(any_fake, received))
    made = any_fake.schedules.create(
        f"{APP}/nightly", "0 3 * * *", schedule_id="nightly", body="report",
        headers={"Upstash-Retries": "1"},
    )  # fmt: skip
    assert made == "nightly"
    assert client.schedule.get("nightly").retries == 1  # the app sees it as its own
    any_fake.clock.advance(2 * DAY_MS)
    assert [(sid, body) for _, sid, body in received] == [("nightly", b"report")] * 2
    with pytest.raises(ValueError, match=r"^invalid cron '0 3 \* \*': "):
        any_fake.schedules.create(f"{APP}/other", "0 3 * *")
    with pytest.raises(ValueError, match="invalid Upstash-Retries 'many'"):
        any_fake.schedules.create(f"{APP}/other", "0 3 * * *", headers={"Upstash-Retries": "many"})
    assert [s.schedule_id for s in any_fake.schedules.list()] == ["nightly"]


def test_a_bulk_cancel_by_schedule_id_cancels_that_schedule_s_messages_only(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    for schedule_id in ("a", "b"):
        client.schedule.create(
            destination=f"{APP}/{schedule_id}", cron="* * * * *", schedule_id=schedule_id
        )
    any_fake.clock.advance(60_000)  # the first firings: their messages not yet attempted
    answer = v2(any_fake, "DELETE", "/v2/messages?scheduleId=a")
    assert answer.json() == {"cancelled": 1}
    (made_a,) = any_fake.schedules.get("a").message_ids[0]
    (made_b,) = any_fake.schedules.get("b").message_ids[0]
    assert any_fake.tasks(made_a)[0].state.value == "canceled"
    assert any_fake.tasks(made_b)[0].state.value != "canceled"
