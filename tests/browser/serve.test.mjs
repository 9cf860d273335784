// lufa serve in a real browser: the runs page, a filter, a failed run and its error, "Rerun from failure",
// and the new run turning green through server-sent events. Screenshots (1280x800) go to the output folder.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { outputDir, lufa, lufaBin, serve, factory, activities, launchArgs } from "./support.mjs";

const out = outputDir("serve");
const store = join(out, "runs.db");
const marker = join(out, "input.csv");
let server, browser;

before(async () => {
  lufa(["run", factory, "Quick", "--store", store, "--activities", activities, "--quiet"]);
  lufa(["run", factory, "Flaky", "--store", store, "--activities", activities, "--param", `marker=${marker}`, "--quiet"]);
  lufa(["run", factory, "Quick", "--store", store, "--activities", activities, "--quiet"]);
  server = await serve(["--store", store]);
  browser = await chromium.launch(launchArgs());
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test("a failed run is found, rerun from its failure, and turns green live", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(server.url + "runs");
  const rows = page.locator("table.runs tbody tr");
  assert.equal(await rows.count(), 3);
  // newest first: the second Quick run, then Flaky, then the first Quick run
  assert.deepEqual(await rows.locator("td:first-child").allInnerTexts(), ["Quick", "Flaky", "Quick"]);
  await page.screenshot({ path: join(out, "1-runs.png") });

  await page.selectOption("select[name=status]", "Failed");   // the filter form submits on change
  await page.waitForURL(/status=Failed/);
  assert.equal(await rows.count(), 1);
  assert.equal(await rows.locator("td:first-child").innerText(), "Flaky");
  await page.screenshot({ path: join(out, "2-failed-runs.png") });

  await rows.locator("a").first().click();
  await page.waitForURL(/\/runs\/[0-9a-f-]+$/);
  const failedUrl = page.url();
  const error = page.locator("#run-errors .error-box");
  assert.match(await error.innerText(), /CheckInput failed: InputMissing/);
  assert.match(await error.innerText(), /does not exist yet/);
  assert.equal(await page.locator("#run-status").getAttribute("data-status"), "Failed");
  // the ForEach's iterations are grouped under it on the timeline
  await page.locator(".gantt details.loop summary").click();
  assert.equal(await page.locator(".gantt details.loop .row.iter").count(), 3);
  await page.screenshot({ path: join(out, "3-failed-run.png") });

  writeFileSync(marker, "day,rentals\n2026-12-01,42\n");   // what the failed activity missed
  await page.getByRole("button", { name: "Rerun from failure" }).click();
  await page.waitForURL((u) => /\/runs\/[0-9a-f-]+$/.test(u.pathname) && u.href !== failedUrl);
  // the new run is still executing when its page opens (its activity waits 1.5 s first)...
  assert.equal(await page.locator("#run-status").getAttribute("data-status"), "InProgress");
  await page.evaluate(() => { window.stillTheSamePage = true; });
  await page.screenshot({ path: join(out, "4-rerun-in-progress.png") });
  // ...and turns green without a reload: the server-sent events replace the parts that changed
  await page.locator('#run-status[data-status="Succeeded"]').waitFor({ timeout: 60000 });
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true);
  assert.equal(await page.locator(".gantt .row[data-activity=CheckInput]").getAttribute("data-status"), "Succeeded");
  // what succeeded before was reused, not run again
  assert.match(await page.locator("#run-activities").innerText(), /Output reused from run/);
  await page.screenshot({ path: join(out, "5-rerun-succeeded.png") });

  // the list shows the rerun first, green
  await page.goto(server.url + "runs");
  assert.equal(await rows.first().locator("td:first-child").innerText(), "Flaky");
  assert.equal(await rows.first().locator(".badge").innerText(), "Succeeded");
  await page.screenshot({ path: join(out, "6-runs-after-rerun.png") });
  await page.close();
});

test("the runs list follows a run that another process executes", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const run = spawn(lufaBin, ["run", factory, "Flaky", "--store", store, "--activities", activities,
    "--param", `marker=${marker}`, "--quiet"], { stdio: "ignore" });
  const ended = new Promise((done) => run.on("exit", done));
  const first = page.locator("table.runs tbody tr").first();
  // the run is recorded as it starts; it then takes about 3 s (the Wait activities)
  for (;;) {
    await page.goto(server.url + "runs");
    if (await first.locator(".badge").innerText() === "InProgress") break;
    assert.equal(run.exitCode, null, "the run ended before the list showed it in progress");
  }
  await page.evaluate(() => { window.stillTheSamePage = true; });
  await page.locator("table.runs tbody tr:first-child .badge", { hasText: "Succeeded" }).waitFor({ timeout: 60000 });
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true);
  assert.equal(await ended, 0);
  await page.close();
});

test("the triggers page works on a store without scheduler data", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(server.url + "triggers");
  assert.match(await page.locator("main").innerText(), /no scheduler data yet/);
  await page.close();
});
