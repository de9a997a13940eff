// The Workflow DLQ and `context.invoke` in Node, against the standalone fake with
// --deliver: @upstash/workflow's client lists a failed run, resumes it from the failed
// step, restarts it from its payload and deletes it; a workflow invokes another and reads
// its result. Served by `serveMany` (the cloudflare adapter: a fetch handler) on node:http.
// Run by `make examples` when Node is installed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Client as QStashClient, Receiver } from "@upstash/qstash";
import { Client as WorkflowClient } from "@upstash/workflow";
import { createWorkflow, serveMany } from "@upstash/workflow/cloudflare";
import { answerWith, startFake } from "./fake.mjs";

const TOKEN = "node-workflow-dlq-token";
const CURRENT = "sig_" + "d".repeat(28);
const NEXT = "sig_" + "e".repeat(28);
let fake;
let baseUrl;
let control;
let app;
let appUrl;
let workflows;
const did = [];
let bankDown = true;

function startApp() {
  const qstashClient = new QStashClient({ token: TOKEN, baseUrl });
  const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT });
  const order = createWorkflow(
    async (context) => {
      await context.run("reserve", () => {
        did.push(`reserve ${context.workflowRunId}`);
        return "reserved";
      });
      await context.run("charge", () => {
        did.push(`charge ${context.workflowRunId}`);
        if (bankDown) throw new Error("the bank is down");
        return "paid";
      });
    },
    {
      retries: 0,
      failureFunction: async ({ context }) => {
        did.push(`failure function ${context.workflowRunId}`);
      },
    },
  );
  const child = createWorkflow(async (context) => {
    return await context.run("double", () => ({ doubled: context.requestPayload.n * 2 }));
  });
  const parent = createWorkflow(async (context) => {
    const { body, isFailed, isCanceled } = await context.invoke("ask the child", {
      workflow: child,
      body: { n: 21 },
    });
    await context.run("record", () => {
      did.push(`the child said ${JSON.stringify(body)}, failed ${isFailed}, canceled ${isCanceled}`);
    });
  });
  const { fetch } = serveMany({ order, child, parent }, { qstashClient, receiver });
  const handler = (request) => fetch(request, {});
  return createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => answerWith(handler, appUrl, request, Buffer.concat(chunks), response));
  });
}

before(async () => {
  ({ fake, baseUrl, control } = await startFake(TOKEN, {
    args: ["--deliver"],
    env: { QSTASH_CURRENT_SIGNING_KEY: CURRENT, QSTASH_NEXT_SIGNING_KEY: NEXT },
  }));
  app = startApp();
  await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
  appUrl = `http://127.0.0.1:${app.address().port}`;
  workflows = new WorkflowClient({ token: TOKEN, baseUrl });
});

after(() => {
  fake.stdin.end();
  app.close();
});

async function stateOf(workflowRunId) {
  const { runs } = await workflows.logs({ workflowRunId });
  return runs[0].workflowState;
}

// A run of the order workflow whose charge fails (no retry); its DLQ entry.
async function failedOrder() {
  bankDown = true;
  const { workflowRunId } = await workflows.trigger({ url: `${appUrl}/order`, body: {}, retries: 0 });
  await control("POST", "clock", { runAll: true });
  assert.equal(await stateOf(workflowRunId), "RUN_FAILED");
  const { messages } = await workflows.dlq.list({ filter: { workflowRunId } });
  assert.equal(messages.length, 1);
  return { workflowRunId, entry: messages[0] };
}

test("a failed run is listed, then resumed from the step that failed", async () => {
  await workflows.dlq.delete({ all: true });
  const { workflowRunId, entry } = await failedOrder();
  assert.equal(entry.workflowUrl, `${appUrl}/order`);
  assert.equal(entry.responseStatus, 500);
  assert.equal(entry.failureCallbackInfo.state, "CALLBACK_SUCCESS");
  assert.ok(did.includes(`failure function ${workflowRunId}`), JSON.stringify(did));

  bankDown = false;
  did.length = 0;
  const { workflowRuns } = await workflows.dlq.resume(entry.dlqId);
  const resumed = workflowRuns[0].workflowRunId;
  assert.notEqual(resumed, workflowRunId);
  await control("POST", "clock", { runAll: true });

  assert.deepEqual(did, [`charge ${resumed}`]); // nothing reserved twice
  assert.equal(await stateOf(resumed), "RUN_SUCCESS");
  assert.deepEqual((await workflows.dlq.list()).messages, []);
});

test("a failed run is restarted from its payload, or deleted", async () => {
  const { entry } = await failedOrder();
  bankDown = false;
  did.length = 0;
  const { workflowRuns } = await workflows.dlq.restart([entry.dlqId]);
  const restarted = workflowRuns[0].workflowRunId;
  await control("POST", "clock", { runAll: true });
  assert.deepEqual(did, [`reserve ${restarted}`, `charge ${restarted}`]);
  assert.equal(await stateOf(restarted), "RUN_SUCCESS");

  await failedOrder();
  await failedOrder();
  const { deleted } = await workflows.dlq.delete({ filter: { workflowUrl: `${appUrl}/order` } });
  assert.equal(deleted, 2);
  assert.deepEqual((await workflows.dlq.list()).messages, []);
});

test("a workflow invokes another and reads what it returned", async () => {
  did.length = 0;
  const { workflowRunId } = await workflows.trigger({ url: `${appUrl}/parent`, body: {} });
  await control("POST", "clock", { runAll: true });
  assert.deepEqual(did, ['the child said {"doubled":42}, failed false, canceled false']);
  assert.equal(await stateOf(workflowRunId), "RUN_SUCCESS");
});
