// The standalone fake as a service nobody polls: `serve --deliver --clock wall` makes each
// delivery when it is due, with no request to it. The receiver publishes the next step
// with @upstash/qstash (a chain), and both steps arrive on time, 1 s after the attempt
// that published them. Run by `make examples` when Node is installed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Client } from "@upstash/qstash";
import { startFake } from "./fake.mjs";

const TOKEN = "node-wall-token";
let fake;
let client;
let hook;
let hookUrl;
const arrivals = [];
let allArrived;
const done = new Promise((resolve) => (allArrived = resolve));

before(async () => {
  hook = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      const step = JSON.parse(Buffer.concat(chunks).toString()).step;
      arrivals.push({ step, at: Date.now() });
      if (step === 1) {
        // The next step, from inside the receiver, as a chain does.
        await client.publishJSON({ url: hookUrl, body: { step: 2 }, delay: 1 });
      }
      response.writeHead(200).end("ok");
      if (step === 2) allArrived();
    });
  });
  await new Promise((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${hook.address().port}/hook`;
  let baseUrl;
  ({ fake, baseUrl } = await startFake(TOKEN, { args: ["--deliver", "--clock", "wall"] }));
  client = new Client({ token: TOKEN, baseUrl });
});

after(() => {
  fake.stdin.end();
  hook.close();
});

test("the wall clock delivers a chain on time, with no request to the fake", async () => {
  const published = Date.now();
  await client.publishJSON({ url: hookUrl, body: { step: 1 }, delay: 1 });
  await Promise.race([
    done,
    new Promise((_, reject) => setTimeout(() => reject(new Error("not delivered in 5 s")), 5_000)),
  ]);
  assert.deepEqual(arrivals.map(({ step }) => step), [1, 2]);
  const [first, second] = arrivals;
  // Each step 1 s after the publish before it (the clocks are the same machine's).
  assert.ok(first.at - published >= 990 && first.at - published < 1_200, `${first.at - published} ms`);
  assert.ok(second.at - first.at >= 990 && second.at - first.at < 1_200, `${second.at - first.at} ms`);
});
