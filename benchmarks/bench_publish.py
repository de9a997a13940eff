"""Publishing side by side: a publish through the in-process fake vs a static respx route,
the cost of moving the clock over many pending deliveries, and reading one message among
many. Used by bench.py."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import httpx
import respx

from pytest_qstash_tasks import QStashTasksMock
from pytest_qstash_tasks._core.exchange import Request

HOOK = "https://app.example.com/hook"
PUBLISH_URL = f"https://qstash.upstash.io/v2/publish/{HOOK}"
AUTH = {"Authorization": "Bearer t"}
BODY = b'{"order": 7, "items": [1, 2, 3]}'


def publish_vs_static(
    interleaved: Callable[..., dict[str, float]], rounds: int, per_round: int = 20
) -> float:
    """One publish (SDK-shaped: JSON body, retries and a forwarded header) through the
    fake vs a static respx route answering the same JSON, to the same client."""
    fake = QStashTasksMock()
    client = httpx.Client(
        headers={**AUTH, "Content-Type": "application/json", "Upstash-Retries": "3"}
    )
    with fake:
        answer = client.post(PUBLISH_URL, content=BODY)
    static_router = respx.MockRouter(assert_all_called=False)
    static_router.post(PUBLISH_URL).respond(
        201, content=answer.content, headers={"content-type": "application/json"}
    )

    def publishes() -> None:
        for _ in range(per_round):
            client.post(PUBLISH_URL, content=BODY)

    def run_ours() -> None:
        fake.reset()  # each round as in a fresh test: messages and calls do not pile up
        fake.start()
        try:
            publishes()
        finally:
            fake.stop()

    def run_static() -> None:
        with static_router:
            publishes()

    result = interleaved({"static": run_static, "ours": run_ours}, rounds)
    return result["ours"] / result["static"]


def _with_pending(count: int) -> tuple[QStashTasksMock, str]:
    """A fake holding ``count`` published messages whose first attempt is still due; one
    of their ids. Published through the fake's own pipeline, without a transport."""
    fake = QStashTasksMock()
    fake.destination("https://app.example.com/*")  # scripted, so attempts ask the scripts
    request = Request(
        "POST",
        PUBLISH_URL,
        f"/v2/publish/{HOOK}",
        headers=(("authorization", "Bearer t"), ("content-type", "application/json")),
        body=BODY,
    )
    last = b""
    for _ in range(count):
        last = fake._dispatch(request).body
    fake._calls.clear()
    message_id = httpx.Response(201, content=last).json()["messageId"]
    return fake, message_id


def clock_growth(rounds: int) -> float:
    """Moving the clock across 100,000 pending deliveries vs 10,000 (each runs its one
    attempt), timed from the move to the first read that sees them delivered. The 10k
    side is timed as ten moves of ten fakes, as long as the 100k side, so that a
    scheduler hiccup does not swing the ratio (as in walk_growth)."""
    small: list[float] = []
    large: list[float] = []
    for _ in range(rounds):
        small.append(sum(_timed_move(10_000) for _ in range(10)) / 10)
        large.append(_timed_move(100_000))
    return statistics.median(large) / statistics.median(small)


def _timed_move(count: int) -> float:
    fake, message_id = _with_pending(count)
    # The collector's full passes over the live messages cost what holding them costs,
    # whatever the clock does (and land in one side's timing by chance): the objects
    # made so far are frozen out of them while the move is timed.
    gc.collect()
    gc.freeze()
    try:
        start = time.process_time()
        fake.clock.advance(2_000)
        (task,) = fake.tasks(message_id)
        took = time.process_time() - start
    finally:
        gc.unfreeze()
    assert task.state == "delivered"
    return took


def read_among_many(rounds: int, per_round: int = 200) -> float:
    """Reading one message's tasks with 100,000 other messages stored vs 10."""
    fakes = {}
    for others in (10, 100_000):
        fake, message_id = _with_pending(others)
        fake.clock.advance(2_000)
        fake.tasks(message_id)  # every delivery settled: the reads below change nothing
        fakes[others] = (fake, message_id)
    times: dict[int, list[float]] = {10: [], 100_000: []}
    for _ in range(rounds):
        for others, (fake, message_id) in fakes.items():
            start = time.process_time()
            for _ in range(per_round):
                fake.tasks(message_id)
            times[others].append(time.process_time() - start)
    return statistics.median(times[100_000]) / statistics.median(times[10])
