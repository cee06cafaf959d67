// dashboard_check.js - drives gd-dashboard's page in headless Chromium for test_dashboard.py.
//
//   node dashboard_check.js URL TOWN SCREENSHOT_DIR PROFILE_DIR COMMUNITY
//
// Prints one JSON line per phase on stdout and waits for a line on stdin
// between phases, so the Python test can stop the load and compare with the
// database: "changed" (the intake number moved while incidents flowed) ->
// stdin -> "final" (numbers after the load stopped, and the district map's
// outlines and the town's label on it) -> "town" (after clicking the town's
// row: its map, with COMMUNITY's outline and label). Screenshots go to
// SCREENSHOT_DIR.
"use strict";
const { chromium } = require("playwright-core");
const readline = require("readline");

const [url, town, shots, profile, community] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = o => process.stdout.write(JSON.stringify(o) + "\n");
const num = s => (/^\d+$/.test(s) ? Number(s) : NaN);

async function main() {
  // a fresh profile directory per run (the caller makes and removes it)
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.GD_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1920, height: 1080 },
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", e => errors.push(String(e)));
    page.on("requestfailed", r => { if (!r.url().includes("/events")) errors.push("request failed " + r.url()); });
    await page.goto(url);
    await page.waitForSelector("#conn.ok", { timeout: 10000 });
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById("kpi-received").textContent));
    const text = id => page.locator("#" + id).textContent();
    const first = num(await text("kpi-received"));
    await page.waitForFunction(v => Number(document.getElementById("kpi-received").textContent) > v,
                               first, { timeout: 20000 });
    say({ phase: "changed", first, second: num(await text("kpi-received")) });

    await lines.next();                       // the load has stopped and the DB is settled
    await page.waitForTimeout(2000);          // a few pushes
    const row = page.locator(`tr[data-unit="${town}"]`);
    const cellOf = k => row.locator(`td.tot [data-k="${k}"]`).first().textContent();
    // the map of the unit shown: drawn for `unit`, and what it says of `code`
    const mapOf = async (unit, code) => {
      await page.waitForFunction(u => {
        const svg = document.querySelector("#map svg");
        return svg && svg.dataset.unit === u && svg.querySelector("path");
      }, unit, { timeout: 10000 });
      const path = page.locator(`#map svg path[data-unit="${code}"]`);
      return {
        paths: await page.locator("#map svg path").count(),
        label: await page.locator(`#map svg text[data-unit="${code}"] tspan.c`).textContent(),
        open: num(await path.getAttribute("data-open")),
        overdue: num(await path.getAttribute("data-overdue")),
        cls: await path.getAttribute("class"),
        title: await path.locator("title").textContent(),
        visible: await page.locator(`#map svg text[data-unit="${code}"]`).isVisible(),
      };
    };
    const final = {
      phase: "final",
      received: num(await text("kpi-received")),
      resolved: num(await text("kpi-resolved")),
      depth: num(await text("kpi-depth")),
      inflight: num(await text("kpi-inflight")),
      ontime: await text("kpi-ontime"),
      town_received: num(await cellOf("received")),
      town_resolved: num(await cellOf("resolved")),
      towns: await page.locator("#board-body tr").count(),
      feed_items: await page.locator("#feed li").count(),
      map: await mapOf("500113", town),
      errors,
    };
    await page.screenshot({ path: shots + "/dashboard-district.png", fullPage: true });
    say(final);

    const townName = (await row.locator("td.name").first().textContent()).replace(/\d.*$/, "");
    await row.click();
    await page.waitForFunction(n => document.getElementById("unit-name").textContent === n, townName,
                               { timeout: 10000 });
    await page.waitForFunction(() => document.querySelectorAll("#board-body tr").length > 1);
    say({
      phase: "town",
      name: await text("unit-name"),
      hash: await page.evaluate(() => location.hash),
      received: num(await text("kpi-received")),
      rows: await page.locator("#board-body tr").count(),
      map: await mapOf(town, community),
    });
    await page.screenshot({ path: shots + "/dashboard-town.png", fullPage: true });
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), e => { say({ phase: "error", error: String(e && e.stack || e) }); process.exit(1); });
