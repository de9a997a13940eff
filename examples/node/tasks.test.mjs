// A Node test against the standalone fake: start `qstash-tasks-fake serve`, seed it
// through its control endpoints, and page through a message's tasks with fetch.
// Run with `node --test examples/node/tasks.test.mjs` (`make examples` does when Node
// is installed); QSTASH_TASKS_FAKE names the command if it is not on PATH.
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { startFake } from "./fake.mjs";

const TOKEN = "node-test-token";
const auth = { Authorization: `Bearer ${TOKEN}` };
let fake;
let baseUrl;
let control;

before(async () => {
  ({ fake, baseUrl, control } = await startFake(TOKEN));
});

after(() => fake.stdin.end());

beforeEach(async () => {
  await control("POST", "reset");
});

// The code under test: every task of a message, following the cursors.
async function allTasks(messageId) {
  const tasks = [];
  let cursor;
  do {
    const query = cursor ? `?cursor=${cursor}` : "";
    const response = await fetch(`${baseUrl}/v1/messages/${messageId}/tasks${query}`, {
      headers: auth,
    });
    if (!response.ok) throw new Error(`QStash answered ${response.status}`);
    const page = await response.json();
    tasks.push(...page.tasks);
    cursor = page.cursor;
  } while (cursor);
  return tasks;
}

test("pages through every task of a seeded message", async () => {
  await control("POST", "messages", { messageId: "msg_123", count: 250 });
  const tasks = await allTasks("msg_123");
  assert.equal(tasks.length, 250);
  assert.equal(new Set(tasks.map((task) => task.taskId)).size, 250);
  const { calls } = await control("GET", "calls");
  assert.deepEqual(
    calls.map((call) => call.taskCount),
    [100, 100, 50],
  );
  assert.deepEqual(await control("GET", "problems"), { problems: [] });
});

test("a planned 503 reaches the client", async () => {
  await control("POST", "messages", { messageId: "msg_123", count: 3 });
  await control("POST", "faults", { kind: "fail", status: 503 });
  await assert.rejects(allTasks("msg_123"), /QStash answered 503/);
  assert.equal((await allTasks("msg_123")).length, 3);
});

test("a simulated delivery moves with the fake's clock", async () => {
  const delivery = { url: "https://example.com/hook", outcomes: [500, 200] };
  await control("POST", "messages/msg_1/deliveries", delivery);
  assert.equal((await allTasks("msg_1"))[0].state, "created");
  await control("POST", "clock", { advanceMs: 60_000 });
  const [task] = await allTasks("msg_1");
  assert.equal(task.state, "delivered");
  assert.equal(task.retried, 1);
});

test("a message published with fetch is delivered as the destination answers", async () => {
  const hook = "https://app.example.com/hook";
  await control("POST", "destinations", { target: hook, answers: [503, 200] });
  const published = await fetch(`${baseUrl}/v2/publish/${hook}`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json", "upstash-retries": "2" },
    body: JSON.stringify({ order: 7 }),
  });
  assert.equal(published.status, 200);
  const { messageId } = await published.json();
  assert.equal((await allTasks(messageId))[0].state, "created");
  await control("POST", "clock", { advanceMs: 60_000 });
  const [task] = await allTasks(messageId);
  assert.deepEqual([task.state, task.retried, task.error], ["delivered", 1, "HTTP status 503"]);
  const { published: sent } = await control("GET", "published");
  assert.deepEqual(JSON.parse(sent[0].body), { order: 7 });
  assert.deepEqual(await control("GET", "problems"), { problems: [] });
});
