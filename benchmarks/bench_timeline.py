"""The timeline side by side: the wall clock's lateness against ``threading.Timer``, its
wake-ups while idle, and a chain of receiver-published messages against as many
published by the test. Used by bench.py."""

from __future__ import annotations

import gc
import statistics
import threading
import time
from pathlib import Path

from pytest_qstash_tasks import DeliveryRequest, QStashTasksMock
from pytest_qstash_tasks._core.exchange import Request

APP = "https://app.example.com"
#: The due instants of one round, in ms from its start: spread, so that each wakes alone,
#: and past the 200 ms before a first attempt (earlier delays would all fall due at 200).
OFFSETS_MS = [250 + 13 * n for n in range(20)]


def _publish_request(url: str, delay_ms: int | None = None) -> Request:
    headers = [("authorization", "Bearer t"), ("content-type", "text/plain")]
    if delay_ms is not None:
        headers.append(("upstash-delay", f"{delay_ms}ms"))
    return Request(
        "POST",
        f"https://qstash.upstash.io/v2/publish/{url}",
        f"/v2/publish/{url}",
        headers=tuple(headers),
        body=b"x",
    )


def _wall_round() -> list[float]:
    """One round of the wall clock: messages due at OFFSETS_MS; for each, how late (ms)
    its receiver was called after the instant it was due."""
    arrived: dict[str, float] = {}
    done = threading.Event()

    def receiver(delivery: DeliveryRequest) -> int:
        arrived[delivery.header("Upstash-Message-Id") or ""] = time.time() * 1000
        if len(arrived) == len(OFFSETS_MS):
            done.set()
        return 200

    with QStashTasksMock(clock="wall") as fake:
        fake.destination(f"{APP}/*").deliver_to(receiver)
        for offset in OFFSETS_MS:
            fake._dispatch(_publish_request(f"{APP}/x", offset))
        if not done.wait(10):
            raise RuntimeError("the wall clock did not deliver within 10 s")
        return [arrived[attempt.message_id] - attempt.at for attempt in fake.deliveries]


def _timer_round() -> list[float]:
    """The same due instants on ``threading.Timer``: how late each callback ran."""
    late: list[float] = []
    done = threading.Event()
    start = int(time.time() * 1000)

    def fire(due: int) -> None:
        late.append(time.time() * 1000 - due)
        if len(late) == len(OFFSETS_MS):
            done.set()

    for offset in OFFSETS_MS:
        due = start + offset
        threading.Timer((due - time.time() * 1000) / 1000, fire, (due,)).start()
    if not done.wait(10):
        raise RuntimeError("the timers did not fire within 10 s")
    return late


def wall_lateness(rounds: int) -> dict[str, float]:
    """Median lateness of wall-clock deliveries (due -> receiver called) and of
    ``threading.Timer`` callbacks for the same due instants, rounds interleaved."""
    ours: list[float] = []
    timers: list[float] = []
    for _ in range(rounds):
        timers += _timer_round()
        ours += _wall_round()
    ours_ms, timer_ms = statistics.median(ours), statistics.median(timers)
    return {"ratio": ours_ms / timer_ms, "ours_ms": ours_ms, "timer_ms": timer_ms}


def _wakeups(thread: threading.Thread, seconds: float) -> int:
    """How often ``thread`` woke (voluntary context switches) in ``seconds`` of idling."""
    status = Path(f"/proc/self/task/{thread.native_id}/status")

    def switches() -> int:
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
        raise RuntimeError(f"no voluntary_ctxt_switches in {status}")

    before = switches()
    time.sleep(seconds)
    return switches() - before


def idle_wakeups(seconds: float) -> dict[str, float]:
    """Wake-ups of the wall clock's thread while nothing is due for an hour, and while
    nothing is on its agenda at all; a poller would wake once per poll."""
    with QStashTasksMock(clock="wall") as fake:
        (thread,) = [t for t in threading.enumerate() if t.name == "qstash-tasks-clock"]
        time.sleep(0.05)  # let it reach its wait
        idle = _wakeups(thread, seconds)
        fake._dispatch(_publish_request(f"{APP}/later", 3_600_000))
        time.sleep(0.05)  # it wakes once for the new first event, then waits on it
        waiting = _wakeups(thread, seconds)
    return {"idle": idle, "waiting": waiting}


def _deliver_chain(count: int, chained: bool) -> float:
    """CPU time to publish ``count`` messages and deliver each to a receiver: published by
    the test before the move, or each by the receiver of the one before."""
    fake = QStashTasksMock(max_chained_events=count + 1)
    publish = _publish_request(f"{APP}/step")
    left = [count - 1]

    def receiver(delivery: DeliveryRequest) -> int:
        if chained and left[0]:
            left[0] -= 1
            fake._dispatch(publish)
        return 200

    fake.destination(f"{APP}/step").deliver_to(receiver)
    gc.collect()
    gc.freeze()
    try:
        start = time.process_time()
        for _ in range(1 if chained else count):
            fake._dispatch(publish)
        fake.clock.run_all()
        took = time.process_time() - start
    finally:
        gc.unfreeze()
    if len(fake.deliveries) != count:
        raise RuntimeError(f"{len(fake.deliveries)} deliveries, not {count}")
    return took


def chain_vs_published(rounds: int, count: int = 10_000) -> float:
    """A chain of ``count`` receiver-published messages vs ``count`` published by the
    test, each delivered to a receiver: the ratio of medians of CPU time."""
    chain: list[float] = []
    plain: list[float] = []
    for _ in range(rounds):
        plain.append(_deliver_chain(count, chained=False))
        chain.append(_deliver_chain(count, chained=True))
    return statistics.median(chain) / statistics.median(plain)


def _deliver_minutes(minutes: int, scheduled: bool) -> float:
    """CPU time to deliver ``minutes`` messages to a handler: fired by a ``* * * * *``
    schedule over that many minutes of the clock, or published by the test and run."""
    fake = QStashTasksMock()
    fake.destination(f"{APP}/*").deliver_to(lambda delivery: 200)
    publish = _publish_request(f"{APP}/tick")
    gc.collect()
    gc.freeze()
    try:
        start = time.process_time()
        if scheduled:
            fake.schedules.create(f"{APP}/tick", "* * * * *")
            fake.clock.advance(minutes * 60_000 + 1_000)  # the last firing's attempt too
        else:
            for _ in range(minutes):
                fake._dispatch(publish)
            fake.clock.run_all()
        took = time.process_time() - start
        if len(fake.deliveries) != minutes:
            raise RuntimeError(f"{len(fake.deliveries)} deliveries, not {minutes}")
    finally:
        gc.unfreeze()
        del fake  # a year of messages is gigabytes: gone before the other side runs
        gc.collect()
    return took


def schedule_vs_published(rounds: int, minutes: int) -> float:
    """A ``* * * * *`` schedule's firings, each delivered to an in-process handler, vs as
    many messages published by the test: the ratio of medians of CPU time per message."""
    scheduled: list[float] = []
    plain: list[float] = []
    for _ in range(rounds):
        plain.append(_deliver_minutes(minutes, scheduled=False))
        scheduled.append(_deliver_minutes(minutes, scheduled=True))
    return statistics.median(scheduled) / statistics.median(plain)
