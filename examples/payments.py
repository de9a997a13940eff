"""A Flask app that notices when a payment cannot be taken.

``POST /payments`` publishes the payment to ``/hooks/charge`` with three retries and a
failure callback, ``/hooks/charge-failed``. The charge hook answers 402 for a declined
card; once QStash has given up, it calls the failure callback (signed, like any
delivery), which records the failure with the DLQ entry's id, so support can retry it.
"""

from __future__ import annotations

import base64
import json
import os

from flask import Flask, request
from qstash import QStash, Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://pay.example.com"


def create_app(failures: list[dict[str, object]]) -> Flask:
    """The app; ``failures`` is its table of payments that could not be taken."""
    app = Flask("payments")
    qstash = QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ.get("QSTASH_URL"))
    receiver = Receiver(
        current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
    )

    def verified(path: str) -> bool:
        try:
            receiver.verify(
                signature=request.headers.get("Upstash-Signature", ""),
                body=request.get_data(as_text=True),
                url=f"{PUBLIC_URL}{path}",
            )
        except SignatureError:
            return False
        return True

    @app.post("/payments")
    def pay() -> object:
        qstash.message.publish_json(
            url=f"{PUBLIC_URL}/hooks/charge",
            body=request.get_json(),
            retries=3,
            failure_callback=f"{PUBLIC_URL}/hooks/charge-failed",
        )
        return "", 202

    @app.post("/hooks/charge")
    def charge() -> object:
        if not verified("/hooks/charge"):
            return "bad signature", 401
        if request.get_json()["card"] == "declined":
            return "card declined", 402
        return "", 204

    @app.post("/hooks/charge-failed")
    def charge_failed() -> object:
        if not verified("/hooks/charge-failed"):
            return "bad signature", 401
        callback = request.get_json()
        payment = json.loads(base64.b64decode(callback["sourceBody"]))
        answer = base64.b64decode(callback["body"]).decode()
        failures.append({"payment": payment, "reason": answer, "dlqId": callback["dlqId"]})
        return "", 204

    return app
