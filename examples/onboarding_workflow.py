"""An onboarding workflow (Upstash Workflow) in a FastAPI app.

A new user is welcomed, then the workflow sleeps three days, checks whether the user
came back, and sends a follow-up only to those who did not. The app's "database" and
"mailer" are the lists it is given; the activity check asks the app's own analytics
service over HTTP, through a workflow ``call``, so that QStash makes the request and the
workflow survives a slow service.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from qstash import AsyncQStash
from upstash_workflow import AsyncWorkflowContext
from upstash_workflow.fastapi import Serve

PUBLIC_URL = "https://app.example.com"
ANALYTICS = "https://analytics.example.com/active"


def create_app(client: AsyncQStash, mailbox: list[tuple[str, str]]) -> FastAPI:
    """The app; ``mailbox`` is what the mailer sent, as (address, subject)."""
    app = FastAPI()
    serve = Serve(app)

    @serve.post("/workflows/onboarding", qstash_client=client, retries=2)
    async def onboarding(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
        async def welcome() -> str:
            email = context.request_payload["email"]
            mailbox.append((email, "Welcome!"))
            return email

        email = await context.run("welcome", welcome)
        await context.sleep("three days", "3d")
        activity = await context.call(
            "check activity", url=ANALYTICS, method="POST", body={"email": email}
        )

        async def follow_up() -> bool:
            if activity.status == 200 and activity.body.get("active"):
                return False
            mailbox.append((email, "We miss you"))
            return True

        await context.run("follow-up", follow_up)

    return app
