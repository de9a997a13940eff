"""A workflow side by side: ten steps with a sleep between each, run through the fake
in-process (each step a delivery from the fake's clock, its next step published back to
the fake), against the same deliveries replayed straight to the app through httpx's
``ASGITransport``, the app's own publishes answered by static respx routes. What is left
is the fake's engine: publishing, the agenda, the run's bodies, signing. Used by
bench.py."""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time
from typing import Any

STEPS = 10
APP = "https://app.example.com"


def _app(client: Any) -> Any:
    from fastapi import FastAPI
    from upstash_workflow import AsyncWorkflowContext
    from upstash_workflow.fastapi import Serve

    app = FastAPI()
    serve = Serve(app)

    @serve.post("/workflow", qstash_client=client)
    async def workflow(context: AsyncWorkflowContext[Any]) -> None:
        for number in range(STEPS):

            async def step(number: int = number) -> int:
                return number

            await context.run(f"step {number}", step)
            await context.sleep(f"pause {number}", "1h")

    return app


def _through_the_fake() -> tuple[float, list[Any]]:
    from qstash import AsyncQStash

    from pytest_qstash_tasks import QStashTasksMock

    fake = QStashTasksMock()
    os.environ.update(fake.env)  # the SDK's Receiver reads the signing keys
    client = AsyncQStash(fake.token, base_url=fake.base_url)
    fake.destination(f"{APP}/*").deliver_to(_app(client))
    with fake:
        gc.collect()
        start = time.process_time()
        fake.workflows.trigger(f"{APP}/workflow", "{}")
        fake.clock.run_all()
        took = time.process_time() - start
        fake.workflows.assert_run_succeeded()
        return took, list(fake.deliveries)


def _replayed(deliveries: list[Any]) -> float:
    import httpx
    import respx
    from qstash import AsyncQStash

    base = "https://qstash.upstash.io"
    router = respx.MockRouter(assert_all_called=False)
    router.post(f"{base}/v2/batch").respond(200, json=[{"messageId": "msg_x"}])
    router.route(method="POST", url__startswith=f"{base}/v2/publish/").respond(
        200, json={"messageId": "msg_x"}
    )
    router.route(method="DELETE", url__startswith=f"{base}/v2/workflows/").respond(200)
    client = AsyncQStash("t", base_url=base)
    app = _app(client)

    async def replay() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as http:
            for delivery in deliveries:
                answer = await http.request(
                    delivery.method, delivery.url, headers=list(delivery.headers),
                    content=delivery.body,
                )  # fmt: skip
                if answer.status_code != 200:
                    raise RuntimeError(f"replay: {answer.status_code} {answer.text}")

    with router:
        gc.collect()
        start = time.process_time()
        asyncio.run(replay())
        return time.process_time() - start


def workflow_vs_replay(rounds: int) -> dict[str, float]:
    """Medians of interleaved rounds: the run through the fake / the replay."""
    ours: list[float] = []
    peer: list[float] = []
    for _ in range(rounds):
        took, deliveries = _through_the_fake()
        ours.append(took)
        peer.append(_replayed(deliveries))
    return {
        "ratio": statistics.median(ours) / statistics.median(peer),
        "ours_ms": statistics.median(ours) * 1000,
        "peer_ms": statistics.median(peer) * 1000,
        "deliveries": float(len(deliveries)),
    }


if __name__ == "__main__":
    print(workflow_vs_replay(5))
