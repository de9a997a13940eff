// Queues, flow control and the signing keys through the official Node SDK against the
// standalone fake: a queue delivers in order, holding the next message while the one
// before it retries; a flow-control key spreads deliveries by its rate; /v2/keys gives
// the keys the fake signs with. The clock moves by POST /_fake/clock.
// Run by `make examples` when Node is installed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import { startFake } from "./fake.mjs";

const TOKEN = "node-queues-token";
const APP = "https://app.example.com";
let fake;
let baseUrl;
let control;
let client;

before(async () => {
  ({ fake, baseUrl, control } = await startFake(TOKEN));
  client = new Client({ token: TOKEN, baseUrl });
});

after(() => fake.stdin.end());

// When each message was delivered, from the logs (oldest first).
async function deliveredAt(messageIds) {
  const { events } = await client.logs({ filter: { state: "DELIVERED" } });
  const at = Object.fromEntries(events.map((event) => [event.messageId, event.time]));
  return messageIds.map((id) => at[id]);
}

test("a queue delivers in order, the next waiting for the retries of the one before", async () => {
  await control("POST", "destinations", { target: `${APP}/work`, answers: [500, 500, 200] });
  const queue = client.queue({ queueName: "orders" });
  await queue.upsert({ parallelism: 1 });
  const ids = [];
  for (const body of ["one", "two", "three"]) {
    ids.push((await queue.enqueue({ url: `${APP}/work`, body })).messageId);
  }
  assert.equal((await queue.get()).lag, 3);
  await control("POST", "clock", { runAll: true });
  const [first, second, third] = await deliveredAt(ids);
  assert.ok(first < second && second < third, `${first} ${second} ${third}`);
  const details = await queue.get();
  assert.deepEqual(
    [details.name, details.parallelism, details.lag, details.paused],
    ["orders", 1, 0, false],
  );
  await queue.pause();
  assert.equal((await queue.get()).paused, true);
  await queue.resume();
  await queue.delete();
  assert.deepEqual(await client.queue().list(), []);
  await assert.rejects(queue.upsert({ parallelism: 0 }), /invalid parallelism 0/);
});

test("a flow-control key's rate spreads the deliveries, and the key is read and pinned", async () => {
  const { now } = await control("GET", "clock");
  const ids = [];
  for (let number = 0; number < 4; number += 1) {
    const { messageId } = await client.publish({
      url: `${APP}/sync`,
      body: String(number),
      flowControl: { key: "tenant-7", rate: 2, period: "1m" },
    });
    ids.push(messageId);
  }
  await control("POST", "clock", { advanceMs: 1000 });
  let info = await client.flowControl.get("tenant-7");
  assert.deepEqual([info.rateMax, info.rateCount, info.ratePeriod, info.waitListSize], [2, 2, 60, 2]);
  await control("POST", "clock", { runAll: true });
  const minutes = (await deliveredAt(ids)).map((at) => Math.floor((at - now) / 60_000));
  assert.deepEqual(minutes, [0, 0, 1, 1]);
  await client.flowControl.pin("tenant-7", { parallelism: 1 });
  info = await client.flowControl.get("tenant-7");
  assert.deepEqual([info.isPinnedParallelism, info.parallelismMax], [true, 1]);
  const global = await client.flowControl.getGlobalParallelism();
  assert.equal(global.parallelismCount, 0);
  await assert.rejects(client.flowControl.get("unknown"), /flow-control key 'unknown' not found/);
});

test("/v2/keys gives the keys the fake signs with", async () => {
  const response = await fetch(`${baseUrl}/v2/keys`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const keys = await response.json();
  const { current, next } = await control("GET", "signing-keys");
  assert.deepEqual(keys, { current, next });
});
