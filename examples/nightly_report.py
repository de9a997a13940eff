"""A Flask app with a nightly job on QStash.

At start (``create_app``) the app makes its schedule, ``nightly-report``, as apps do:
an upsert by id, so a restart does not make a second one. Every night at 03:00 Berlin
time QStash calls ``/jobs/nightly-report``, which verifies the signature, builds the
report of the day's orders and keeps it. A night whose job fails is retried by QStash
(``retries=2``); a job that keeps failing ends in the DLQ, and the app's failure callback
at ``/jobs/failed`` records which night was lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, request
from qstash import QStash, Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://reports.example.com"
BERLIN = ZoneInfo("Europe/Berlin")


def create_app(
    reports: list[tuple[str, int]],
    lost: list[str],
    orders_of: Callable[[str], int],
    now: Callable[[], int],
) -> Flask:
    """The app: ``reports`` keeps each night's (day, orders), ``lost`` the ids of the
    messages whose nights failed for good; ``orders_of(day)`` counts a day's orders (the
    database, which may be down), ``now`` is the app's clock (unix ms)."""
    app = Flask("nightly_report")
    qstash = QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ.get("QSTASH_URL"))
    receiver = Receiver(
        current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
    )
    qstash.schedule.create(
        destination=f"{PUBLIC_URL}/jobs/nightly-report",
        cron="CRON_TZ=Europe/Berlin 0 3 * * *",
        schedule_id="nightly-report",
        retries=2,
        failure_callback=f"{PUBLIC_URL}/jobs/failed",
    )

    def verified(path: str) -> str | None:
        """The request's body, or ``None`` when its signature is not QStash's."""
        body = request.get_data(as_text=True)
        try:
            receiver.verify(
                signature=request.headers.get("Upstash-Signature", ""),
                body=body,
                url=f"{PUBLIC_URL}{path}",
            )
        except SignatureError:
            return None
        return body

    @app.post("/jobs/nightly-report")
    def nightly_report() -> object:
        if verified("/jobs/nightly-report") is None:
            return "bad signature", 401
        # The report is of the day that just ended, in Berlin.
        day = datetime.fromtimestamp(now() / 1000, BERLIN).date()
        yesterday = day.fromordinal(day.toordinal() - 1).isoformat()
        try:
            count = orders_of(yesterday)
        except ConnectionError:
            return "database down", 503
        reports.append((yesterday, count))
        return "", 204

    @app.post("/jobs/failed")
    def failed() -> object:
        body = verified("/jobs/failed")
        if body is None:
            return "bad signature", 401
        lost.append(json.loads(body)["sourceMessageId"])
        return "", 204

    return app
