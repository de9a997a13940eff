"""The Workflow DLQ and ``invoke``: a run whose step fails for good is listed as a
failed run (``GET /v2/workflows/dlq``, ``GET /v2/dlq?source=workflow``), resumed from
the failed step or restarted from its payload, its failed failure function called again;
a run another one invoked hands it its outcome. The workflow is served by Flask with
``upstash-workflow`` as it installs; the calls it has no client for are made over HTTP
(``@upstash/workflow``'s client makes them in ``examples/node/workflow.test.mjs``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from upstash_workflow import WorkflowContext
from upstash_workflow.flask import Serve as FlaskServe

from pytest_qstash_tasks import QStashTasksFake
from tests.helpers import v2

pytestmark = pytest.mark.usefixtures("workflow_env")

APP = "https://shop.example.com"
ORDER = f"{APP}/api/order"
Log = list[tuple[str, ...]]


def shop(log: Log, down: set[str], client: Any) -> Flask:
    """An order workflow: reserve, then charge (which fails while the bank is down);
    its failure function fails while the pager is down."""
    app = Flask("shop")
    serve = FlaskServe(app)

    def on_failure(context: WorkflowContext[Any], status: int, message: str, headers: Any) -> None:
        log.append(("failure function", context.workflow_run_id, message))
        if "pager" in down:
            raise RuntimeError("the pager is down")

    @serve.route("/api/order", qstash_client=client, retries=1, failure_function=on_failure)
    def order(context: WorkflowContext[dict[str, Any]]) -> None:
        def reserve() -> str:
            log.append(("reserve", context.workflow_run_id))
            return "reserved"

        def charge() -> str:
            log.append(("charge", context.workflow_run_id))
            if "bank" in down:
                raise RuntimeError("the bank is down")
            return "paid"

        context.run("reserve", reserve)
        context.run("charge", charge)

    return app


def failed_order(fake: QStashTasksFake, client: Any, down: set[str]) -> tuple[str, Log]:
    """A run of the shop whose charge failed for good; its id and what the app did."""
    log: Log = []
    fake.destination(f"{APP}/api/*").deliver_to(shop(log, down, client))
    run_id = fake.workflows.trigger(ORDER, '{"sku": "s1"}', retries=1, failure_url=ORDER)
    fake.clock.run_all()
    fake.workflows.assert_run_failed(run_id)
    return run_id, log


def only_entry(fake: QStashTasksFake) -> dict[str, Any]:
    answer = v2(fake, "GET", "/v2/workflows/dlq")
    assert answer.status_code == 200
    (entry,) = answer.json()["messages"]
    assert "cursor" not in answer.json()
    return dict(entry)


def test_a_failed_run_is_listed_with_its_run_and_its_failure_function(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    run_id, log = failed_order(any_fake, sync_workflow_client, {"bank"})
    assert log == [
        ("reserve", run_id),
        ("charge", run_id),
        ("charge", run_id),  # its one retry
        ("failure function", run_id, "the bank is down"),
    ]
    run = any_fake.workflows.get(run_id)
    entry = only_entry(any_fake)
    assert entry == {
        **dead_to_json(any_fake, entry["dlqId"]),
        "workflowRunId": run_id,
        "workflowCreatedAt": run.created_at,
        "workflowUrl": ORDER,
        "failureFunctionState": "CALLBACK_SUCCESS",
        "failureCallbackInfo": {"state": "CALLBACK_SUCCESS"},
    }
    assert (entry["url"], entry["responseStatus"]) == (ORDER, 500)
    # What @upstash/workflow's dlq.list calls answers the same.
    by_source = v2(any_fake, "GET", "/v2/dlq?source=workflow")
    assert by_source.json() == {"messages": [entry]}
    one = v2(any_fake, "GET", f"/v2/workflows/dlq/{entry['dlqId']}")
    assert (one.status_code, one.json()) == (200, entry)


def dead_to_json(fake: QStashTasksFake, dlq_id: str) -> dict[str, Any]:
    answer = v2(fake, "GET", f"/v2/dlq/{dlq_id}")
    assert answer.status_code == 200
    return dict(answer.json())


def test_resume_goes_on_from_the_failed_step_in_a_new_run(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank"}
    run_id, log = failed_order(any_fake, sync_workflow_client, down)
    dlq_id = only_entry(any_fake)["dlqId"]
    down.clear()  # the bank is back
    log.clear()

    answer = v2(any_fake, "POST", f"/v2/workflows/dlq/resume/{dlq_id}")
    assert answer.status_code == 200
    resumed = answer.json()["workflowRunId"]
    assert resumed.startswith("wfr_")
    assert resumed != run_id
    assert answer.json() == {
        "workflowRunId": resumed,
        "workflowCreatedAt": any_fake.clock.now,
    }
    any_fake.clock.run_all()

    assert log == [("charge", resumed)]  # the reservation is not made again
    run = any_fake.workflows.assert_run_succeeded(resumed)
    assert [step.name for step in run.steps] == ["reserve", "charge"]
    assert any_fake.workflows.get(run_id).state == "RUN_FAILED"  # the old run stays so
    assert v2(any_fake, "GET", "/v2/workflows/dlq").json() == {"messages": []}
    assert len(any_fake.dlq.list()) == 0


def test_restart_runs_every_step_again_from_the_initial_payload(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank"}
    _, log = failed_order(any_fake, sync_workflow_client, down)
    dlq_id = only_entry(any_fake)["dlqId"]
    down.clear()
    log.clear()

    answer = v2(any_fake, "POST", f"/v2/workflows/dlq/restart/{dlq_id}")
    assert answer.status_code == 200
    restarted = answer.json()["workflowRunId"]
    any_fake.clock.run_all()

    assert log == [("reserve", restarted), ("charge", restarted)]
    run = any_fake.workflows.assert_run_succeeded(restarted)
    assert run.payload == b'{"sku": "s1"}'
    assert len(any_fake.dlq.list()) == 0


def test_resume_and_restart_take_new_settings_and_act_in_bulk(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank"}
    failed_order(any_fake, sync_workflow_client, down)
    any_fake.workflows.trigger(ORDER, "{}", retries=1, failure_url=ORDER)
    any_fake.clock.run_all()
    assert len(v2(any_fake, "GET", "/v2/workflows/dlq").json()["messages"]) == 2

    # The bank is still down: resumed with no retry, each run fails at once.
    answer = v2(
        any_fake, "POST", "/v2/workflows/dlq/resume?count=1", headers={"Upstash-Retries": "0"}
    )
    assert answer.status_code == 200
    (first,) = answer.json()["workflowRuns"]
    assert answer.json()["cursor"]
    rest = v2(any_fake, "POST", f"/v2/workflows/dlq/restart?cursor={answer.json()['cursor']}")
    (second,) = rest.json()["workflowRuns"]
    assert "cursor" not in rest.json()
    any_fake.clock.run_all()

    assert len(any_fake.dlq.list()) == 2  # both failed again
    entries = v2(any_fake, "GET", "/v2/workflows/dlq").json()["messages"]
    retries = {entry["workflowRunId"]: entry["maxRetries"] for entry in entries}
    assert retries == {first["workflowRunId"]: 0, second["workflowRunId"]: 1}


def test_a_failed_failure_function_is_called_again_once_asked(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank", "pager"}
    run_id, log = failed_order(any_fake, sync_workflow_client, down)
    assert log.count(("failure function", run_id, "the bank is down")) == 2  # and its retry
    entry = only_entry(any_fake)
    assert entry["failureFunctionState"] == "CALLBACK_FAIL"
    failed = v2(any_fake, "GET", "/v2/workflows/dlq?failureFunctionState=CALLBACK_FAIL")
    assert failed.json()["messages"] == [entry]
    assert v2(
        any_fake, "GET", "/v2/workflows/dlq?failureFunctionState=CALLBACK_SUCCESS"
    ).json() == {"messages": []}
    down.discard("pager")
    log.clear()

    answer = v2(any_fake, "POST", f"/v2/workflows/dlq/callback/{entry['dlqId']}")
    assert answer.status_code == 200
    assert answer.json() == {
        "workflowRunId": run_id,
        "workflowCreatedAt": any_fake.workflows.get(run_id).created_at,
    }
    assert only_entry(any_fake)["failureFunctionState"] == "CALLBACK_INPROGRESS"
    any_fake.clock.run_all()

    assert log == [("failure function", run_id, "the bank is down")]
    assert only_entry(any_fake)["failureFunctionState"] == "CALLBACK_SUCCESS"
    again = v2(any_fake, "POST", f"/v2/workflows/dlq/callback/{entry['dlqId']}")
    assert (again.status_code, again.json()) == (400, {
        "error": f"the failure function of {entry['dlqId']!r} has not failed "
        "(CALLBACK_SUCCESS): only a failed one is called again"
    })  # fmt: skip
    cancel = v2(any_fake, "DELETE", f"/v2/workflows/dlq/callback/{entry['dlqId']}")
    assert (cancel.status_code, cancel.json()) == (400, {
        "error": f"no failure function in progress for {entry['dlqId']!r} (CALLBACK_SUCCESS)"
    })  # fmt: skip
    any_fake.assert_all_requests_served = False


def test_a_failure_function_in_progress_can_be_cancelled(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank", "pager"}
    _, log = failed_order(any_fake, sync_workflow_client, down)
    dlq_id = only_entry(any_fake)["dlqId"]
    v2(any_fake, "POST", f"/v2/workflows/dlq/callback/{dlq_id}")
    log.clear()

    answer = v2(any_fake, "DELETE", f"/v2/workflows/dlq/callback/{dlq_id}", allow_redirects=False)
    assert (answer.status_code, answer.content) == (302, b"")
    any_fake.clock.run_all()

    assert log == []
    assert only_entry(any_fake)["failureFunctionState"] == "CALLBACK_CANCELED"


def test_failed_runs_are_deleted_one_by_one_by_ids_and_by_filter(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank"}
    failed_order(any_fake, sync_workflow_client, down)
    for _ in range(3):
        any_fake.workflows.trigger(ORDER, "{}", retries=1, failure_url=ORDER)
    any_fake.clock.run_all()
    ids = [entry["dlqId"] for entry in v2(any_fake, "GET", "/v2/workflows/dlq").json()["messages"]]
    assert len(ids) == 4

    one = v2(any_fake, "DELETE", f"/v2/workflows/dlq/{ids[0]}")
    assert (one.status_code, one.content) == (200, b"")
    named = v2(any_fake, "DELETE", f"/v2/workflows/dlq?dlqIds={ids[1]}&dlqIds={ids[2]}")
    assert named.json() == {"deleted": 2}
    by_url = v2(any_fake, "DELETE", f"/v2/workflows/dlq?workflowUrl={ORDER}&count=5")
    assert by_url.json() == {"deleted": 1}
    assert len(any_fake.dlq.list()) == 0
    assert v2(any_fake, "GET", "/v2/workflows/dlq").json() == {"messages": []}
    gone = v2(any_fake, "GET", f"/v2/workflows/dlq/{ids[0]}")
    assert (gone.status_code, gone.json()) == (404, {"error": f"no DLQ entry {ids[0]!r}"})
    any_fake.assert_all_requests_served = False


def test_the_workflow_dlq_pages_and_filters_and_keeps_other_messages_out(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank"}
    failed_order(any_fake, sync_workflow_client, down)
    labelled = any_fake.workflows.trigger(
        ORDER, "{}", retries=1, failure_url=ORDER, headers={}, run_id="gift"
    )
    any_fake.destination("https://elsewhere.example.com/*").answers(500)
    v2(any_fake, "POST", "/v2/publish/https://elsewhere.example.com/x",
       headers={"Upstash-Retries": "0"})  # fmt: skip
    any_fake.clock.run_all()
    assert len(any_fake.dlq.list()) == 3  # a plain message's entry too

    first = v2(any_fake, "GET", "/v2/workflows/dlq?count=1").json()
    assert len(first["messages"]) == 1
    second = v2(any_fake, "GET", f"/v2/workflows/dlq?count=1&cursor={first['cursor']}").json()
    assert [entry["workflowRunId"] for entry in second["messages"]] == [labelled]
    assert "cursor" not in second
    by_run = v2(any_fake, "GET", f"/v2/workflows/dlq?workflowRunId={labelled}").json()
    assert [entry["workflowRunId"] for entry in by_run["messages"]] == [labelled]
    (plain,) = [entry for entry in any_fake.dlq.list() if "elsewhere" in entry.url]
    not_a_run = v2(any_fake, "GET", f"/v2/workflows/dlq/{plain.dlq_id}")
    assert (not_a_run.status_code, not_a_run.json()) == (404, {
        "error": f"DLQ entry {plain.dlq_id!r} is not a workflow run's step"
    })  # fmt: skip
    resume = v2(any_fake, "POST", f"/v2/workflows/dlq/resume/{plain.dlq_id}")
    assert resume.status_code == 400
    any_fake.assert_all_requests_served = False


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/v2/workflows/dlq?count=0", 400, "invalid count '0': want 1-100"),
        ("GET", "/v2/workflows/dlq?count=101", 400, "invalid count '101': want 1-100"),
        ("GET", "/v2/workflows/dlq?cursor=x", 400, "invalid cursor 'x': use the cursor of a page"),
        (
            "GET",
            "/v2/workflows/dlq?host=a",
            400,
            "unknown filter 'host': this endpoint takes "
            "callerIp, dlqIds, failureFunctionState, flowControlKey, fromDate, label, "
            "responseStatus, toDate, workflowCreatedAt, workflowRunId, workflowUrl",
        ),
        ("GET", "/v2/dlq?source=qstash", 400, "invalid source 'qstash': workflow, or leave it out"),
        ("GET", "/v2/workflows/dlq/nope", 404, "no DLQ entry 'nope'"),
        ("POST", "/v2/workflows/dlq/resume/nope", 404, "no DLQ entry 'nope'"),
        ("POST", "/v2/workflows/dlq/restart?dlqIds=nope", 404, "no DLQ entry 'nope'"),
        ("POST", "/v2/workflows/dlq/callback/nope", 404, "no DLQ entry 'nope'"),
        ("GET", "/v2/workflows/dlq/a/b", 404, "no Workflow DLQ endpoint at /v2/workflows/dlq/a/b"),
    ],
)
def test_bad_workflow_dlq_calls_are_refused_in_words_and_change_nothing(
    any_fake: QStashTasksFake,
    sync_workflow_client: Any,
    method: str,
    path: str,
    status: int,
    words: str,
) -> None:
    failed_order(any_fake, sync_workflow_client, {"bank"})
    before = only_entry(any_fake)
    runs = len(any_fake.workflows.list())

    answer = v2(any_fake, method, path)

    assert (answer.status_code, answer.json()) == (status, {"error": words})
    assert only_entry(any_fake) == before
    assert len(any_fake.workflows.list()) == runs
    any_fake.assert_all_requests_served = False


def invoke_child(fake: QStashTasksFake, run_id: str, invoke: dict[str, Any]) -> Any:
    """What @upstash/workflow's context.invoke publishes: the run ``run_id`` at the
    child workflow, started with ``invoke`` (the invoker, the step, the payload)."""
    return v2(
        fake, "POST", f"/v2/publish/{APP}/api/child", data=json.dumps(invoke),
        headers={
            "Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Init": "true",
            "Upstash-Workflow-Invoke": "true",
        },
    )  # fmt: skip


def test_an_invoked_run_hands_its_outcome_to_the_invoker(any_fake: QStashTasksFake) -> None:
    """What @upstash/workflow's context.invoke asks of QStash, over HTTP: the invoked
    run starts with the payload inside the invoke's body; once it ends, the invoker's
    next message carries the Invoke step with the outcome."""
    got: list[Any] = []
    any_fake.destination(f"{APP}/*").deliver_to(lambda delivery: got.append(delivery) or 200)
    parent = any_fake.workflows.trigger(f"{APP}/api/parent", "{}")
    any_fake.clock.run_all()
    step = {"stepId": 2, "stepName": "invoke child", "stepType": "Invoke", "concurrent": 1}
    invoke = {
        "body": '"child payload"',
        "headers": {
            "Upstash-Workflow-RunId": [parent],
            "Upstash-Workflow-Url": [f"{APP}/api/parent"],
            "Upstash-Workflow-Init": ["false"],
            "Authorization": ["Bearer secret"],
        },
        "workflowRunId": parent,
        "workflowRunCreatedAt": any_fake.workflows.get(parent).created_at,
        "workflowUrl": f"{APP}/api/parent",
        "step": step,
    }
    published = invoke_child(any_fake, "wfr_child", invoke)
    assert published.status_code == 200
    any_fake.clock.run_all()
    child_first = got[-1]
    assert child_first.url == f"{APP}/api/child"
    (initial,) = child_first.json()  # the payload inside the invoke's body
    assert base64.b64decode(initial["body"]) == b'"child payload"'
    assert any_fake.workflows.get("wfr_child").payload == b'"child payload"'

    ended = v2(any_fake, "DELETE", "/v2/workflows/runs/wfr_child?cancel=false", data=b'"done"')
    assert ended.status_code == 200
    any_fake.clock.run_all()

    to_parent = got[-1]
    assert to_parent.url == f"{APP}/api/parent"
    assert to_parent.header("upstash-workflow-runid") == parent
    steps = to_parent.json()
    invoke_step = json.loads(base64.b64decode(steps[-1]["body"]))
    assert invoke_step == {
        **step,
        "out": json.dumps({"body": '"done"', "isFailed": False, "isCanceled": False}),
    }
    assert any_fake.workflows.get(parent).steps[-1].name == "invoke child"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"workflowUrl": "not a url"}, "an invoke's workflowUrl 'not a url': "),
        ({"headers": {"Bad Name": ["x"]}}, "an invoke's headers: invalid header name 'bad name'"),
        ({"headers": {"X": "not a list"}}, "an invoke's body is the JSON the Workflow SDKs send"),
        ({"step": None}, "an invoke's body is the JSON the Workflow SDKs send"),
    ],
)
def test_an_invoke_the_fake_could_not_answer_is_refused_in_words(
    any_fake: QStashTasksFake, change: dict[str, Any], words: str
) -> None:
    invoke = {
        "body": "{}", "headers": {}, "workflowRunId": "wfr_parent",
        "workflowUrl": f"{APP}/api/parent", "step": {"stepId": 1}, **change,
    }  # fmt: skip
    answer = invoke_child(any_fake, "wfr_child", invoke)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(words)
    assert any_fake.workflows.list() == []
    any_fake.assert_all_requests_served = False


def test_an_invoked_run_cancelled_tells_the_invoker_so_and_an_ended_invoker_hears_nothing(
    any_fake: QStashTasksFake,
) -> None:
    got: list[Any] = []
    any_fake.destination(f"{APP}/*").deliver_to(lambda delivery: got.append(delivery) or 200)
    parents = [any_fake.workflows.trigger(f"{APP}/api/parent", "{}") for _ in range(2)]
    any_fake.clock.run_all()
    for index, parent in enumerate(parents):
        invoke = {
            "headers": {"Upstash-Workflow-RunId": [parent]}, "workflowRunId": parent,
            "workflowRunCreatedAt": 0, "workflowUrl": f"{APP}/api/parent",
            "step": {"stepId": 3, "stepName": "child", "stepType": "Invoke", "concurrent": 1},
        }  # fmt: skip
        invoke_child(any_fake, f"wfr_child{index}", invoke)
    any_fake.clock.run_all()
    v2(any_fake, "DELETE", f"/v2/workflows/runs/{parents[1]}?cancel=true")
    delivered = len(got)

    for index in range(2):
        v2(any_fake, "DELETE", f"/v2/workflows/runs/wfr_child{index}?cancel=true")
    any_fake.clock.run_all()

    (to_parent,) = got[delivered:]  # the cancelled invoker is told nothing
    assert to_parent.header("upstash-workflow-runid") == parents[0]
    invoke_step = json.loads(base64.b64decode(to_parent.json()[-1]["body"]))
    assert json.loads(invoke_step["out"]) == {"isFailed": False, "isCanceled": True}
    assert any_fake.workflows.get("wfr_child0").state == "RUN_CANCELED"


def failed_runs(fake: QStashTasksFake, count: int) -> list[str]:
    """``count`` runs whose first step failed at once (no SDK: a scripted 500, no retry),
    and one plain message in the DLQ beside them; the runs' ids."""
    fake.destination(f"{APP}/api/*").answers(*[500] * count)
    fake.destination("https://plain.example.com/*").answers(500)
    runs = [
        fake.workflows.trigger(f"{APP}/api/job{index}", "{}", retries=0) for index in range(count)
    ]
    v2(fake, "POST", "/v2/publish/https://plain.example.com/x", headers={"Upstash-Retries": "0"})
    fake.clock.run_all()
    return runs


