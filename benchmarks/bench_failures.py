"""Failure paths side by side: a page of the DLQ and of the logs with 100,000 entries
stored against 100, and a delivery with a callback against one without. Used by
bench.py."""

from __future__ import annotations

import gc
import statistics
import time

from pytest_qstash_tasks import QStashTasksMock
from pytest_qstash_tasks._core.exchange import Request

APP = "https://app.example.com"


def _request(method: str, path: str, headers: tuple[tuple[str, str], ...] = ()) -> Request:
    return Request(
        method,
        f"https://qstash.upstash.io{path}",
        path,
        headers=(("authorization", "Bearer t"), *headers),
        body=b"x" if method == "POST" else b"",
    )


def _failed(count: int) -> QStashTasksMock:
    """A fake whose DLQ holds ``count`` entries (and its logs three times as many)."""
    fake = QStashTasksMock(default_answer=500)
    publish = _request("POST", f"/v2/publish/{APP}/x", (("upstash-retries", "0"),))
    for _ in range(count):
        fake._dispatch(publish)
    fake.clock.advance(1_000)
    fake._calls.clear()
    return fake


def pages_among_many(rounds: int, per_round: int = 50) -> dict[str, float]:
    """One page (100 entries) of the DLQ and of the logs with 100,000 failed messages
    stored vs 100: CPU time of the reads, medians of interleaved rounds."""
    fakes = {count: _failed(count) for count in (100, 100_000)}
    dlq = _request("GET", "/v2/dlq")
    logs = _request("GET", "/v2/logs")
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for count, fake in fakes.items():
            for name, request in (("dlq", dlq), ("logs", logs)):
                start = time.process_time()
                for _ in range(per_round):
                    fake._dispatch(request)
                times.setdefault((name, count), []).append(time.process_time() - start)
                fake._calls.clear()
    median = {key: statistics.median(values) for key, values in times.items()}
    return {
        "dlq": median[("dlq", 100_000)] / median[("dlq", 100)],
        "logs": median[("logs", 100_000)] / median[("logs", 100)],
    }


def _deliver(count: int, callback: bool, receiver: object) -> float:
    fake = QStashTasksMock()
    fake.destination(f"{APP}/*").deliver_to(receiver)  # the app and its callback
    headers = (("upstash-callback", f"{APP}/hook?callback"),) if callback else ()
    publish = _request("POST", f"/v2/publish/{APP}/hook", headers)
    # The collector's passes grow with every object alive, the fake's or not: twice the
    # messages would cost more than twice by the collector alone. Off while timed.
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(count):
            fake._dispatch(publish)
        fake.clock.run_all()
        took = time.process_time() - start
    finally:
        gc.enable()
    return took


def callback_cost(rounds: int, count: int = 1_000) -> dict[str, float]:
    """Publishing and delivering ``count`` messages with a callback vs without (the
    callback is a message of its own, delivered too), to a Flask app (the app and its
    callback route, as benchmark 8's) and to a bare handler: ratios of medians of CPU
    time."""
    from bench_deliveries import flask_app

    ratios = {}
    for name, receiver in (("flask", flask_app()), ("handler", lambda delivery: 200)):
        with_callback: list[float] = []
        without: list[float] = []
        for _ in range(rounds):
            without.append(_deliver(count, False, receiver))
            with_callback.append(_deliver(count, True, receiver))
        ratios[name] = statistics.median(with_callback) / statistics.median(without)
    return ratios
