"""Side-by-side benchmarks: each reports a ratio against a peer measured in the same run.

    python benchmarks/bench.py            # full
    python benchmarks/bench.py --quick    # fewer repeats; exits 1 when a ratio passes its bound

Rounds are interleaved (peer, ours, peer, ours, ...) and the median of each side is
compared, so noise from a shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import httpx
import respx

from pytest_qstash_tasks import QStashTasksMock, make_tasks

URL = "https://qstash.upstash.io/v1/messages/msg_1/tasks"
AUTH = {"Authorization": "Bearer t"}


def interleaved(sides: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def page_vs_static_route(rounds: int, per_round: int = 20) -> float:
    """One full 100-task page through the fake vs a static respx route with the same JSON."""
    fake = QStashTasksMock()
    fake.add("msg_1", count=100)
    fake.start()
    client = httpx.Client(headers=AUTH)
    body = client.get(URL).content
    fake.stop()

    def ours() -> None:
        for _ in range(per_round):
            client.get(URL)

    def static() -> None:
        for _ in range(per_round):
            client.get(URL)

    static_router = respx.MockRouter(assert_all_called=False)
    static_router.get(URL).respond(200, content=body, headers={"content-type": "application/json"})

    def run_ours() -> None:
        fake.start()
        try:
            ours()
        finally:
            fake.stop()

    def run_static() -> None:
        with static_router:
            static()

    fake.max_identical_requests = 10**9  # the benchmark repeats one request on purpose
    result = interleaved({"static": run_static, "ours": run_ours}, rounds)
    return result["ours"] / result["static"]


def walk_growth(rounds: int) -> float:
    """Walking every page of 100,000 tasks vs 10,000 (10x the tasks)."""
    fakes = {}
    for n in (10_000, 100_000):
        fake = QStashTasksMock()
        fake.add("msg_1", make_tasks(n, message_id="msg_1", seed=n))
        fakes[n] = fake
    client = httpx.Client(headers=AUTH)

    def walk(fake: QStashTasksMock) -> Callable[[], None]:
        def run() -> None:
            fake.start()
            try:
                cursor = None
                while True:
                    page = client.get(URL, params={"cursor": cursor} if cursor else None).json()
                    cursor = page["cursor"]
                    if not cursor:
                        return
            finally:
                fake.stop()

        return run

    result = interleaved({"10k": walk(fakes[10_000]), "100k": walk(fakes[100_000])}, rounds)
    return result["100k"] / result["10k"]


def factory_vs_polyfactory(rounds: int) -> tuple[float, float]:
    """make_tasks vs polyfactory's ModelFactory[Task]: (speed-up, our tasks/s)."""
    from polyfactory.factories.pydantic_factory import ModelFactory

    from pytest_qstash_tasks import Task

    class TaskFactory(ModelFactory[Task]):
        __check_model__ = False
        retried = 0  # polyfactory cannot know retried <= max_retry

    n_ours, n_poly = 20_000, 200

    def ours() -> None:
        make_tasks(n_ours, seed=1)

    def poly() -> None:
        TaskFactory.batch(n_poly)

    result = interleaved({"poly": poly, "ours": ours}, rounds)
    ours_rate = n_ours / result["ours"]
    poly_rate = n_poly / result["poly"]
    return ours_rate / poly_rate, ours_rate


BOUNDS = {
    "page vs static respx route (ours/static)": 1.3,
    "walk 100k vs 10k (growth)": 12.0,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    rounds = 25 if quick else 75
    results = {
        "page vs static respx route (ours/static)": page_vs_static_route(rounds),
        "walk 100k vs 10k (growth)": walk_growth(3 if quick else 7),
    }
    speedup, rate = factory_vs_polyfactory(3 if quick else 7)
    failed = False
    for name, value in results.items():
        bound = BOUNDS[name]
        ok = value <= bound
        failed |= not ok
        print(f"{name:45} {value:8.2f}  (bound <= {bound})  {'ok' if ok else 'FAIL'}")
    ok = speedup >= 50
    failed |= not ok
    verdict = "ok" if ok else "FAIL"
    print(f"{'make_tasks vs polyfactory (speed-up)':45} {speedup:8.1f}  (bound >= 50)  {verdict}")
    print(f"{'make_tasks tasks/s (information)':45} {rate:8.0f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
