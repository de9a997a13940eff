"""Deliveries side by side: the fake delivering published messages to an in-process WSGI
(Flask) or ASGI (FastAPI) app, vs calling the same app through httpx's own
``WSGITransport`` / ``ASGITransport`` with the same request. Used by bench.py.

Ours is timed from the clock's move to the last attempt recorded: scheduling, signing,
the WSGI/ASGI call and the recording, for ``per_round`` messages published beforehand
(untimed). The peer sends the same method, URL, headers and body ``per_round`` times.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from flask import Flask
from flask import request as flask_request

from pytest_qstash_tasks import QStashTasksMock
from pytest_qstash_tasks._core.exchange import Request as FakeRequest

HOOK = "https://app.example.com/hook"
BODY = b'{"order": 7, "items": [1, 2, 3]}'


def flask_app() -> Flask:
    app = Flask("bench")

    @app.post("/hook")
    def hook() -> Any:
        flask_request.get_data()
        return "", 200

    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    return app


def _published(app: Any, count: int) -> QStashTasksMock:
    fake = QStashTasksMock()
    fake.destination(HOOK).deliver_to(app)
    publish = FakeRequest(
        "POST",
        f"https://qstash.upstash.io/v2/publish/{HOOK}",
        f"/v2/publish/{HOOK}",
        headers=(("authorization", "Bearer t"), ("content-type", "application/json")),
        body=BODY,
    )
    for _ in range(count):
        fake._dispatch(publish)
    return fake


def _peer_headers(fake: QStashTasksMock) -> dict[str, str]:
    message = next(iter(fake._outbox.messages.values()))
    request = fake._courier.request_for(message, message.delivery)
    return dict(request.headers)


def delivery_vs_transport(rounds: int, per_round: int = 50) -> dict[str, float]:
    """(ours / httpx's transport) for a WSGI and an ASGI app."""
    result: dict[str, float] = {}
    for kind, app in (("wsgi", flask_app()), ("asgi", fastapi_app())):
        ours_times: list[float] = []
        peer_times: list[float] = []
        headers = _peer_headers(_published(app, 1))
        for _ in range(rounds):
            fake = _published(app, per_round)
            start = time.process_time()
            fake.clock.advance(1_000)
            ours_times.append(time.process_time() - start)
            assert len(fake._courier.attempts) == per_round
            assert all(a.status == 200 for a in fake._courier.attempts)
            peer_times.append(_peer(kind, app, headers, per_round))
        result[kind] = statistics.median(ours_times) / statistics.median(peer_times)
    return result


def _peer(kind: str, app: Any, headers: dict[str, str], count: int) -> float:
    if kind == "wsgi":
        with httpx.Client(transport=httpx.WSGITransport(app=app)) as client:
            start = time.process_time()
            for _ in range(count):
                assert client.post(HOOK, content=BODY, headers=headers).status_code == 200
            return time.process_time() - start

    async def send_all() -> float:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            start = time.process_time()
            for _ in range(count):
                answer = await client.post(HOOK, content=BODY, headers=headers)
                assert answer.status_code == 200
            return time.process_time() - start

    return asyncio.run(send_all())
