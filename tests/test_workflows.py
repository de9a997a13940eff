"""Upstash Workflow end to end on the fake's clock, with the SDK as it installs
(``upstash-workflow``): a workflow served by FastAPI (async) or Flask (sync) runs its
steps, sleeps a week in no time, calls a third party the test scripts, fails into its
failure function, is cancelled while it sleeps; its runs are read through
``qstash_tasks.workflows`` and ``GET /v2/workflows/logs``."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask
from qstash import AsyncQStash, QStash
from upstash_workflow import AsyncWorkflowContext, WorkflowContext
from upstash_workflow.fastapi import Serve as FastApiServe
from upstash_workflow.flask import Serve as FlaskServe

from pytest_qstash_tasks import DeliveryRequest, QStashTasksFake
from pytest_qstash_tasks._core.engine.receivers import run_coroutine
from tests.helpers import v2

APP = "https://app.example.com"
CRM = "https://crm.example.com/contacts"
WEEK_MS = 7 * 86_400_000
Log = list[tuple[Any, ...]]


pytestmark = pytest.mark.usefixtures("workflow_env")


@pytest.fixture
def workflow_client(any_fake: QStashTasksFake) -> Iterator[AsyncQStash]:
    """The QStash client an async workflow publishes its steps with, closed at teardown
    on the loop the fake ran the app on (a connection left open warns at gc)."""
    client = AsyncQStash(any_fake.token, base_url=any_fake.base_url)
    yield client
    run_coroutine(client.http._client.aclose(), 5)


def fastapi_onboarding(log: Log, client: Any) -> FastAPI:
    """Three steps, a week's sleep and a call to the CRM, async."""
    app = FastAPI()
    serve = FastApiServe(app)

    @serve.post("/api/onboard", qstash_client=client)
    async def onboard(context: AsyncWorkflowContext[dict[str, str]]) -> None:
        # The payload is read in the steps: the SDK also runs this function on the
        # call's result, whose body is QStash's callback, up to its first step.
        async def welcome() -> str:
            log.append(("welcome", context.request_payload["email"]))
            return "welcomed"

        async def score() -> int:
            log.append(("score",))
            return 42

        first = await context.run("welcome", welcome)
        points = await context.run("score", score)
        await context.sleep("wait a week", "7d")
        crm = await context.call("crm", url=CRM, method="POST", body={"points": points})

        async def follow_up() -> dict[str, Any]:
            log.append(("follow-up", first, crm.status, crm.body))
            return {"crm": crm.status}

        await context.run("follow-up", follow_up)

    return app


def flask_onboarding(log: Log, client: Any) -> Flask:
    """The same workflow, sync."""
    app = Flask("onboarding")
    serve = FlaskServe(app)

    @serve.route("/api/onboard", qstash_client=client)
    def onboard(context: WorkflowContext[dict[str, str]]) -> None:
        def welcome() -> str:
            log.append(("welcome", context.request_payload["email"]))
            return "welcomed"

        def score() -> int:
            log.append(("score",))
            return 42

        first = context.run("welcome", welcome)
        points = context.run("score", score)
        context.sleep("wait a week", "7d")
        crm = context.call("crm", url=CRM, method="POST", body={"points": points})

        def follow_up() -> dict[str, Any]:
            log.append(("follow-up", first, crm.status, crm.body))
            return {"crm": crm.status}

        context.run("follow-up", follow_up)

    return app


