// When a message fails, through the official Node SDK against the standalone fake: the
// DLQ (listMessages, delete in each form, retry) and the logs, on a clock the test moves
// with POST /_fake/clock. Run by `make examples` when Node is installed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import { startFake } from "./fake.mjs";

const TOKEN = "node-failures-token";
let fake;
let baseUrl;
let control;
let client;

before(async () => {
  ({ fake, baseUrl, control } = await startFake(TOKEN, { args: ["--default-answer", "500"] }));
  client = new Client({ token: TOKEN, baseUrl });
});

after(() => fake.stdin.end());

async function failed(count) {
  const ids = [];
  for (let n = 0; n < count; n++) {
    const url = `https://app.example.com/${n % 2 ? "odd" : "even"}`;
    ids.push((await client.publishJSON({ url, body: { n }, retries: 0 })).messageId);
  }
  await control("POST", "clock", { advanceMs: 1_000 });
  return ids;
}

test("the DLQ: list, filter, delete in every form, retry", async () => {
  await control("POST", "reset", { empty: true });
  const ids = await failed(6);
  const { messages } = await client.dlq.listMessages();
  assert.deepEqual(messages.map((m) => m.messageId), ids);
  assert.deepEqual(messages.map((m) => m.responseStatus), [500, 500, 500, 500, 500, 500]);
  const odd = await client.dlq.listMessages({ filter: { url: "https://app.example.com/odd" } });
  assert.deepEqual(odd.messages.map((m) => m.messageId), [ids[1], ids[3], ids[5]]);
  const page = await client.dlq.listMessages({ count: 4 });
  assert.equal(page.messages.length, 4);
  const rest = await client.dlq.listMessages({ cursor: page.cursor });
  assert.deepEqual(rest.messages.map((m) => m.messageId), ids.slice(4));

  const dlqIds = messages.map((m) => m.dlqId);
  assert.deepEqual(await client.dlq.delete(dlqIds[0]), { deleted: 1 });
  assert.deepEqual(await client.dlq.delete([dlqIds[1], dlqIds[2]]), { deleted: 2 });
  const retried = await client.dlq.retry(dlqIds[3]);
  assert.equal(retried.responses.length, 1);
  assert.notEqual(retried.responses[0].messageId, ids[3]);
  assert.deepEqual(
    await client.dlq.delete({ filter: { url: "https://app.example.com/odd" } }),
    { deleted: 1 },
  );
  assert.deepEqual((await client.dlq.listMessages()).messages.map((m) => m.dlqId), [dlqIds[4]]);
  assert.deepEqual(await client.dlq.delete({ all: true }), { deleted: 1 });
  assert.deepEqual((await client.dlq.listMessages()).messages, []);
});

test("the logs tell a failed message's story, newest first", async () => {
  await control("POST", "reset", { empty: true });
  const [messageId] = await failed(1);
  const { logs } = await client.logs({ filter: { messageId } });
  assert.deepEqual(logs.map((log) => log.state).reverse(), ["CREATED", "ACTIVE", "FAILED"]);
  assert.equal(logs[0].error, "HTTP status 500");
  assert.deepEqual(await control("GET", "problems"), { problems: [] });
});
