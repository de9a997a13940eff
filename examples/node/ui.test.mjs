// The page at /_fake/ui in a real browser: Debian's chromium, headless, driven by
// playwright-core (no browser download: CHROMIUM names the browser, else
// /usr/bin/chromium). Without a browser the test is skipped, but not in CI (CI=true),
// where .ci/run installs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { startFake } from "./fake.mjs";

const TOKEN = "ui-token";
const BROWSER = process.env.CHROMIUM ?? "/usr/bin/chromium";
const HOSTILE = "<script>window.ran = true</script><b>bold</b>";

async function fill(baseUrl, control) {
  const publish = (url, body, headers = {}) =>
    fetch(`${baseUrl}/v2/publish/${url}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, ...headers },
      body,
    }).then((r) => r.json());
  await control("POST", "destinations", { target: "https://app.example/broken", answers: Array(8).fill(500) });
  await control("POST", "destinations", { target: "https://app.example/flaky", answers: [500, 200] });
  const dead = await publish("https://app.example/broken", HOSTILE, { "Upstash-Retries": "1" });
  const failedOnce = await publish("https://app.example/flaky", "try again", { "Upstash-Retries": "3" });
  const delivered = await publish("https://app.example/ok", "hello");
  await fetch(`${baseUrl}/v2/schedules/https://app.example/nightly`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Upstash-Cron": "0 3 * * *", "Upstash-Schedule-Id": "nightly" },
  });
  await publish("https://app.example/wf", "{}", {
    "Upstash-Workflow-RunId": "wfr_look",
    "Upstash-Workflow-Init": "true",
  });
  await control("POST", "clock", { advanceMs: 2 * 60 * 60 * 1000 }); // two hours: retries run out
  return { dead: dead.messageId, failedOnce: failedOnce.messageId, delivered: delivered.messageId };
}

const skip = !existsSync(BROWSER) && process.env.CI !== "true" ? `no browser at ${BROWSER}` : false;

test("the page shows what the fake holds, a click opens a message, markup stays text", { skip }, async () => {
  const { fake, baseUrl, control } = await startFake(TOKEN);
  const browser = await chromium.launch({ executablePath: BROWSER, args: ["--no-sandbox"] });
  try {
    const ids = await fill(baseUrl, control);
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (message) => message.type() === "error" && errors.push(message.text()));

    await page.goto(`${baseUrl}/_fake/ui#token=${TOKEN}`);
    await page.waitForSelector("text=What the fake holds");
    assert.match(await page.textContent("#clock"), /^clock: 2026-01-01T02:00:00Z/);
    assert.equal(page.url(), `${baseUrl}/_fake/ui#/overview`); // the token left the address

    await page.click("nav >> text=Messages");
    await page.waitForSelector(`text=${ids.dead}`);
    const rows = await page.$$eval("table tr", (trs) => trs.map((tr) => tr.innerText));
    assert.ok(rows.some((row) => row.includes(ids.dead) && row.includes("failed")), rows.join("\n"));
    assert.ok(rows.some((row) => row.includes(ids.delivered) && row.includes("delivered")));

    await page.click(`a.message >> text=${ids.failedOnce}`); // a click shows its tasks
    await page.waitForSelector("text=Tasks, on the fake's clock");
    const tasks = await page.$$eval("table:first-of-type tr", (trs) => trs.map((tr) => tr.innerText));
    assert.ok(tasks.some((row) => row.includes("delivered") && row.includes("1 / 3")), tasks.join("\n"));
    assert.ok((await page.textContent("#view")).includes("RETRY"));

    await page.click("nav >> text=DLQ");
    await page.waitForSelector(`text=${ids.dead}`);
    const cell = await page.$(`td:text-is(${JSON.stringify(HOSTILE)})`);
    assert.ok(cell, "the hostile body is shown as text, whole");
    assert.equal(await page.evaluate(() => window.ran), undefined); // and never ran
    assert.equal(await page.$$eval("#view b", (bold) => bold.length), 0);

    await page.click("nav >> text=Schedules");
    await page.waitForSelector("text=nightly");
    assert.match(await page.textContent("#view"), /0 3 \* \* \*.*2026-01-01T03:00:00Z \(in 60 min\)/s);

    await page.click("nav >> text=Workflows");
    await page.waitForSelector("text=wfr_look");

    await page.click("nav >> text=Logs");
    await page.fill("input[name=state]", "FAILED");
    await page.click("text=filter");
    // The filtered page replaces the whole one: wait for it, not for a row both show.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#view table tr")].slice(1);
      return rows.length > 0 && rows.every((row) => row.innerText.includes("FAILED"));
    });
    const logged = await page.$$eval("table tr", (trs) => trs.slice(1).map((tr) => tr.innerText));
    assert.deepEqual(logged.map((row) => row.includes(ids.dead)), [true], logged.join("\n"));

    const cspRefused = errors.filter((text) => /Content Security Policy/.test(text));
    assert.deepEqual(errors, [], cspRefused.length ? "the page broke its own policy" : undefined);
  } finally {
    await browser.close();
    fake.stdin.end();
  }
});

test("without the token the page says how to give it", { skip }, async () => {
  const { fake, baseUrl } = await startFake(TOKEN);
  const browser = await chromium.launch({ executablePath: BROWSER, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    await page.goto(`${baseUrl}/_fake/ui`);
    await page.waitForSelector("text=the fake asks for its token");
    assert.match(await page.textContent("#error"), /open this page as \/_fake\/ui#token=<token>/);
  } finally {
    await browser.close();
    fake.stdin.end();
  }
});

test("a refresh that answers late never puts its old view back", { skip }, async () => {
  const { fake, baseUrl, control } = await startFake(TOKEN);
  const browser = await chromium.launch({ executablePath: BROWSER, args: ["--no-sandbox"] });
  try {
    const ids = await fill(baseUrl, control);
    const page = await browser.newPage();
    await page.goto(`${baseUrl}/_fake/ui#token=${TOKEN}`);
    await page.goto(`${baseUrl}/_fake/ui#/messages`);
    await page.waitForSelector(`text=${ids.dead}`);
    // Hold the list's next refresh until the user has opened a message.
    let release;
    const held = new Promise((resolve) => (release = resolve));
    let refreshing;
    const refreshed = new Promise((resolve) => (refreshing = resolve));
    let first = true;
    await page.route("**/_fake/messages?count=50", async (route) => {
      if (first) {
        first = false;
        refreshing();
        await held;
      }
      await route.continue();
    });
    await refreshed; // the refresh (every 2 s) is under way, its answer held
    await page.click(`a.message >> text=${ids.delivered}`);
    await page.waitForSelector("text=Tasks, on the fake's clock");
    release();
    await page.waitForTimeout(300); // the held list arrives now
    assert.match(await page.textContent("#view h2"), new RegExp(`^Message ${ids.delivered}$`));
  } finally {
    await browser.close();
    fake.stdin.end();
  }
});