def crm_receiver(got: list[Any]) -> Callable[[DeliveryRequest], tuple[int, bytes]]:
    def receive(delivery: DeliveryRequest) -> tuple[int, bytes]:
        got.append(delivery.json())
        return 201, b'{"contact": "c_1"}'

    return receive


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_a_workflow_runs_its_steps_sleeps_a_week_and_calls_a_third_party(
    any_fake: QStashTasksFake, framework: str, sdk: Callable[..., QStash],
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    log: Log = []
    if framework == "fastapi":
        app: Any = fastapi_onboarding(log, request.getfixturevalue("workflow_client"))
    else:
        app = flask_onboarding(log, request.getfixturevalue("sync_workflow_client"))
    any_fake.destination(f"{APP}/api/*").deliver_to(app)
    crm_got: list[Any] = []
    any_fake.destination(CRM).deliver_to(crm_receiver(crm_got))
    client = sdk(any_fake.token, base_url=any_fake.base_url)
    client.message.publish_json(url=f"{APP}/api/onboard", body={"email": "ada@example.com"})

    took = any_fake.clock.run_all()

    assert WEEK_MS < took < WEEK_MS + 10_000  # a week's sleep, and the steps around it
    assert log == [
        ("welcome", "ada@example.com"),
        ("score",),
        ("follow-up", "welcomed", 201, {"contact": "c_1"}),
    ]
    assert crm_got == [{"points": 42}]
    run = any_fake.workflows.assert_run_succeeded()
    assert run.url == f"{APP}/api/onboard"
    assert json.loads(run.payload) == {"email": "ada@example.com"}
    assert [(s.name, s.type) for s in run.steps] == [
        ("welcome", "Run"), ("score", "Run"), ("wait a week", "SleepFor"),
        ("crm", "Call"), ("follow-up", "Run"),
    ]  # fmt: skip
    assert [s.out for s in run.steps if s.type == "Run"] == ["welcomed", 42, {"crm": 201}]
    sleep_step = run.steps[2]
    assert run.steps[3].created_at - sleep_step.created_at >= WEEK_MS  # the call after it
    # The same run through the logs endpoint, as the SDKs read it.
    (logged,) = v2(any_fake, "GET", "/v2/workflows/logs").json()["runs"]
    assert (logged["workflowRunId"], logged["workflowState"]) == (run.run_id, "RUN_SUCCESS")
    names = [step["stepName"] for group in logged["steps"] for step in group["steps"]]
    assert names == ["init", "welcome", "score", "wait a week", "crm", "follow-up"]
    assert logged["workflowRunCompletedAt"] == run.completed_at


def failing_app(log: Log, failures: Log, client: AsyncQStash) -> FastAPI:
    app = FastAPI()
    serve = FastApiServe(app)

    async def on_failure(
        context: AsyncWorkflowContext[Any], status: int, message: str, headers: Any
    ) -> None:
        failures.append((context.workflow_run_id, status, message))

    @serve.post("/api/charge", qstash_client=client, retries=2, failure_function=on_failure)
    async def charge(context: AsyncWorkflowContext[Any]) -> None:
        async def call_bank() -> str:
            log.append(("bank", context.headers.get("Upstash-Retried")))
            raise RuntimeError("the bank is down")

        await context.run("call the bank", call_bank)

    return app


def test_a_step_that_raises_is_retried_then_the_failure_function_runs(
    any_fake: QStashTasksFake, workflow_client: AsyncQStash
) -> None:
    log: Log = []
    failures: Log = []
    any_fake.destination(f"{APP}/api/*").deliver_to(failing_app(log, failures, workflow_client))
    run_id = any_fake.workflows.trigger(
        f"{APP}/api/charge", '{"amount": 5}', retries=2, failure_url=f"{APP}/api/charge"
    )

    any_fake.clock.run_all()

    assert len(log) == 3  # the first attempt and its two retries
    assert failures == [(run_id, 500, "the bank is down")]
    run = any_fake.workflows.assert_run_failed(run_id)
    assert run.error == ('HTTP status 500: {"error":"RuntimeError","message":"the bank is down"}')
    with pytest.raises(AssertionError) as raised:
        any_fake.workflows.assert_run_succeeded(run_id)
    assert str(raised.value).startswith(
        f"expected workflow run {run_id!r} to have succeeded; it is RUN_FAILED.\n"
        f"{run_id} ({APP}/api/charge): RUN_FAILED at "
    )
    assert str(raised.value).endswith("    (no step yet)")


def sleepy_app(log: Log, client: AsyncQStash) -> FastAPI:
    app = FastAPI()
    serve = FastApiServe(app)

    @serve.post("/api/remind", qstash_client=client)
    async def remind(context: AsyncWorkflowContext[Any]) -> None:
        async def note() -> str:
            log.append("before")
            return "noted"

        await context.run("note", note)
        await context.sleep("a month", "30d")

        async def remind_again() -> None:
            log.append("after")

        await context.run("remind", remind_again)

    return app


def test_cancelling_a_sleeping_run_stops_it(
    any_fake: QStashTasksFake, workflow_client: AsyncQStash
) -> None:
    log: Log = []
    any_fake.destination(f"{APP}/api/*").deliver_to(sleepy_app(log, workflow_client))
    run_id = any_fake.workflows.trigger(f"{APP}/api/remind")
    any_fake.clock.advance(86_400_000)  # a day into the month's sleep
    assert log == ["before"]

    answer = v2(any_fake, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=true")
    assert (answer.status_code, answer.content) == (200, b"")
    any_fake.clock.run_all()

    assert log == ["before"]
    assert any_fake.workflows.get(run_id).state == "RUN_CANCELED"
    # Publishing to a cancelled run is refused, as the SDKs expect.
    refused = v2(
        any_fake, "POST", f"/v2/publish/{APP}/api/remind", data=b"{}",
        headers={"Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Init": "false"},
    )  # fmt: skip
    assert refused.status_code == 400
    assert refused.json() == {
        "error": f"workflow run {run_id!r} was cancelled: nothing more can be published to it"
    }
    any_fake.assert_all_requests_served = False


def test_a_run_id_taken_is_deduplicated_and_the_run_so_far_is_served(
    any_fake: QStashTasksFake, workflow_client: AsyncQStash
) -> None:
    log: Log = []
    any_fake.destination(f"{APP}/api/*").deliver_to(sleepy_app(log, workflow_client))
    run_id = any_fake.workflows.trigger(f"{APP}/api/remind", run_id="mine")
    assert run_id == "wfr_mine"  # prefixed, as the Workflow client does
    any_fake.clock.advance(5_000)
    again = v2(
        any_fake, "POST", "/v2/batch",
        json=[{
            "destination": f"{APP}/api/remind",
            "headers": {"Upstash-Workflow-Init": "true", "Upstash-Workflow-RunId": "wfr_mine"},
        }],
    )  # fmt: skip
    assert again.status_code == 200
    (answer,) = again.json()
    assert answer["deduplicated"] is True
    assert len(any_fake.workflows.list()) == 1
    # What a workflow fetches lazily: the run so far, each body in base64.
    steps = v2(any_fake, "GET", "/v2/workflows/runs/wfr_mine").json()
    assert [step["callType"] for step in steps] == ["step", "step", "step"]
    assert json.loads(base64.b64decode(steps[1]["body"]))["stepName"] == "note"
    assert v2(any_fake, "GET", "/v2/workflows/runs/wfr_other").status_code == 404
    ended = v2(any_fake, "DELETE", "/v2/workflows/runs/wfr_mine?cancel=false", data=b'"ok"')
    assert ended.status_code == 200
    run = any_fake.workflows.assert_run_succeeded("wfr_mine")
    assert run.result == b'"ok"'
    any_fake.assert_all_requests_served = False


def test_a_delivery_s_own_headers_are_never_replaced_by_forwarded_ones(
    any_fake: QStashTasksFake,
) -> None:
    seen: list[DeliveryRequest] = []
    any_fake.destination(f"{APP}/hook").deliver_to(lambda d: seen.append(d) or 200)
    v2(
        any_fake, "POST", f"/v2/publish/{APP}/hook", data=b"x",
        headers={
            "Upstash-Forward-Upstash-Signature": "forged",
            "Upstash-Forward-Upstash-Message-Id": "msg_forged",
            "Upstash-Forward-Host": "elsewhere.example.com",
            "Upstash-Forward-X-Kept": "yes",
        },
    )  # fmt: skip
    any_fake.clock.run_all()
    (delivery,) = seen
    names = [name.lower() for name, _ in delivery.headers]
    assert names.count("upstash-signature") == names.count("upstash-message-id") == 1
    assert delivery.header("Upstash-Signature") != "forged"
    assert delivery.header("Upstash-Message-Id") != "msg_forged"
    assert "host" not in names
    assert delivery.header("X-Kept") == "yes"


def test_assert_run_succeeded_says_which_run_and_what_it_did(
    any_fake: QStashTasksFake, workflow_client: AsyncQStash
) -> None:
    with pytest.raises(AssertionError, match="expected one workflow run to check, found 0"):
        any_fake.workflows.assert_run_succeeded()
    log: Log = []
    any_fake.destination(f"{APP}/api/*").deliver_to(sleepy_app(log, workflow_client))
    run_id = any_fake.workflows.trigger(f"{APP}/api/remind")
    any_fake.clock.advance(10_000)
    with pytest.raises(AssertionError) as raised:
        any_fake.workflows.assert_run_succeeded(run_id)
    assert str(raised.value) == (
        f"expected workflow run {run_id!r} to have succeeded; it is RUN_STARTED (it is "
        "still going: move the clock, e.g. clock.run_all()).\n"
        f"{run_id} ({APP}/api/remind): RUN_STARTED\n"
        '    1. note (Run) -> "noted"\n'
        "    2. a month (SleepFor)"
    )
    with pytest.raises(KeyError, match=f"no workflow run 'wfr_x' \\(there are: {run_id}\\)"):
        any_fake.workflows.get("wfr_x")


def wait_body(run_id: str, url: str, name: str, timeout: str = "1h") -> dict[str, Any]:
    """What @upstash/workflow's waitForEvent sends (LazyWaitEventStep.getBody)."""
    return {
        "url": url,
        "timeout": timeout,
        "timeoutUrl": url,
        "timeoutHeaders": {
            "Upstash-Workflow-Runid": [run_id],
            "Upstash-Workflow-Init": ["false"],
            "Upstash-Workflow-CallType": ["step"],
            "Upstash-Forward-Upstash-Workflow-Sdk-Version": ["1"],
        },
        "step": {"stepId": 2, "stepType": "Wait", "stepName": name, "concurrent": 1},
    }


def test_a_run_gets_its_event_by_notify_or_its_timeout(any_fake: QStashTasksFake) -> None:
    seen: list[DeliveryRequest] = []
    any_fake.destination(f"{APP}/wf").deliver_to(lambda d: seen.append(d) or 200)
    run_id = any_fake.workflows.trigger(f"{APP}/wf", "{}")
    any_fake.clock.run_all()
    start = any_fake.clock.now

    def last_step() -> dict[str, Any]:
        raw = json.loads(seen[-1].body)[-1]
        step: dict[str, Any] = json.loads(base64.b64decode(raw["body"]))
        return step

    waited = v2(any_fake, "POST", "/v2/wait/approve", json=wait_body(run_id, f"{APP}/wf", "ok"))
    assert waited.json() == {"messageId": ""}
    (waiter,) = v2(any_fake, "GET", "/v2/waiters/approve").json()
    assert (waiter["url"], waiter["deadline"]) == (f"{APP}/wf", (start + 3_600_000) // 1000)
    notified = v2(any_fake, "POST", "/v2/notify/approve", data=b'{"by": "grace"}').json()
    assert [n["waiter"]["url"] for n in notified] == [f"{APP}/wf"]
    assert notified[0]["messageId"].startswith("msg_")
    assert v2(any_fake, "GET", "/v2/waiters/approve").json() == []
    any_fake.clock.run_all()
    step = last_step()
    assert (step["stepName"], step["waitEventId"], step["waitTimeout"]) == ("ok", "approve", False)
    assert base64.b64decode(step["out"]) == b'{"by": "grace"}'
    assert seen[-1].header("Upstash-Workflow-RunId") == run_id

    # Nobody waits: the unsafe notify is lost, and a later wait times out.
    assert v2(any_fake, "POST", "/v2/notify/lost", data=b"x").json() == []
    v2(any_fake, "POST", "/v2/wait/lost", json=wait_body(run_id, f"{APP}/wf", "late", "2h"))
    before = any_fake.clock.now
    any_fake.clock.run_all()
    step = last_step()
    assert (step["stepName"], step["waitTimeout"], "out" in step) == ("late", True, False)
    assert any_fake.deliveries[-1].at - before == 2 * 3_600_000 + 200

    # The safe notify is kept until the run waits, then delivered at once.
    kept = v2(any_fake, "POST", f"/v2/notify/{run_id}/early", data=b"1").json()
    assert kept == {"waiter": None, "messageId": "", "error": ""}
    answer = v2(any_fake, "POST", "/v2/wait/early", json=wait_body(run_id, f"{APP}/wf", "e"))
    assert answer.json()["messageId"].startswith("msg_")
    any_fake.clock.run_all()
    assert (last_step()["stepName"], last_step()["waitTimeout"]) == ("e", False)
    assert [s.name for s in any_fake.workflows.get(run_id).steps] == ["ok", "late", "e"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], 'a wait is a JSON object with the "url" its event goes to'),
        ({"url": f"{APP}/wf"}, 'a wait names the "step" its event completes'),
        (
            {"url": f"{APP}/wf", "step": {}, "timeoutHeaders": {"a": "b"}},
            "timeoutHeaders must be an object of string lists",
        ),
        (
            {"url": f"{APP}/wf", "step": {}, "timeout": "soon"},
            "invalid timeout 'soon': e.g. 30s, 1h, 7d",
        ),
    ],
)
def test_a_bad_wait_is_refused_in_words(any_fake: QStashTasksFake, body: Any, words: str) -> None:
    answer = v2(any_fake, "POST", "/v2/wait/e", json=body)
    assert (answer.status_code, answer.json()) == (400, {"error": words})
    assert v2(any_fake, "GET", "/v2/waiters/e").json() == []
    assert v2(any_fake, "GET", "/v2/wait/e").status_code == 405
    assert v2(any_fake, "POST", "/v2/notify/a/b/c").status_code == 404
    any_fake.assert_all_requests_served = False


