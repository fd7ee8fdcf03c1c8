// The live map with a big moving fleet, in this machine's Chromium: an
// officer watches while every truck reports again and again; the page must
// stay responsive (no long task over 200 ms in the Performance timeline
// while deltas stream in). Run through the Rust test
// `console::browser_live_map_stays_responsive_with_2000_moving_trucks`
// (`cargo test --test api -- --ignored console::`), which seeds the fleet,
// starts muckwatch, and keeps the trucks moving over MQTT once this script
// prints READY, until it exits.
//
// Config (argv[2], JSON): { base, token, trucks, watch_s, screenshots }

import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const LONG_TASK_MAX_MS = 200;
const log = (...a) => console.error('[fleet.spec]', ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const failures = [];
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.setDefaultTimeout(120_000);
page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error') log('browser console:', m.text()); });

// Every long task from the first script on, with when it happened, so that
// the ones during the watched window can be told from the first drawing.
await page.addInitScript(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
});

const deltas = () => page.evaluate(() => Number(document.querySelector('svg.map')?.dataset.deltas || 0));
const positions = () => page.locator('svg.map .marker.vehicle').evaluateAll(
  (ms) => Object.fromEntries(ms.map((m) => [m.dataset.plate, `${m.dataset.x},${m.dataset.y}`])));

try {
  await page.goto(`${cfg.base}/`);
  await page.fill('#token', cfg.token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#role');
  // The whole fleet drawn from the stream's snapshot.
  await page.waitForFunction((n) => document.querySelectorAll('svg.map .marker.vehicle').length >= n, cfg.trucks);
  const drawn = await page.evaluate(() => ({ at: performance.now(), long: window.__longTasks.slice() }));
  log(`snapshot of ${cfg.trucks} trucks drawn at ${drawn.at.toFixed(0)} ms; long tasks so far:`,
    drawn.long.map((t) => t.duration.toFixed(0)).join(', ') || 'none');
  const before = await positions();
  console.log('READY'); // the trucks start moving now

  // Deltas are coming in: watch for watch_s seconds, panning and zooming
  // as an officer does.
  await page.waitForFunction(() => Number(document.querySelector('svg.map')?.dataset.deltas || 0) >= 1, null, { timeout: 60_000 });
  const from = await page.evaluate(() => performance.now());
  const deltasFrom = await deltas();
  const box = await page.locator('svg.map').boundingBox();
  const until = Date.now() + cfg.watch_s * 1000;
  let gestures = 0;
  if (process.env.FLEET_TRACE) await browser.startTracing(page, { path: process.env.FLEET_TRACE, categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'blink'] });
  while (Date.now() < until) {
    if (process.env.FLEET_NO_GESTURES) { await page.waitForTimeout(500); continue; }
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, gestures % 2 ? 120 : -120);
    await page.mouse.down();
    const dir = gestures % 2 ? -1 : 1; // back and forth: the fleet stays in view
    await page.mouse.move(box.x + box.width / 2 + 40 * dir, box.y + box.height / 2 + 20 * dir, { steps: 4 });
    await page.mouse.up();
    gestures++;
    await page.waitForTimeout(500);
  }
  const to = await page.evaluate(() => performance.now());
  if (process.env.FLEET_TRACE) await browser.stopTracing();
  const got = (await deltas()) - deltasFrom;
  const after = await positions();
  const moved = Object.keys(after).filter((p) => before[p] && before[p] !== after[p]).length;
  const during = await page.evaluate(([a, b]) => window.__longTasks.filter((t) => t.start + t.duration >= a && t.start <= b), [from, to]);
  const worst = Math.max(0, ...during.map((t) => t.duration));
  log(`${got} deltas in ${((to - from) / 1000).toFixed(1)} s, ${moved} of ${cfg.trucks} trucks moved, ${gestures} pan/zoom gestures; ` +
    `long tasks while streaming: ${during.length}, longest ${worst.toFixed(0)} ms`);
  console.log(`RESULT ${JSON.stringify({ deltas: got, moved, long_tasks: during.length, longest_ms: Math.round(worst) })}`);
  assert.ok(got >= cfg.watch_s / 3, `deltas kept coming (${got} in ${cfg.watch_s} s)`);
  assert.ok(moved >= cfg.trucks / 2, `most trucks moved on the map (${moved} of ${cfg.trucks})`);
  assert.ok(worst <= LONG_TASK_MAX_MS,
    `no long task over ${LONG_TASK_MAX_MS} ms while deltas stream in: ${during.map((t) => t.duration.toFixed(0)).join(', ')}`);
  await page.click('.map-fit');
  await page.screenshot({ path: path.join(cfg.screenshots, 'fleet.png') });
} catch (e) {
  failures.push(e.stack || String(e));
  await page.screenshot({ path: path.join(cfg.screenshots, 'fleet-failure.png') }).catch(() => {});
} finally {
  await browser.close();
}

if (failures.length) {
  log('FAILED:\n' + failures.join('\n'));
  process.exit(1);
}
log('the live map stayed responsive');
