// Start `qstash-tasks-fake serve` for a Node test file: on a free port, quiet, stopped
// when the test process closes its stdin (--stdin-eof) or dies. QSTASH_TASKS_FAKE names
// the command if it is not on PATH. Resolves to { fake, baseUrl, control }: the child
// process, the URL it printed on its first line, and control(method, path, body), which
// calls the fake's /_fake/<path> endpoint with the token and returns its JSON (a status
// other than 2xx fails the test, with the answer's text).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export async function startFake(token, { args = [], env = {} } = {}) {
  const command = process.env.QSTASH_TASKS_FAKE ?? "qstash-tasks-fake";
  const fake = spawn(
    command,
    ["serve", "--port", "0", "--token", token, "--quiet", "--stdin-eof", ...args],
    { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, ...env } },
  );
  const baseUrl = await new Promise((resolve, reject) => {
    fake.once("error", reject);
    fake.once("exit", (code) => reject(new Error(`qstash-tasks-fake exited with ${code}`)));
    createInterface({ input: fake.stdout }).once("line", resolve);
  });
  const control = async (method, path, body) => {
    const response = await fetch(`${baseUrl}/_fake/${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`${method} /_fake/${path}: ${response.status} ${text}`);
    }
    return JSON.parse(text);
  };
  return { fake, baseUrl, control };
}

// Answer a node:http request with a fetch-style handler (what @upstash/workflow's
// `serve` returns): the request as a web Request at `origin`, its body read whole.
export async function answerWith(handler, origin, request, body, response) {
  const answer = await handler(
    new Request(`${origin}${request.url}`, {
      method: request.method,
      headers: Object.entries(request.headers).filter(([, v]) => typeof v === "string"),
      body: body.length ? body : undefined,
    }),
  );
  response.writeHead(answer.status, Object.fromEntries(answer.headers)).end(await answer.text());
}