def test_runs_are_cancelled_in_bulk_and_listed_by_filter_and_page(
    any_fake: QStashTasksFake, workflow_client: AsyncQStash
) -> None:
    log: Log = []
    any_fake.destination(f"{APP}/api/*").deliver_to(sleepy_app(log, workflow_client))
    any_fake.destination(f"{APP}/other").deliver_to(lambda d: 200)
    ids = [any_fake.workflows.trigger(f"{APP}/api/remind", run_id=f"r{n}") for n in range(4)]
    other = any_fake.workflows.trigger(f"{APP}/other", run_id="elsewhere")
    any_fake.clock.advance(60_000)  # every run asleep, the other one delivered
    answer = v2(
        any_fake, "DELETE", f"/v2/workflows/runs?workflowRunIds={ids[0]}&workflowRunIds={ids[1]}"
    )
    assert answer.json() == {"cancelled": 2}
    answer = v2(any_fake, "DELETE", f"/v2/workflows/runs?workflowUrl={APP}/api/remind")
    assert answer.json() == {"cancelled": 2}  # the two left at that URL; the others ended
    assert [r.state for r in any_fake.workflows.list()] == ["RUN_CANCELED"] * 4 + ["RUN_STARTED"]
    refused = v2(any_fake, "DELETE", "/v2/workflows/runs?state=RUN_STARTED")
    assert refused.json() == {
        "error": "unknown filter(s) ['state']: workflowRunIds, workflowUrl, fromDate, toDate"
    }

    def listed(query: str) -> tuple[list[str], str | None]:
        page = v2(any_fake, "GET", f"/v2/workflows/events?groupBy=workflowRunId&{query}").json()
        return [run["workflowRunId"] for run in page["runs"]], page.get("cursor")

    assert listed("state=RUN_STARTED") == ([other], None)
    assert listed("count=2") == ([other, ids[3]], "2")  # newest first
    assert listed("count=2&cursor=2") == ([ids[2], ids[1]], "4")
    assert listed("count=2&cursor=4") == ([ids[0]], None)
    assert listed(f"workflowUrl={APP}/other&state=RUN_CANCELED") == ([], None)
    bad = v2(any_fake, "GET", "/v2/workflows/logs?state=DONE")
    assert bad.json() == {
        "error": "invalid state 'DONE': one of RUN_STARTED, RUN_SUCCESS, RUN_FAILED, RUN_CANCELED"
    }
    any_fake.assert_all_requests_served = False