def test_bulk_calls_page_by_cursor_and_leave_other_messages_in_the_dlq(
    any_fake: QStashTasksFake,
) -> None:
    runs = failed_runs(any_fake, 3)
    assert len(any_fake.dlq.list()) == 4

    first = v2(any_fake, "DELETE", "/v2/workflows/dlq?count=1")
    assert first.status_code == 200
    assert first.json() == {"deleted": 1, "cursor": first.json()["cursor"]}
    rest = v2(any_fake, "DELETE", f"/v2/workflows/dlq?cursor={first.json()['cursor']}")
    assert rest.json() == {"deleted": 2}
    (plain,) = any_fake.dlq.list()  # not a run's: no Workflow DLQ call touches it
    assert plain.url == "https://plain.example.com/x"
    assert len(runs) == 3
    for path in ("?count=", "/resume/a/b"):
        method = "GET" if path.startswith("?") else "POST"
        assert v2(any_fake, method, f"/v2/workflows/dlq{path}").status_code in (400, 404)
    assert v2(any_fake, "DELETE", "/v2/workflows/dlq?count=").json() == {
        "error": "invalid count '': want 1-999999999"
    }
    named = v2(any_fake, "GET", f"/v2/workflows/dlq?dlqIds={plain.dlq_id}")
    assert (named.status_code, named.json()) == (
        400, {"error": "dlqIds names entries to act on: list with filters"},
    )  # fmt: skip
    any_fake.assert_all_requests_served = False


