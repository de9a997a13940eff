// An Upstash Workflow in Node (@upstash/workflow's `serve` on a node:http server) run by
// the standalone fake with --deliver: a step, two steps in parallel, a week's sleep, a call,
// and waitForEvent answered by the Workflow client's notify (or timing out), each on the
// fake's clock, moved with POST /_fake/clock. Run by `make examples` when Node is installed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Client as QStashClient, Receiver } from "@upstash/qstash";
import { Client as WorkflowClient } from "@upstash/workflow";
import { serve } from "@upstash/workflow";
import { answerWith, startFake } from "./fake.mjs";

const TOKEN = "node-workflow-token";
const CURRENT = "sig_" + "w".repeat(28);
const NEXT = "sig_" + "x".repeat(28);
const DAY = 86_400_000;
let fake;
let baseUrl;
let control;
let app;
let appUrl;
let workflows;
const sent = [];

// The app: a workflow at /onboard, and the CRM it calls at /crm (a third party).
function startApp() {
  const qstashClient = new QStashClient({ token: TOKEN, baseUrl });
  const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT });
  const { handler } = serve(
    async (context) => {
      const email = await context.run("welcome", () => {
        sent.push(`welcome ${context.requestPayload.email}`);
        return context.requestPayload.email;
      });
      const [left, right] = await Promise.all([
        context.run("left", () => "L"),
        context.run("right", () => "R"),
      ]);
      await context.sleep("a week", "7d");
      const crm = await context.call("crm", {
        url: `${appUrl}/crm`,
        method: "POST",
        body: JSON.stringify({ email }), // CallSettings.body is a string
      });
      const { eventData, timeout } = await context.waitForEvent("approval", `approve-${email}`, {
        timeout: "1d",
      });
      await context.run("finish", () => {
        sent.push(`finish ${left}${right} ${crm.status} ${timeout ? "timed out" : eventData.by}`);
      });
    },
    { qstashClient, receiver },
  );
  return createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      const body = Buffer.concat(chunks);
      if (request.url === "/crm") {
        response.writeHead(201, { "content-type": "application/json" }).end('{"id": "c_7"}');
        return;
      }
      await answerWith(handler, appUrl, request, body, response);
    });
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

async function runOf(workflowRunId) {
  const { runs } = await workflows.logs({ workflowRunId });
  return runs[0];
}

test("a workflow sleeps a week, calls a third party and waits for an event it is sent", async () => {
  sent.length = 0;
  const { workflowRunId } = await workflows.trigger({
    url: `${appUrl}/onboard`,
    body: { email: "ada@example.com" },
  });
  await control("POST", "clock", { advanceMs: 7 * DAY + 10_000 });
  assert.deepEqual(sent, ["welcome ada@example.com"]);
  const waiters = await workflows.getWaiters({ eventId: "approve-ada@example.com" });
  assert.equal(waiters.length, 1);

  const notified = await workflows.notify({
    eventId: "approve-ada@example.com",
    eventData: { by: "grace" },
  });
  assert.equal(notified.length, 1);
  await control("POST", "clock", { runAll: true });

  assert.deepEqual(sent, ["welcome ada@example.com", "finish LR 201 grace"]);
  const run = await runOf(workflowRunId);
  assert.equal(run.workflowState, "RUN_SUCCESS");
  const groups = run.steps.map((group) => [group.type, group.steps.map((step) => step.stepName)]);
  assert.deepEqual(groups.slice(0, 2), [
    ["sequential", ["init"]],
    ["sequential", ["welcome"]],
  ]);
  assert.deepEqual(groups.at(-1), ["sequential", ["finish"]]);
  assert.ok(
    groups.some(([type, names]) => type === "parallel" && names.includes("left")),
    JSON.stringify(groups),
  );
});

test("a wait whose day runs out goes on with timeout set", async () => {
  sent.length = 0;
  const { workflowRunId } = await workflows.trigger({
    url: `${appUrl}/onboard`,
    body: { email: "bo@example.com" },
  });
  await control("POST", "clock", { runAll: true });
  assert.deepEqual(sent, ["welcome bo@example.com", "finish LR 201 timed out"]);
  assert.equal((await runOf(workflowRunId)).workflowState, "RUN_SUCCESS");
});