def publish_step(fake: QStashTasksFake, run_id: str, step: dict[str, Any]) -> str:
    """A step result, as a Workflow SDK publishes it."""
    answer = v2(
        fake, "POST", f"/v2/publish/{APP}/wf", data=json.dumps(step).encode(),
        headers={"Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Init": "false"},
    )  # fmt: skip
    message_id: str = answer.json()["messageId"]
    return message_id


def test_the_logs_show_a_run_as_the_sdks_read_it(any_fake: QStashTasksFake) -> None:
    any_fake.destination(f"{APP}/wf").deliver_to(lambda d: 200)
    start = any_fake.clock.now
    run_id = any_fake.workflows.trigger(f"{APP}/wf", '{"n": 1}', run_id="logged")
    (first,) = any_fake.workflows.get(run_id).steps or [None]  # nothing but the payload yet
    assert first is None
    any_fake.clock.advance(1_000)
    one = publish_step(
        any_fake, run_id,
        {"stepId": 1, "stepName": "a", "stepType": "Run", "out": '"x"', "concurrent": 1},
    )  # fmt: skip
    any_fake.clock.advance(1_000)
    left, right = (
        publish_step(
            any_fake,
            run_id,
            {
                "stepId": n,
                "stepName": name,
                "stepType": "Run",
                "out": str(n),
                "concurrent": 2,
            },
        )
        for n, name in ((2, "b"), (3, "c"))
    )
    any_fake.clock.advance(1_000)
    ended = v2(any_fake, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=false", data=b'"done"')
    assert ended.status_code == 200
    (logged,) = v2(any_fake, "GET", "/v2/workflows/logs").json()["runs"]
    initial = any_fake.workflows.get(run_id)
    assert logged == {
        "workflowRunId": run_id,
        "workflowUrl": f"{APP}/wf",
        "workflowState": "RUN_SUCCESS",
        "workflowRunCreatedAt": start,
        "workflowRunCompletedAt": start + 3_000,
        "workflowRunResponse": '"done"',
        "steps": [
            {"type": "sequential", "steps": [{
                "callType": "step", "messageId": any_fake.published[0].message_id,
                "state": "STEP_SUCCESS", "createdAt": start, "stepName": "init",
                "stepType": "Initial", "concurrent": 1, "out": '{"n": 1}',
            }]},
            {"type": "sequential", "steps": [{
                "callType": "step", "messageId": one, "state": "STEP_SUCCESS",
                "createdAt": start + 1_000, "stepId": 1, "stepName": "a", "stepType": "Run",
                "out": '"x"', "concurrent": 1,
            }]},
            {"type": "parallel", "steps": [
                {
                    "callType": "step", "messageId": message_id, "state": "STEP_SUCCESS",
                    "createdAt": start + 2_000, "stepId": n, "stepName": name,
                    "stepType": "Run", "out": str(n), "concurrent": 2,
                }
                for message_id, n, name in ((left, 2, "b"), (right, 3, "c"))
            ]},
        ],
    }  # fmt: skip
    assert initial.payload == b'{"n": 1}'
    assert [(s.name, s.out, s.concurrent) for s in initial.steps] == [
        ("a", "x", 1), ("b", 2, 2), ("c", 3, 2),
    ]  # fmt: skip
    assert initial.result == b'"done"'
    # The dates filter the runs by when they started.
    for query, found in [
        (f"fromDate={start}", [run_id]),
        (f"fromDate={start + 1}", []),
        (f"toDate={start}", [run_id]),
        (f"toDate={start - 1}", []),
    ]:
        runs = v2(any_fake, "GET", f"/v2/workflows/logs?{query}").json()["runs"]
        assert [run["workflowRunId"] for run in runs] == found, query
    bad = v2(any_fake, "GET", "/v2/workflows/logs?fromDate=yesterday")
    assert bad.json() == {"error": "invalid fromDate 'yesterday': want unix ms"}
    again = v2(any_fake, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=true")
    assert again.json() == {"error": f"workflow run {run_id!r} has already ended (RUN_SUCCESS)"}
    odd = v2(any_fake, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=maybe")
    assert odd.json() == {"error": "invalid cancel 'maybe': want true or false"}
    any_fake.assert_all_requests_served = False


def test_trigger_sends_what_the_workflow_client_sends(any_fake: QStashTasksFake) -> None:
    run_id = any_fake.workflows.trigger(
        f"{APP}/wf", "{}", headers={"X-Tenant": "acme"}, retries=1, failure_url=f"{APP}/failed"
    )
    (published,) = any_fake.published
    assert dict(published.headers) == {
        "upstash-workflow-init": "true",
        "upstash-workflow-runid": run_id,
        "upstash-workflow-url": f"{APP}/wf",
        "upstash-feature-set": "LazyFetch,InitialBody",
        "upstash-forward-upstash-workflow-sdk-version": "1",
        "content-type": "application/json",
        "upstash-forward-x-tenant": "acme",
        "upstash-retries": "1",
        "upstash-failure-callback": f"{APP}/failed",
        "upstash-failure-callback-forward-upstash-workflow-is-failure": "true",
        "upstash-failure-callback-forward-upstash-workflow-failure-callback": "true",
        "upstash-failure-callback-workflow-runid": run_id,
        "upstash-failure-callback-workflow-init": "false",
        "upstash-failure-callback-workflow-url": f"{APP}/wf",
        "upstash-failure-callback-workflow-calltype": "failureCall",
        "upstash-failure-callback-retries": "1",
    }
    assert run_id.startswith("wfr_")
    with pytest.raises(ValueError, match=r"^destination 'nowhere' is neither a URL nor a known"):
        any_fake.workflows.trigger("nowhere")
    with pytest.raises(TypeError, match="url is a str, not bytes"):
        any_fake.workflows.trigger(b"https://a.test")  # type: ignore[arg-type]


def test_the_run_assertions_name_the_run_they_could_not_check(any_fake: QStashTasksFake) -> None:
    any_fake.destination(f"{APP}/wf").deliver_to(lambda d: 200)
    with pytest.raises(AssertionError) as raised:
        any_fake.workflows.assert_run_failed("wfr_none")
    assert str(raised.value) == (
        "expected workflow run 'wfr_none' to have failed; there is no such run. The runs:\n(no run)"
    )
    first = any_fake.workflows.trigger(f"{APP}/wf", run_id="one")
    second = any_fake.workflows.trigger(f"{APP}/wf", run_id="two")
    with pytest.raises(AssertionError) as raised:
        any_fake.workflows.assert_run_succeeded()
    assert str(raised.value) == (
        "expected one workflow run to check, found 2: name the run "
        "(assert_run_succeeded(run_id)). The runs:\n"
        f"{first} ({APP}/wf): RUN_STARTED\n    (no step yet)\n"
        f"{second} ({APP}/wf): RUN_STARTED\n    (no step yet)"
    )
    v2(any_fake, "DELETE", f"/v2/workflows/runs/{second}?cancel=true")
    with pytest.raises(AssertionError) as raised:
        any_fake.workflows.assert_run_failed(second)
    assert str(raised.value).startswith(
        f"expected workflow run {second!r} to have failed; it is RUN_CANCELED.\n"
        f"{second} ({APP}/wf): RUN_CANCELED at {any_fake.clock.now}"
    )


def test_the_rest_triggers_start_runs(any_fake: QStashTasksFake) -> None:
    seen: list[DeliveryRequest] = []
    any_fake.destination(f"{APP}/wf").deliver_to(lambda d: seen.append(d) or 200)
    now = any_fake.clock.now
    one = v2(
        any_fake, "POST", f"/v2/trigger/{APP}/wf", data=b'{"a": 1}',
        headers={"Upstash-Workflow-RunId": "wfr_rest", "Upstash-Forward-X-Tenant": "acme"},
    )  # fmt: skip
    assert one.json() == {"workflowRunId": "wfr_rest", "workflowCreatedAt": now}
    many = v2(
        any_fake, "POST", "/v2/batch/trigger",
        json=[
            {"destination": f"{APP}/wf", "body": "2"},
            {"destination": f"{APP}/wf", "headers": {"Upstash-Workflow-RunId": "wfr_rest"}},
        ],
    )  # fmt: skip
    made, again = many.json()
    assert made["workflowRunId"].startswith("wfr_")
    assert again == {"workflowRunId": "wfr_rest", "workflowCreatedAt": now, "deduplicated": True}
    any_fake.clock.run_all()
    assert len(seen) == 2  # one delivery a run: the duplicate started nothing
    first = next(d for d in seen if d.header("Upstash-Workflow-RunId") == "wfr_rest")
    assert first.header("X-Tenant") == "acme"
    assert json.loads(first.body)[0]["body"] == base64.b64encode(b'{"a": 1}').decode()
    published = next(p for p in any_fake.published if "wfr_rest" in dict(p.headers).values())
    assert dict(published.headers)["upstash-failure-callback"] == f"{APP}/wf"  # by default
    bad = v2(any_fake, "POST", "/v2/batch/trigger", json=[{"body": "x"}])
    assert bad.json() == {
        "error": 'run 0: each run is a JSON object with the workflow\'s URL as "destination"'
    }
    assert v2(any_fake, "POST", "/v2/batch/trigger", json=[]).status_code == 400
    assert v2(any_fake, "GET", f"/v2/trigger/{APP}/wf").status_code == 405
    any_fake.assert_all_requests_served = False


def test_sleep_until_wakes_the_run_at_that_instant_of_the_fake_s_clock(
    any_fake: QStashTasksFake, workflow_client: AsyncQStash
) -> None:
    woke: list[int] = []
    wake_at = any_fake.clock.now // 1000 + 30 * 86_400  # a month from the clock's start
    app = FastAPI()
    serve = FastApiServe(app)

    @serve.post("/api/later", qstash_client=workflow_client)
    async def later(context: AsyncWorkflowContext[Any]) -> None:
        await context.sleep_until("the first of the month", wake_at)

        async def wake() -> None:
            woke.append(any_fake.clock.now)

        await context.run("wake", wake)

    any_fake.destination(f"{APP}/api/*").deliver_to(app)
    any_fake.workflows.trigger(f"{APP}/api/later")
    any_fake.clock.run_all(horizon=40 * 86_400_000)
    assert woke == [wake_at * 1000]
    run = any_fake.workflows.assert_run_succeeded()
    assert [(s.name, s.type) for s in run.steps] == [
        ("the first of the month", "SleepUntil"), ("wake", "Run"),
    ]  # fmt: skip


def test_a_waiter_shows_what_its_wait_gave_and_its_timeout_goes_where_it_said(
    any_fake: QStashTasksFake,
) -> None:
    seen: list[DeliveryRequest] = []
    any_fake.destination(f"{APP}/*").deliver_to(lambda d: seen.append(d) or 200)
    run_id = any_fake.workflows.trigger(f"{APP}/wf", "{}")
    any_fake.clock.run_all()
    start = any_fake.clock.now
    body = wait_body(run_id, f"{APP}/wf", "w", timeout="90")  # seconds, as a number's text
    body |= {"timeoutUrl": f"{APP}/timeout", "timeoutBody": "late"}
    assert v2(any_fake, "POST", "/v2/wait/ev", json=body).status_code == 200
    assert v2(any_fake, "GET", "/v2/waiters/ev").json() == [{
        "url": f"{APP}/wf",
        "deadline": (start + 90_000) // 1000,
        "headers": body["timeoutHeaders"],
        "timeoutUrl": f"{APP}/timeout",
        "timeoutBody": "late",
        "timeoutHeaders": body["timeoutHeaders"],
    }]  # fmt: skip
    # Another run's safe notify does not reach this run's waiter.
    other = v2(any_fake, "POST", "/v2/notify/wfr_other/ev", data=b"x").json()
    assert other == {"waiter": None, "messageId": "", "error": ""}
    any_fake.clock.run_all()
    timed_out = seen[-1]
    assert timed_out.url == f"{APP}/timeout"
    step = json.loads(base64.b64decode(json.loads(timed_out.body)[-1]["body"]))
    assert step == {
        "stepId": 2, "stepType": "Wait", "stepName": "w", "concurrent": 1,
        "waitEventId": "ev", "timeout": "90", "waitTimeout": True,
    }  # fmt: skip
    assert any_fake.deliveries[-1].at == start + 90_000 + 200


def test_the_logs_filter_by_run_and_label_and_page_ten_by_default(
    any_fake: QStashTasksFake,
) -> None:
    any_fake.destination(f"{APP}/wf").deliver_to(lambda d: 200)
    for number in range(11):
        labelled = {"Upstash-Label": "vip"} if number == 3 else {}
        v2(
            any_fake, "POST", f"/v2/trigger/{APP}/wf",
            headers={"Upstash-Workflow-RunId": f"wfr_{number}", **labelled},
        )  # fmt: skip

    def ids(query: str) -> list[str]:
        runs = v2(any_fake, "GET", f"/v2/workflows/logs?{query}").json()["runs"]
        return [run["workflowRunId"] for run in runs]

    assert ids("") == [f"wfr_{n}" for n in range(10, 0, -1)]  # ten, newest first
    assert ids("workflowRunId=wfr_4") == ["wfr_4"]
    assert ids("label=vip") == ["wfr_3"]
    assert ids("count=100&cursor=10") == ["wfr_0"]
    too_many = v2(any_fake, "GET", "/v2/workflows/logs?count=101")
    assert (too_many.status_code, too_many.json()) == (
        400, {"error": "invalid count '101': want 1-100"},
    )  # fmt: skip
    bad_state = v2(any_fake, "GET", "/v2/workflows/logs?state=x")
    assert bad_state.status_code == 400
    any_fake.assert_all_requests_served = False


def test_a_run_s_settings_reach_steps_that_send_none_of_their_own(
    any_fake: QStashTasksFake,
) -> None:
    """@upstash/workflow 1.x sends retries, the failure callback and forwarded headers
    once, on the run's first message (Upstash-Feature-Set: WF_TriggerOnConfig); QStash
    applies them to the run's later steps."""
    any_fake.destination(f"{APP}/*").answers(200, 500)
    run_id = "wfr_config"
    features = {"Upstash-Feature-Set": "LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig"}
    first = v2(
        any_fake, "POST", f"/v2/publish/{APP}/api/flow", data=b"{}",
        headers={
            **features, "Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Init": "true",
            "Upstash-Retries": "0", "Upstash-Failure-Callback": f"{APP}/api/flow",
            "Upstash-Failure-Callback-Workflow-Calltype": "failureCall",
            "Upstash-Failure-Callback-Workflow-Runid": run_id,
            "Upstash-Forward-Tenant": "t1",
        },
    )  # fmt: skip
    assert first.status_code == 200
    step = v2(
        any_fake, "POST", f"/v2/publish/{APP}/api/flow", data=b'{"stepId": 1}',
        headers={**features, "Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Init": "false"},
    )  # fmt: skip
    message = v2(any_fake, "GET", f"/v2/messages/{step.json()['messageId']}").json()
    assert (message["maxRetries"], message["failureCallback"]) == (0, f"{APP}/api/flow")
    assert message["header"]["Tenant"] == ["t1"]
    any_fake.clock.run_all()
    assert any_fake.workflows.get(run_id).state == "RUN_FAILED"  # no retry: failed at once
    # A step that names its own settings keeps them; an SDK without the feature gets none.
    own = v2(
        any_fake, "POST", f"/v2/publish/{APP}/api/other", data=b"{}",
        headers={"Upstash-Workflow-RunId": "wfr_plain", "Upstash-Workflow-Init": "true",
                 "Upstash-Retries": "0"},
    )  # fmt: skip
    assert own.status_code == 200
    plain = v2(
        any_fake, "POST", f"/v2/publish/{APP}/api/other", data=b"{}",
        headers={"Upstash-Workflow-RunId": "wfr_plain", "Upstash-Workflow-Init": "false"},
    )  # fmt: skip
    assert (
        v2(any_fake, "GET", f"/v2/messages/{plain.json()['messageId']}").json()["maxRetries"] == 3
    )
