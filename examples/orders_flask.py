"""A Flask app that publishes order events through QStash and receives them.

``POST /orders`` publishes the order to ``/hooks/order`` (the app's own public URL);
QStash delivers it there, signed; the hook verifies the signature with the official
SDK's ``Receiver`` and records the order, or answers 500 to be retried later.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from qstash import QStash, Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://orders.example.com"


def create_app(storage: list[dict[str, object]], *, fail_next: int = 0) -> Flask:
    """The app; ``storage`` is its database, ``fail_next`` how many hooks fail first."""
    app = Flask("orders")
    qstash = QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ.get("QSTASH_URL"))
    receiver = Receiver(
        current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
    )
    failures = {"left": fail_next}

    @app.post("/orders")
    def create_order() -> object:
        order = request.get_json()
        published = qstash.message.publish_json(
            url=f"{PUBLIC_URL}/hooks/order", body=order, retries=3
        )
        return jsonify({"messageId": published.message_id}), 202

    @app.post("/hooks/order")
    def receive_order() -> object:
        body = request.get_data(as_text=True)
        try:
            receiver.verify(
                signature=request.headers.get("Upstash-Signature", ""),
                body=body,
                url=f"{PUBLIC_URL}/hooks/order",
            )
        except SignatureError as error:
            return str(error), 401
        if failures["left"]:
            failures["left"] -= 1
            return "database unavailable", 500
        storage.append(request.get_json())
        return "", 204

    @app.get("/orders/<message_id>/delivery")
    def delivery(message_id: str) -> object:
        page = qstash.http.request(path=f"/v1/messages/{message_id}/tasks", method="GET")
        task = page["tasks"][0]
        return jsonify({"state": task["state"], "retried": task["retried"]})

    return app
