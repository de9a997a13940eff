// The JS SDK's dev mode (QSTASH_DEV=true) finds `qstash-tasks-fake serve --dev` where it
// looks for Upstash's dev server, with the published dev credentials, and uses it: the
// Client publishes with no token or URL of its own, the Receiver verifies with the dev
// keys, and @upstash/workflow runs a two-step workflow. Nothing is downloaded: the test
// fails if the SDK says anything but "Server already running". Run by `make examples`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { Client, Receiver } from "@upstash/qstash";
import { Client as WorkflowClient, serve } from "@upstash/workflow";
import { answerWith, startFake } from "./fake.mjs";

// Upstash's published dev token (qstash-js src/dev-server/constants.ts).
const DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";
let fake;
let control;
let app;
let appUrl;
const heard = [];
const received = [];
const said = [];

async function freePort() {
  const probe = createNetServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

before(async () => {
  const port = await freePort();
  process.env.QSTASH_DEV = "true";
  process.env.QSTASH_DEV_PORT = String(port);
  delete process.env.QSTASH_URL;
  delete process.env.QSTASH_TOKEN;
  for (const name of ["log", "warn", "error"]) {
    const original = console[name];
    console[name] = (...args) => {
      said.push(args.join(" "));
      original(...args);
    };
  }
  // --token is the dev token here only because fake.mjs always passes one.
  ({ fake, control } = await startFake(DEV_TOKEN, { args: ["--dev"] }));

  const receiver = new Receiver(); // dev mode: the published dev keys
  const { handler } = serve(async (context) => {
    const name = await context.run("greet", () => `hello ${context.requestPayload.name}`);
    await context.run("remember", () => {
      heard.push(name);
    });
  });
  app = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      const body = Buffer.concat(chunks);
      if (request.url === "/hook") {
        const valid = await receiver.verify({
          signature: request.headers["upstash-signature"],
          body: body.toString(),
          url: `${appUrl}/hook`,
        });
        received.push({ valid, body: body.toString() });
        response.writeHead(200).end("ok");
        return;
      }
      await answerWith(handler, appUrl, request, body, response);
    });
  });
  await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
  appUrl = `http://127.0.0.1:${app.address().port}`;
});

after(() => {
  fake.stdin.end();
  app.close();
});

async function until(check) {
  // The fake delivers on the wall clock by itself: wait for it, a second at most.
  for (let tries = 0; tries < 100 && !check(); tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("the SDK's dev mode publishes to the fake, and the receiver verifies with the dev keys", async () => {
  const client = new Client(); // no token, no URL: dev mode fills them in
  const { messageId } = await client.publishJSON({ url: `${appUrl}/hook`, body: { n: 1 } });
  assert.match(messageId, /^msg_/);
  await until(() => received.length === 1);
  assert.deepEqual(received, [{ valid: true, body: '{"n":1}' }]);
  assert.ok(said.some((line) => line.includes("Server already running")), said.join("\n"));
  assert.ok(!said.some((line) => /Could not start|download|unreachable/i.test(line)), said.join("\n"));
  const { calls } = await control("GET", "calls");
  assert.ok(calls.length > 0);
});

test("@upstash/workflow runs a two-step workflow against the fake in dev mode", async () => {
  const workflows = new WorkflowClient(); // dev mode: the fake's URL and the dev token
  const { workflowRunId } = await workflows.trigger({
    url: `${appUrl}/workflow`,
    body: { name: "ada" },
  });
  let state;
  for (let tries = 0; tries < 100 && state !== "RUN_SUCCESS"; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const { runs } = await workflows.logs({ workflowRunId });
    state = runs[0]?.workflowState;
  }
  assert.equal(state, "RUN_SUCCESS");
  assert.deepEqual(heard, ["hello ada"]);
});
