// The official Node SDK's message calls against the standalone fake: publish, get,
// every way @upstash/qstash cancels (one id, ids, a filter, all), URL groups and batches.
// The SDK sends a bulk cancel's ids and filters in the query string and parses every
// answer as JSON. Run by `make examples` when Node is installed (after `npm ci` here).
import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import { startFake } from "./fake.mjs";

const TOKEN = "node-messages-token";
const HOOK = "https://app.example.com/hook";
let fake;
let baseUrl;
let client;

before(async () => {
  ({ fake, baseUrl } = await startFake(TOKEN));
  client = new Client({ baseUrl, token: TOKEN, retry: false });
});

after(() => fake.stdin.end());

beforeEach(async () => {
  const reset = await fetch(`${baseUrl}/_fake/reset`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.ok(reset.ok);
});

// Messages a day away, so each is still pending when it is cancelled.
async function publish(count, options = {}) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    const { messageId } = await client.publishJSON({ url: HOOK, body: { i }, delay: "1d", ...options });
    ids.push(messageId);
  }
  return ids;
}

async function states(ids) {
  const result = [];
  for (const id of ids) {
    const response = await fetch(`${baseUrl}/v1/messages/${id}/tasks`, {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    result.push((await response.json()).tasks[0].state);
  }
  return result;
}

test("cancel(id) answers what the SDK parses, and cancels that message only", async () => {
  const ids = await publish(2);
  assert.equal((await client.messages.get(ids[0])).url, HOOK);
  assert.deepEqual(await client.messages.cancel(ids[0]), { cancelled: 1 });
  assert.deepEqual(await states(ids), ["canceled", "created"]);
  await client.messages.delete(ids[1]); // the deprecated spelling
  assert.deepEqual(await states(ids), ["canceled", "canceled"]);
});

test("cancel([ids]) and deleteMany cancel only the ids they name", async () => {
  const ids = await publish(4);
  assert.deepEqual(await client.messages.cancel([ids[0], ids[2], "msg_gone"]), { cancelled: 2 });
  assert.deepEqual(await states(ids), ["canceled", "created", "canceled", "created"]);
  assert.equal(await client.messages.deleteMany([ids[3]]), 1);
  assert.deepEqual(await states(ids), ["canceled", "created", "canceled", "canceled"]);
});

test("cancel({filter}) cancels what the filter matches", async () => {
  const blue = await publish(2, { label: "blue" });
  const red = await publish(1, { label: "red" });
  assert.deepEqual(await client.messages.cancel({ filter: { label: ["blue", "green"] } }), {
    cancelled: 2,
  });
  assert.deepEqual(await states([...blue, ...red]), ["canceled", "canceled", "created"]);
});

test("cancel({all: true}) and deleteAll cancel every message", async () => {
  const ids = await publish(3);
  assert.deepEqual(await client.messages.cancel({ all: true }), { cancelled: 3 });
  assert.deepEqual(await states(ids), ["canceled", "canceled", "canceled"]);
  await publish(1);
  assert.equal(await client.messages.deleteAll(), 1);
});

test("URL groups and batches, as the SDK sends and parses them", async () => {
  await client.urlGroups.addEndpoints({ name: "orders", endpoints: [{ url: HOOK }, { url: `${HOOK}/b`, name: "b" }] });
  const group = await client.urlGroups.get("orders");
  assert.deepEqual(group.endpoints, [{ url: HOOK }, { url: `${HOOK}/b`, name: "b" }]);
  assert.deepEqual((await client.urlGroups.list()).map((g) => g.name), ["orders"]);
  const fanned = await client.publishJSON({ urlGroup: "orders", body: { n: 1 } });
  assert.deepEqual(fanned.map((answer) => answer.url), [HOOK, `${HOOK}/b`]);
  const batch = await client.batchJSON([{ url: HOOK, body: { i: 1 } }, { urlGroup: "orders", body: { i: 2 } }]);
  assert.equal(batch.length, 2);
  assert.ok(batch[0].messageId.startsWith("msg_"));
  assert.equal(batch[1].length, 2);
  await client.urlGroups.removeEndpoints({ name: "orders", endpoints: [{ name: "b" }] });
  assert.deepEqual((await client.urlGroups.get("orders")).endpoints, [{ url: HOOK }]);
  await client.urlGroups.delete("orders");
  assert.deepEqual(await client.urlGroups.list(), []);
});
