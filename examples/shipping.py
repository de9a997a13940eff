"""A Flask app whose work is a chain of QStash messages.

``POST /orders`` publishes the order to ``/hooks/charge``; the charge hook charges it and
publishes it on to ``/hooks/ship`` with a one-hour delay (the warehouse's cut-off); the
ship hook ships it and, a day later, ``/hooks/follow-up`` asks for a review. Every hook
verifies QStash's signature and records what it did, with the time it did it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from flask import Flask, request
from qstash import QStash, Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://shop.example.com"


def create_app(log: list[tuple[str, int, int]], now: Callable[[], int]) -> Flask:
    """The app; ``log`` is its database, (step, order id, when), ``now`` its clock (ms)."""
    app = Flask("shipping")
    qstash = QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ.get("QSTASH_URL"))
    receiver = Receiver(
        current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
    )
    next_step = {"charge": ("ship", "1h"), "ship": ("follow-up", "1d")}

    @app.post("/orders")
    def create_order() -> object:
        qstash.message.publish_json(url=f"{PUBLIC_URL}/hooks/charge", body=request.get_json())
        return "", 202

    @app.post("/hooks/<step>")
    def hook(step: str) -> object:
        body = request.get_data(as_text=True)
        try:
            receiver.verify(
                signature=request.headers.get("Upstash-Signature", ""),
                body=body,
                url=f"{PUBLIC_URL}/hooks/{step}",
            )
        except SignatureError as error:
            return str(error), 401
        order = request.get_json()
        log.append((step, order["id"], now()))
        if step in next_step:
            following, delay = next_step[step]
            qstash.message.publish_json(
                url=f"{PUBLIC_URL}/hooks/{following}", body=order, delay=delay
            )
        return "", 204

    return app