def test_the_workflow_dlq_filters_on_each_field(any_fake: QStashTasksFake) -> None:
    runs = failed_runs(any_fake, 2)
    created = any_fake.workflows.get(runs[1]).created_at
    entries = v2(any_fake, "GET", "/v2/workflows/dlq").json()["messages"]
    assert [entry["workflowRunId"] for entry in entries] == runs

    def listed(query: str) -> list[str]:
        answer = v2(any_fake, "GET", f"/v2/workflows/dlq?{query}").json()
        return [entry["workflowRunId"] for entry in answer["messages"]]

    assert listed(f"workflowUrl={APP}/api/job1") == [runs[1]]
    assert listed(f"workflowRunId={runs[0]}") == [runs[0]]
    assert listed(f"workflowCreatedAt={created}") == [run for run in runs if
        any_fake.workflows.get(run).created_at == created]  # fmt: skip
    assert listed("workflowCreatedAt=1") == []
    assert listed("callerIp=127.0.0.1") == runs
    assert listed("callerIp=10.0.0.1") == []
    assert listed("responseStatus=500") == runs
    assert listed("flowControlKey=k") == []
    assert listed("label=vip") == []
    assert listed("failureFunctionState=CALLBACK_FAIL") == []
    any_fake.assert_all_requests_served = False


