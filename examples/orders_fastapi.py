"""The same receiver in FastAPI: verify the signature, store the order, or fail."""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from qstash import Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://orders.example.com"


def create_app(storage: list[dict[str, object]], *, fail_next: int = 0) -> FastAPI:
    app = FastAPI()
    receiver = Receiver(
        current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
    )
    failures = {"left": fail_next}

    @app.post("/hooks/order")
    async def receive_order(request: Request) -> Response:
        body = (await request.body()).decode()
        try:
            receiver.verify(
                signature=request.headers.get("upstash-signature", ""),
                body=body,
                url=f"{PUBLIC_URL}/hooks/order",
            )
        except SignatureError as error:
            raise HTTPException(status_code=401, detail=str(error)) from None
        if failures["left"]:
            failures["left"] -= 1
            return Response("database unavailable", status_code=500)
        storage.append(await request.json())
        return Response(status_code=204)

    return app
