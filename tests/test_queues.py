"""Queues on the fake's clock: made, paused, resumed and deleted through the official SDK
and over HTTP; their messages delivered in order, at most ``parallelism`` at a time,
each waiting for the retries and callbacks of those before it; read from the test's side
(``qstash_tasks.queues``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from qstash import AsyncQStash, QStash

from pytest_qstash_tasks import DeliveryRequest, QStashTasksFake, QStashTasksMock
from tests.helpers import v2

APP = "https://app.example.com"
Sdk = Callable[..., QStash]


Received = list[tuple[int, str, int]]


def recorder(fake: QStashTasksFake, into: Received, answers: dict[str, list[int]]) -> Any:
    """A receiver that notes (time, body, retried) and answers from ``answers[body]``
    (200 once they run out)."""

    def receive(delivery: DeliveryRequest) -> int:
        body = delivery.text
        into.append((fake.clock.now, body, int(delivery.header("Upstash-Retried") or 0)))
        planned = answers.get(body, [])
        return planned.pop(0) if planned else 200

    return receive


def states(fake: QStashTasksFake, ids: list[str]) -> list[str]:
    return [fake.tasks(message_id)[0].state.value for message_id in ids]


def test_parallelism_1_delivers_in_order_while_the_first_message_retries(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: Received = []
    any_fake.destination(f"{APP}/work").deliver_to(
        recorder(any_fake, received, {"one": [500, 503]})
    )
    client.queue.upsert("orders", parallelism=1)
    ids = [
        client.message.enqueue(queue="orders", url=f"{APP}/work", body=body).message_id
        for body in ("one", "two", "three")
    ]
    any_fake.clock.advance(1_000)  # the first attempt failed; its retry waits
    assert [body for _, body, _ in received] == ["one"]
    assert states(any_fake, ids) == ["error", "created", "created"]
    assert client.queue.get("orders").lag == 3

    any_fake.clock.run_all()
    assert [(body, retried) for _, body, retried in received] == [
        ("one", 0), ("one", 1), ("one", 2), ("two", 0), ("three", 0),
    ]  # fmt: skip
    times = [at for at, _, _ in received]
    assert times == sorted(times)
    assert times[3] == times[2] + 500  # the next goes as the last attempt ends
    assert states(any_fake, ids) == ["delivered"] * 3
    queue = client.queue.get("orders")
    assert (queue.name, queue.parallelism, queue.lag, queue.paused) == ("orders", 1, 0, False)
    any_fake.queues.assert_drained("orders")


def test_parallelism_2_keeps_at_most_two_active(any_fake: QStashTasksFake, client: QStash) -> None:
    received: Received = []
    any_fake.destination(f"{APP}/work").deliver_to(
        recorder(any_fake, received, {"m1": [500], "m3": [500, 500]})
    )
    client.queue.upsert("pair", parallelism=2)
    for number in range(1, 7):
        client.message.enqueue(queue="pair", url=f"{APP}/work", body=f"m{number}")
    any_fake.clock.run_all()
    # Each message is under way from its first attempt until its last one ends.
    spans: dict[str, list[int]] = {}
    for at, body, _ in received:
        spans.setdefault(body, [at, at])[1] = at + 500
    assert sorted(spans) == [f"m{n}" for n in range(1, 7)]
    first = sorted(spans.values())
    edges = sorted([(start, 1) for start, _ in first] + [(end, -1) for _, end in first])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2
    starts = [spans[f"m{n}"][0] for n in range(1, 7)]
    assert starts == sorted(starts)  # first in, first to start


def test_a_paused_queue_holds_its_messages_and_resume_starts_at_the_earliest(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: Received = []
    any_fake.destination(f"{APP}/work").deliver_to(recorder(any_fake, received, {}))
    client.queue.upsert("held", parallelism=1, paused=True)
    ids = [
        client.message.enqueue(queue="held", url=f"{APP}/work", body=body).message_id
        for body in ("a", "b")
    ]
    any_fake.clock.advance(3_600_000)
    assert received == []
    assert states(any_fake, ids) == ["created", "created"]
    queue = client.queue.get("held")
    assert (queue.paused, queue.lag) == (True, 2)
    client.queue.pause("held")  # twice: no change
    client.queue.resume("held")
    resumed = any_fake.clock.now
    any_fake.clock.run_all()
    # The first goes at once, the next as its attempt ends.
    assert [(at - resumed, body) for at, body, _ in received] == [(0, "a"), (500, "b")]


def test_the_next_message_waits_for_the_callbacks_of_the_one_before(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    order: list[tuple[int, str]] = []
    any_fake.destination(f"{APP}/work").deliver_to(
        lambda d: order.append((any_fake.clock.now, d.text)) or 200
    )
    callback_answers = [500, 200]
    any_fake.destination(f"{APP}/callback").deliver_to(
        lambda d: order.append((any_fake.clock.now, "callback")) or callback_answers.pop(0)
    )
    client.message.enqueue(queue="q", url=f"{APP}/work", body="first", callback=f"{APP}/callback")
    client.message.enqueue(queue="q", url=f"{APP}/work", body="second")
    any_fake.clock.run_all()
    assert [what for _, what in order] == ["first", "callback", "callback", "second"]
    assert order[3][0] == order[2][0] + 500  # when the callback's retry ends


def test_an_enqueue_makes_its_queue_with_parallelism_1(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.message.enqueue(queue="made-by-enqueue", url=f"{APP}/work", body="x")
    (queue,) = client.queue.list()
    assert (queue.name, queue.parallelism, queue.paused, queue.lag) == (
        "made-by-enqueue", 1, False, 1,
    )  # fmt: skip
    assert queue.created_at == any_fake.clock.now
    batch = client.message.batch_json(
        [{"queue": "made-by-batch", "url": f"{APP}/work", "body": {"n": n}} for n in range(2)]
    )
    assert len(batch) == 2
    assert client.queue.get("made-by-batch").lag == 2
    any_fake.clock.run_all()
    assert [q.lag for q in client.queue.list()] == [0, 0]


def test_deleting_a_queue_cancels_what_still_waits_in_it(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    client.queue.upsert("doomed", parallelism=1)
    ids = [
        client.message.enqueue(queue="doomed", url=f"{APP}/work", body=str(n)).message_id
        for n in range(3)
    ]
    any_fake.clock.advance(300)  # the first is under way
    client.queue.delete("doomed")
    assert client.queue.list() == []
    any_fake.clock.run_all()
    assert states(any_fake, ids) == ["delivered", "canceled", "canceled"]
    assert any_fake.logs.states(ids[1]) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    with pytest.raises(Exception, match="queue 'doomed' not found"):
        client.queue.get("doomed")
    any_fake.assert_all_requests_served = False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"queueName": "bad name!", "parallelism": 1}, "invalid queueName 'bad name!'"),
        ({"queueName": "", "parallelism": 1}, "invalid queueName ''"),
        ({"parallelism": 1}, "invalid queueName None"),
        ({"queueName": "q", "parallelism": 0}, "invalid parallelism 0: want a whole number >= 1"),
        ({"queueName": "q", "parallelism": "2"}, "invalid parallelism '2'"),
        ({"queueName": "q", "parallelism": True}, "invalid parallelism True"),
        ({"queueName": "q", "paused": "yes"}, "invalid paused 'yes': want true or false"),
        ({"queueName": "q", "lag": 3}, "unknown field(s) ['lag']"),
        (["q"], "the body must be a JSON object"),
    ],
)
def test_bad_queues_are_refused_in_words_with_nothing_stored(
    any_fake: QStashTasksFake, body: Any, words: str
) -> None:
    answer = v2(any_fake, "POST", "/v2/queues", json=body)
    assert answer.status_code == 400
    assert words in answer.json()["error"]
    assert v2(any_fake, "GET", "/v2/queues").json() == []
    any_fake.assert_all_requests_served = False


def test_unknown_queues_and_paths_are_named(any_fake: QStashTasksFake) -> None:
    v2(any_fake, "POST", "/v2/queues", json={"queueName": "known"})
    for method, path in [
        ("GET", "/v2/queues/nope"),
        ("DELETE", "/v2/queues/nope"),
        ("POST", "/v2/queues/nope/pause"),
    ]:
        answer = v2(any_fake, method, path)
        assert answer.status_code == 404, path
        assert answer.json() == {"error": "queue 'nope' not found (queues: 'known')"}
    assert v2(any_fake, "POST", "/v2/queues", data=b"{").status_code == 400
    assert v2(any_fake, "PUT", "/v2/queues/known").status_code == 405
    assert v2(any_fake, "GET", "/v2/queues/known/pause").status_code == 405
    assert v2(any_fake, "POST", "/v2/queues/known/other").status_code == 404
    any_fake.assert_all_requests_served = False


def test_the_part_lists_queues_and_assert_drained_names_what_is_left(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    any_fake.destination(f"{APP}/work").answers(500, 500, 500, 500)
    client.queue.upsert("slow", parallelism=1)
    ids = [
        client.message.enqueue(queue="slow", url=f"{APP}/work", body=str(n)).message_id
        for n in range(2)
    ]
    any_fake.clock.advance(1_000)
    (queue,) = any_fake.queues.list()
    assert (queue.name, queue.parallelism, queue.paused, queue.lag) == ("slow", 1, False, 2)
    assert queue.active == (ids[0],)
    assert queue.waiting == (ids[1],)
    with pytest.raises(AssertionError) as raised:
        any_fake.queues.assert_drained("slow")
    assert str(raised.value) == (
        f"expected queue 'slow' to be drained; it holds 2 message(s):\n"
        f"  - {ids[0]} (under way: error, retried 1 of 3)\n"
        f"  - {ids[1]} (waiting: created)"
    )
    with pytest.raises(KeyError, match="no queue 'other' \\(there are: slow\\)"):
        any_fake.queues.get("other")
    any_fake.reset()
    assert any_fake.queues.list() == []


@pytest.mark.asyncio
async def test_the_async_sdk_makes_and_reads_queues() -> None:
    async with QStashTasksMock() as fake:
        client = AsyncQStash(fake.token, base_url=fake.base_url)
        await client.queue.upsert("q", parallelism=2)
        await client.message.enqueue_json(queue="q", url=f"{APP}/x", body={"n": 1})
        (queue,) = await client.queue.list()
        assert (queue.name, queue.parallelism, queue.lag) == ("q", 2, 1)
        await client.queue.pause("q")
        assert (await client.queue.get("q")).paused
        await client.queue.delete("q")
        assert await client.queue.list() == []


def test_a_cancelled_message_leaves_the_line_and_a_delayed_one_keeps_its_place(
    any_fake: QStashTasksFake, client: QStash
) -> None:
    received: Received = []
    any_fake.destination(f"{APP}/work").deliver_to(recorder(any_fake, received, {}))
    start = any_fake.clock.now
    # qstash-py's enqueue takes no delay; the Node SDK's takes publish's options: as sent.
    late = v2(
        any_fake, "POST", f"/v2/enqueue/q/{APP}/work", data="late", headers={"Upstash-Delay": "10s"}
    ).json()["messageId"]
    ids = [
        client.message.enqueue(queue="q", url=f"{APP}/work", body=body).message_id
        for body in ("gone", "next")
    ]
    assert client.queue.get("q").lag == 3
    client.message.cancel(ids[0])  # waiting: it leaves the line
    assert client.queue.get("q").lag == 2
    assert any_fake.queues.get("q").waiting == (ids[1],)
    any_fake.clock.run_all()
    # The delayed message holds its place until its delay is over and it is delivered.
    assert [(at - start, body) for at, body, _ in received] == [(10_000, "late"), (10_500, "next")]
    assert states(any_fake, [late, *ids]) == ["delivered", "canceled", "delivered"]


def test_the_queue_api_answers_each_request_as_documented(any_fake: QStashTasksFake) -> None:
    def answer(method: str, path: str, **kw: Any) -> tuple[int, Any]:
        got = v2(any_fake, method, path, **kw)
        return got.status_code, got.json() if got.content else None

    now = any_fake.clock.now
    assert answer("GET", "/v2/queues") == (200, [])
    assert answer("GET", "/v2/queues/q") == (404, {"error": "queue 'q' not found (queues: none)"})
    assert answer("POST", "/v2/queues", json={"queueName": "q"}) == (200, None)
    shown = {"name": "q", "parallelism": 1, "createdAt": now, "updatedAt": now, "lag": 0}
    assert answer("GET", "/v2/queues/q") == (200, {**shown, "paused": False})
    any_fake.clock.advance(1_000)
    assert answer("POST", "/v2/queues/q/pause") == (200, None)
    later = {**shown, "updatedAt": now + 1_000, "paused": True}
    assert answer("GET", "/v2/queues") == (200, [later])
    assert answer("POST", "/v2/queues/q/resume") == (200, None)
    # An upsert changes the settings, not the queue: made when it was, its line kept.
    assert answer("POST", "/v2/queues", json={"queueName": "q", "parallelism": 3}) == (200, None)
    status, again = answer("GET", "/v2/queues/q")
    assert status == 200
    assert (again["createdAt"], again["parallelism"], again["paused"]) == (now, 3, False)
    assert answer("POST", "/v2/queues", json={"queueName": "r"}) == (200, None)
    assert answer("GET", "/v2/queues/s")[1] == {"error": "queue 's' not found (queues: 'q', 'r')"}
    assert answer("POST", "/v2/queues/q/stop") == (
        404, {"error": "no such queue path '/v2/queues/q/stop'"},
    )  # fmt: skip
    assert answer("POST", "/v2/queues", data=b"[]") == (
        400, {"error": 'the body must be a JSON object: {"queueName": ..., "parallelism": 1}'},
    )  # fmt: skip
    assert answer("DELETE", "/v2/queues/q") == (200, None)
    assert [queue["name"] for queue in answer("GET", "/v2/queues")[1]] == ["r"]
    any_fake.assert_all_requests_served = False
