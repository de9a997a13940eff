"""Flow control on the fake's clock (deliveries per key limited by parallelism and rate,
keys paused, pinned and reset through the official SDK), and the signing keys QStash
serves (``/v2/keys``), the same the fake signs with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from qstash import AsyncQStash, QStash, Receiver

from pytest_qstash_tasks import DeliveryRequest, QStashTasksFake, QStashTasksMock
from tests.helpers import v2

APP = "https://app.example.com"
Sdk = Callable[..., QStash]


def times_of(fake: QStashTasksFake, into: list[tuple[int, str]]) -> Any:
    def receive(delivery: DeliveryRequest) -> int:
        into.append((fake.clock.now, delivery.text))
        return 200

    return receive


def test_rate_2_per_minute_spreads_ten_messages_over_five_minutes(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str]] = []
    any_fake.destination(f"{APP}/sync").deliver_to(times_of(any_fake, received))
    start = any_fake.clock.now
    for number in range(10):
        client.message.publish(
            url=f"{APP}/sync", body=str(number),
            flow_control={"key": "tenant-1", "rate": 2, "period": "1m"},
        )  # fmt: skip
    any_fake.clock.advance(1_000)
    key = client.flow_control.get("tenant-1")
    assert (key.rate_max, key.rate_count, key.rate_period, key.wait_list_size) == (2, 2, 60, 8)
    assert key.rate_period_start == (start + 200) // 1000
    any_fake.clock.run_all()
    assert [body for _, body in received] == [str(n) for n in range(10)]  # in order
    minutes = [(at - start - 200) / 60_000 for at, _ in received]
    assert minutes == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert client.flow_control.get("tenant-1").wait_list_size == 0


def test_parallelism_2_starts_the_next_as_an_attempt_ends_retries_included(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str]] = []
    failing = {"0": [500]}

    def receive(delivery: DeliveryRequest) -> int:
        received.append((any_fake.clock.now, delivery.text))
        return failing.get(delivery.text, [200]).pop(0) if failing.get(delivery.text) else 200

    any_fake.destination(f"{APP}/work").deliver_to(receive)
    start = any_fake.clock.now
    ids = [
        client.message.publish(
            url=f"{APP}/work", body=str(n), flow_control={"key": "k", "parallelism": 2}
        ).message_id
        for n in range(5)
    ]
    any_fake.clock.advance(300)
    assert client.flow_control.get("k").parallelism_count == 2
    assert [t.state.value for i in ids for t in any_fake.tasks(i)] == [
        "active", "active", "created", "created", "created",
    ]  # fmt: skip
    any_fake.clock.run_all()
    at = {(body, n): t - start for n, (t, body) in enumerate(received)}
    assert [(body, t - start) for t, body in received][:5] == [
        ("0", 200), ("1", 200), ("2", 700), ("3", 700), ("4", 1_200),
    ]  # fmt: skip
    assert len(at) == 6  # message 0 retried once, when its backoff had passed
    assert client.flow_control.get_global_parallelism().parallelism_count == 0


def test_a_paused_key_holds_and_a_pin_overrides_the_messages_own_limits(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str]] = []
    any_fake.destination(f"{APP}/work").deliver_to(times_of(any_fake, received))
    client.message.publish(url=f"{APP}/work", body="a", flow_control={"key": "k", "rate": 5})
    any_fake.clock.run_all()
    client.flow_control.pause("k")
    for body in "bcd":
        client.message.publish(
            url=f"{APP}/work", body=body, flow_control={"key": "k", "parallelism": 3}
        )
    any_fake.clock.advance(3_600_000)
    assert [body for _, body in received] == ["a"]
    info = client.flow_control.get("k")
    assert (info.is_paused, info.wait_list_size, info.parallelism_max, info.rate_max) == (
        True, 3, 3, 0,
    )  # fmt: skip
    client.flow_control.pin("k", {"parallelism": 1})
    assert client.flow_control.get("k").is_pinned_parallelism
    resumed = any_fake.clock.now
    client.flow_control.resume("k")
    any_fake.clock.run_all()
    assert [(t - resumed, body) for t, body in received[1:]] == [(0, "b"), (500, "c"), (1000, "d")]
    client.flow_control.unpin("k", {"parallelism": True})
    info = client.flow_control.get("k")
    assert (info.is_pinned_parallelism, info.parallelism_max) == (False, 3)
    client.flow_control.reset_rate("k")
    assert client.flow_control.get("k").rate_count == 0
    client.flow_control.pin("k", {"rate": 123_456_789})  # nine digits: the most a rate takes
    info = client.flow_control.get("k")
    assert (info.rate_max, info.rate_period, info.is_pinned_rate) == (123_456_789, 1, True)
    (shown,) = any_fake.flow_control.list()
    assert (shown.key, shown.parallelism, shown.paused, shown.waiting) == ("k", 3, False, 0)


def test_a_cancelled_message_leaves_its_key_s_wait_list(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str]] = []
    any_fake.destination(f"{APP}/work").deliver_to(times_of(any_fake, received))
    ids = [
        client.message.publish(
            url=f"{APP}/work", body=str(n), flow_control={"key": "k", "rate": 1, "period": 60}
        ).message_id
        for n in range(3)
    ]
    any_fake.clock.advance(1_000)
    assert client.flow_control.get("k").wait_list_size == 2
    client.message.cancel(ids[1])
    assert client.flow_control.get("k").wait_list_size == 1
    assert any_fake.flow_control.get("k").waiting == 1
    any_fake.clock.run_all()
    assert [body for _, body in received] == ["0", "2"]
    assert received[1][0] - received[0][0] == 60_000  # the next period, not one more
    assert any_fake.tasks(ids[1])[0].state.value == "canceled"


def test_a_queue_and_a_schedule_take_flow_control_too(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: list[tuple[int, str]] = []
    any_fake.destination(f"{APP}/work").deliver_to(times_of(any_fake, received))
    start = any_fake.clock.now
    for body in "xy":  # qstash-py's enqueue takes no flow control: the headers, as sent
        v2(
            any_fake, "POST", f"/v2/enqueue/q/{APP}/work", data=body,
            headers={"Upstash-Flow-Control-Key": "slow", "Upstash-Flow-Control-Value": "rate=1, period=60"},
        )  # fmt: skip
    any_fake.clock.run_all()
    assert [(t - start, body) for t, body in received] == [(200, "x"), (60_200, "y")]
    client.schedule.create(
        destination=f"{APP}/work", cron="* * * * *", body="s",
        flow_control={"key": "slow", "rate": 1, "period": "2m"},
    )  # fmt: skip
    any_fake.clock.advance(10 * 60_000)
    fired = [t for t, body in received if body == "s"]
    assert len(fired) == 5  # ten firings, one delivery per two minutes
    assert client.flow_control.get("slow").wait_list_size == 5


def test_a_week_is_the_longest_period(any_fake: QStashTasksFake, client: QStash) -> None:
    for period in ("7d", 604_800, "6d23h60m"):
        client.message.publish(
            url=f"{APP}/x", body="x", flow_control={"key": "k", "rate": 1, "period": period}
        )
        assert client.flow_control.get("k").rate_period == 604_800


def test_a_retry_asks_its_key_again(any_fake: QStashTasksFake, client: QStash) -> None:
    received: list[tuple[int, str]] = []
    failing = ["1"]

    def receive(delivery: DeliveryRequest) -> int:
        received.append((any_fake.clock.now, delivery.text))
        if delivery.text in failing:
            failing.remove(delivery.text)
            return 500
        return 200

    any_fake.destination(f"{APP}/work").deliver_to(receive)
    start = any_fake.clock.now
    for body in "012":
        client.message.publish(
            url=f"{APP}/work", body=body, flow_control={"key": "k", "rate": 1, "period": 60}
        )
    any_fake.clock.run_all()
    # One attempt a minute, the retry of message 1 included: it waits its turn behind
    # message 2, which was in line first.
    assert [(at - start - 200) // 60_000 for at, _ in received] == [0, 1, 2, 3]
    assert [body for _, body in received] == ["0", "1", "2", "1"]


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Upstash-Flow-Control-Value": "rate=1"}, "needs Upstash-Flow-Control-Key"),
        ({"Upstash-Flow-Control-Key": "k"}, "needs Upstash-Flow-Control-Value"),
        (
            {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "parallelism=0"},
            "parallelism must be 1 or more, not 0",
        ),
        (
            {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "rate=fast"},
            "rate is a whole number",
        ),
        (
            {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "period=1m"},
            "invalid Upstash-Flow-Control-Value 'period=1m': give parallelism=N or rate=N "
            "(or both)",
        ),
        (
            {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "rate=1, period=8d"},
            "period can be at most a week",
        ),
        (
            {"Upstash-Flow-Control-Key": "", "Upstash-Flow-Control-Value": "rate=1"},
            "Upstash-Flow-Control-Key is empty",
        ),
        *[
            (
                {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": value},
                f"invalid Upstash-Flow-Control-Value {value!r}: {words}",
            )
            for value, words in [
                ("rate=1, rate=2", "rate is given twice"),
                ("rate=1, period=1w", "period is seconds or a duration such as 10s, 2m, 1h: '1w'"),
                ("rate=1234567890", "rate is a whole number: 'rate=1234567890'"),
                ("rate=1, period=604801", "period can be at most a week (7d), not 604801"),
                ("parallelism=1, period=1m", "period applies to a rate: give rate=N with it"),
                ("speed=1", "'speed=1' is not one of parallelism=N, rate=N, period=N[s|m|h|d]"),
            ]
        ],
    ],
)
def test_bad_flow_control_is_refused_in_words_with_nothing_stored(
    any_fake: QStashTasksFake, headers: dict[str, str], words: str
) -> None:
    answer = v2(any_fake, "POST", f"/v2/publish/{APP}/x", headers=headers, data=b"x")
    assert answer.status_code == 400
    assert words in answer.json()["error"], answer.json()
    assert any_fake.published == []
    assert v2(any_fake, "GET", "/v2/flowControl").json() == []
    any_fake.assert_all_requests_served = False


def test_unknown_keys_and_bad_pins_are_named(any_fake: QStashTasksFake, client: QStash) -> None:
    client.message.publish(url=f"{APP}/x", body="x", flow_control={"key": "known", "rate": 1})
    for method, path in [
        ("GET", "/v2/flowControl/nope"),
        ("POST", "/v2/flowControl/nope/pause"),
        ("POST", "/v2/flowControl/nope/pin?parallelism=1"),
    ]:
        answer = v2(any_fake, method, path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == (
            "flow-control key 'nope' not found: a key exists once a message is published "
            "with it (keys: 'known')"
        )
    for query, words in [
        ("parallelism=0", "invalid parallelism '0'"),
        ("rate=x", "invalid rate 'x'"),
        ("speed=1", "pin takes parallelism, rate and period"),
        ("", "pin takes parallelism, rate and period"),
    ]:
        answer = v2(any_fake, "POST", f"/v2/flowControl/known/pin?{query}")
        assert (answer.status_code, words in answer.json()["error"]) == (400, True), query
    answer = v2(any_fake, "POST", "/v2/flowControl/known/unpin?parallelism=yes")
    assert answer.status_code == 400
    info = client.flow_control.get("known")
    assert (info.is_pinned_parallelism, info.is_pinned_rate, info.rate_max) == (False, False, 1)
    assert v2(any_fake, "GET", "/v2/flowControl/known/other").status_code == 404
    assert v2(any_fake, "DELETE", "/v2/flowControl/known").status_code == 405
    client.message.publish(url=f"{APP}/x", body="x", flow_control={"key": "also", "rate": 1})
    assert (
        v2(any_fake, "GET", "/v2/flowControl/nope")
        .json()["error"]
        .endswith("(keys: 'known', 'also')")
    )
    with pytest.raises(KeyError, match="no flow-control key 'nope' \\(there are: known, also\\)"):
        any_fake.flow_control.get("nope")
    any_fake.assert_all_requests_served = False


def test_the_keys_endpoint_gives_the_keys_deliveries_are_signed_with(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    keys = client.signing_key.get()
    assert (keys.current, keys.next) == (
        any_fake.current_signing_key, any_fake.next_signing_key,
    )  # fmt: skip
    rotated = client.signing_key.rotate()
    assert rotated.current == keys.next
    assert rotated.next not in (keys.current, keys.next)
    assert (any_fake.current_signing_key, any_fake.next_signing_key) == (
        rotated.current, rotated.next,
    )  # fmt: skip
    verified: list[bool] = []
    receiver = Receiver(current_signing_key=rotated.current, next_signing_key=rotated.next)

    def receive(delivery: DeliveryRequest) -> int:
        receiver.verify(
            signature=delivery.header("Upstash-Signature") or "", body=delivery.text,
            url=f"{APP}/signed",
        )  # fmt: skip
        verified.append(True)
        return 200

    any_fake.destination(f"{APP}/signed").deliver_to(receive)
    client.message.publish(url=f"{APP}/signed", body="x")
    any_fake.clock.run_all()
    assert verified == [True]
    assert v2(any_fake, "DELETE", "/v2/keys").status_code == 405
    assert v2(any_fake, "GET", "/v2/keys/other").status_code == 404
    any_fake.assert_all_requests_served = False


@pytest.mark.asyncio
async def test_the_async_sdk_reads_flow_control_and_keys() -> None:
    async with QStashTasksMock() as fake:
        client = AsyncQStash(fake.token, base_url=fake.base_url)
        await client.message.publish(
            url=f"{APP}/x", body="x", flow_control={"key": "k", "parallelism": 1}
        )
        assert (await client.flow_control.get("k")).parallelism_max == 1
        await client.flow_control.pause("k")
        assert (await client.flow_control.get("k")).is_paused
        assert (await client.signing_key.get()).current == fake.current_signing_key


def test_the_flow_control_api_answers_each_request_as_documented(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    def answer(method: str, path: str) -> tuple[int, Any]:
        got = v2(any_fake, method, path)
        return got.status_code, got.json() if got.content else None

    assert answer("GET", "/v2/globalParallelism") == (
        200, {"parallelismMax": 0, "parallelismCount": 0},
    )  # fmt: skip
    assert answer("GET", "/v2/flowControl") == (200, [])
    assert answer("GET", "/v2/flowControl/k") == (
        404,
        {"error": "flow-control key 'k' not found: a key exists once a message is published "
         "with it (keys: none)"},
    )  # fmt: skip
    client.message.publish(url=f"{APP}/x", body="x", flow_control={"key": "k", "rate": 4})
    client.message.publish(url=f"{APP}/y", body="y", flow_control={"key": "j", "parallelism": 2})
    status, keys = answer("GET", "/v2/flowControl")
    assert (status, [k["flowControlKey"] for k in keys]) == (200, ["k", "j"])
    any_fake.clock.advance(300)  # both attempts under way
    assert answer("GET", "/v2/globalParallelism") == (
        200, {"parallelismMax": 0, "parallelismCount": 2},
    )  # fmt: skip
    assert answer("GET", "/v2/flowControl/k") == (
        200,
        {
            "flowControlKey": "k", "waitListSize": 0, "parallelismMax": 0,
            "parallelismCount": 1, "rateMax": 4, "rateCount": 1, "ratePeriod": 1,
            "ratePeriodStart": (any_fake.clock.now - 100) // 1000, "isPaused": False,
            "isPinnedParallelism": False, "isPinnedRate": False,
        },
    )  # fmt: skip
    # A period alone is refused until a rate is pinned; then it changes the pinned rate's.
    assert answer("POST", "/v2/flowControl/k/pin?period=60") == (
        400, {"error": "period applies to a rate: pin rate with it"},
    )  # fmt: skip
    assert answer("POST", "/v2/flowControl/k/pin?rate=2&period=30") == (200, None)
    info = client.flow_control.get("k")
    assert (info.rate_max, info.rate_period, info.is_pinned_rate) == (2, 30, True)
    assert answer("POST", "/v2/flowControl/k/pin?period=60") == (200, None)
    info = client.flow_control.get("k")
    assert (info.rate_max, info.rate_period, info.is_pinned_parallelism) == (2, 60, False)
    client.message.publish(url=f"{APP}/x", body="x", flow_control={"key": "k", "rate": 9})
    assert client.flow_control.get("k").rate_max == 2  # pinned: the message's is ignored
    assert answer("POST", "/v2/flowControl/k/unpin?rate=false") == (200, None)
    assert client.flow_control.get("k").is_pinned_rate
    assert answer("POST", "/v2/flowControl/k/unpin?rate=true&parallelism=false") == (200, None)
    info = client.flow_control.get("k")
    assert (info.rate_max, info.rate_period, info.is_pinned_rate) == (9, 1, False)
    for query in ("rate=yes", "speed=true", "rate"):
        assert answer("POST", f"/v2/flowControl/k/unpin?{query}") == (
            400, {"error": "unpin takes parallelism=true and/or rate=true"},
        ), query  # fmt: skip
    assert answer("POST", "/v2/flowControl/k/pin?rate=") == (
        400, {"error": "invalid rate '': want a whole number >= 1"},
    )  # fmt: skip
    assert answer("POST", "/v2/flowControl/k/other") == (
        404, {"error": "no such flow-control path '/v2/flowControl/k/other'"},
    )  # fmt: skip
    assert answer("POST", "/v2/flowControl/k/resetRate") == (200, None)
    assert answer("POST", "/v2/flowControl/k/pause") == (200, None)
    assert answer("POST", "/v2/flowControl/k/resume") == (200, None)
    assert answer("GET", "/v2/keys") == (
        200, {"current": any_fake.current_signing_key, "next": any_fake.next_signing_key},
    )  # fmt: skip
    old_next = any_fake.next_signing_key
    assert answer("GET", "/v2/keys/rotate") == (
        200, {"current": old_next, "next": any_fake.next_signing_key},
    )  # fmt: skip
    assert answer("GET", "/v2/keys/other") == (
        404, {"error": "no such signing-keys path '/v2/keys/other'"},
    )  # fmt: skip
    any_fake.assert_all_requests_served = False