def test_a_resumed_run_keeps_its_label_unless_the_resume_gives_one(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank"}
    log: Log = []
    any_fake.destination(f"{APP}/api/*").deliver_to(shop(log, down, sync_workflow_client))
    for _ in range(2):
        started = v2(
            any_fake, "POST", f"/v2/trigger/{ORDER}", data=b"{}",
            headers={"Upstash-Label": "vip", "Upstash-Retries": "0"},
        )  # fmt: skip
        assert started.status_code == 200
    any_fake.clock.run_all()
    first, second = (entry["dlqId"] for entry in only_entries(any_fake))
    down.clear()

    kept = v2(any_fake, "POST", f"/v2/workflows/dlq/resume/{first}").json()["workflowRunId"]
    given = v2(
        any_fake, "POST", f"/v2/workflows/dlq/resume/{second}", headers={"Upstash-Label": "gold"}
    ).json()["workflowRunId"]
    any_fake.clock.run_all()

    def label(run_id: str) -> str:
        logs = v2(any_fake, "GET", f"/v2/workflows/logs?workflowRunId={run_id}").json()
        return str(logs["runs"][0]["label"])

    assert (label(kept), label(given)) == ("vip", "gold")
    any_fake.workflows.assert_run_succeeded(kept)


def only_entries(fake: QStashTasksFake) -> list[dict[str, Any]]:
    return list(v2(fake, "GET", "/v2/workflows/dlq").json()["messages"])


def test_cancelling_a_failure_function_leaves_every_other_message_be(
    any_fake: QStashTasksFake, sync_workflow_client: Any
) -> None:
    down = {"bank", "pager"}
    failed_order(any_fake, sync_workflow_client, down)
    dlq_id = only_entry(any_fake)["dlqId"]
    any_fake.destination("https://other.example.com/*").answers(200)
    other = v2(any_fake, "POST", "/v2/publish/https://other.example.com/x").json()["messageId"]
    v2(any_fake, "POST", f"/v2/workflows/dlq/callback/{dlq_id}")

    v2(any_fake, "DELETE", f"/v2/workflows/dlq/callback/{dlq_id}", allow_redirects=False)
    any_fake.clock.run_all()

    assert any_fake.tasks(other)[0].state == "delivered"
