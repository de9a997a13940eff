// Schedules through the official Node SDK against the standalone fake: create (upsert
// by id), get, list, pause, resume, delete, each firing on a clock the test moves with
// POST /_fake/clock. Run by `make examples` when Node is installed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import { startFake } from "./fake.mjs";

const TOKEN = "node-schedules-token";
const HOUR = 3_600_000;
let fake;
let baseUrl;
let control;
let client;

before(async () => {
  ({ fake, baseUrl, control } = await startFake(TOKEN));
  client = new Client({ token: TOKEN, baseUrl });
});

after(() => fake.stdin.end());

test("a schedule fires on the fake's clock, is changed, paused, resumed and deleted", async () => {
  const { now } = await control("GET", "clock");
  const { scheduleId } = await client.schedules.create({
    destination: "https://app.example.com/sync",
    cron: "0 * * * *",
    scheduleId: "hourly-sync",
    body: "go",
    retries: 1,
  });
  assert.equal(scheduleId, "hourly-sync");
  await control("POST", "clock", { advanceMs: 3 * HOUR });
  let schedule = await client.schedules.get(scheduleId);
  assert.equal(schedule.cron, "0 * * * *");
  assert.equal(schedule.retries, 1);
  assert.equal(schedule.lastScheduleTime, now + 3 * HOUR);
  assert.equal(schedule.nextScheduleTime, now + 4 * HOUR);
  assert.equal(Object.keys(schedule.lastScheduleStates).length, 1);

  await client.schedules.create({
    destination: "https://app.example.com/sync",
    cron: "CRON_TZ=America/New_York 30 * * * *",
    scheduleId,
  });
  assert.equal((await client.schedules.list()).length, 1);
  schedule = await client.schedules.get(scheduleId);
  assert.equal(schedule.nextScheduleTime, now + 3 * HOUR + HOUR / 2);

  await client.schedules.pause({ schedule: scheduleId });
  assert.equal((await client.schedules.get(scheduleId)).isPaused, true);
  await control("POST", "clock", { advanceMs: HOUR });
  await client.schedules.resume({ schedule: scheduleId });
  await control("POST", "clock", { advanceMs: HOUR });
  schedule = await client.schedules.get(scheduleId);
  assert.equal(schedule.lastScheduleTime, now + 4 * HOUR + HOUR / 2); // nothing while paused

  const { events } = await client.logs({ filter: { scheduleId, state: "CREATED" } });
  assert.equal(events.length, 4); // three hourly firings, one after the resume

  await client.schedules.delete(scheduleId);
  assert.deepEqual(await client.schedules.list(), []);
  await assert.rejects(
    client.schedules.create({ destination: "https://app.example.com/x", cron: "61 * * * *" }),
    /invalid cron '61 \* \* \* \*': Bad minute/,
  );
});
