// The official Node SDK against the standalone fake run with --deliver: publish with
// @upstash/qstash's Client, receive on a local server that verifies the signature with
// its Receiver, fail once, and see the retry delivered. Run by `make examples` when
// Node is installed (after `npm ci` here); QSTASH_TASKS_FAKE names the command.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Client, Receiver } from "@upstash/qstash";
import { startFake } from "./fake.mjs";

const TOKEN = "node-receiver-token";
const CURRENT = "sig_" + "c".repeat(28);
const NEXT = "sig_" + "n".repeat(28);
let fake;
let baseUrl;
let control;
let hook;
let hookUrl;
const received = [];

before(async () => {
  const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT });
  hook = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      const valid = await receiver.verify({
        signature: request.headers["upstash-signature"],
        body,
        url: hookUrl,
      });
      received.push({ valid, body, retried: request.headers["upstash-retried"] });
      response.writeHead(received.length === 1 ? 500 : 200).end(received.length === 1 ? "not yet" : "ok");
    });
  });
  await new Promise((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${hook.address().port}/hook`;

  ({ fake, baseUrl, control } = await startFake(TOKEN, {
    args: ["--deliver"],
    env: { QSTASH_CURRENT_SIGNING_KEY: CURRENT, QSTASH_NEXT_SIGNING_KEY: NEXT },
  }));
});

after(() => {
  fake.stdin.end();
  hook.close();
});

test("the Node SDK publishes, the fake delivers signed, the receiver verifies", async () => {
  const client = new Client({ token: TOKEN, baseUrl });
  const { messageId } = await client.publishJSON({ url: hookUrl, body: { order: 7 }, retries: 2 });
  assert.match(messageId, /^msg_/);
  await control("POST", "clock", { advanceMs: 1_000 });
  await control("POST", "clock", { advanceMs: 60_000 });
  assert.deepEqual(
    received.map(({ valid, retried }) => [valid, retried]),
    [
      [true, "0"],
      [true, "1"],
    ],
  );
  assert.deepEqual(JSON.parse(received[0].body), { order: 7 });
  const page = await client.http.request({ path: ["v1", "messages", messageId, "tasks"], method: "GET" });
  const [task] = page.tasks;
  assert.deepEqual([task.state, task.retried, task.error], ["delivered", 1, "HTTP status 500: not yet"]);
  assert.deepEqual(await control("GET", "problems"), { problems: [] });
});
