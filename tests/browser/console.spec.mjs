// Browser test of the web console, driven with playwright-core in this
// machine's Chromium (no browser download). Run through the Rust test
// `cargo test --test api -- --ignored console::`, which starts muckwatch, seeds it,
// writes the JSON config given as argv[2], and publishes the speeding
// truck's fixes over MQTT when this script prints READY.
//
// Config: { base, tokens: {police, firm, admin}, firm_permits: [ids],
//           speeding_plate, screenshots: dir, apply: {from, until} (dates
//           of the permit the firm applies for) }

import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const WAIT = 30_000;
const log = (...a) => console.error('[console.spec]', ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const failures = [];
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.setDefaultTimeout(WAIT);
// Any uncaught script error fails the test, even if the page looks right.
page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error') log('browser console:', m.text()); });
// The console must work offline: nothing may leave the muckwatch origin.
page.on('request', (r) => { if (!r.url().startsWith(cfg.base)) failures.push(`off-origin request: ${r.url()}`); });

const shot = async (name) => {
  const file = path.join(cfg.screenshots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
};

async function signIn(token) {
  await page.goto(`${cfg.base}/`);
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#role');
}

try {
  // 1. An officer of the police signs in and watches the live view.
  await signIn(cfg.tokens.police);
  assert.equal(await page.textContent('#role'), 'dept:police');
  await page.waitForSelector('#stream-state[data-state=open]');
  await page.waitForSelector('svg.map .fence.kind-route');
  await page.waitForSelector('svg.map .marker.vehicle');
  console.log('READY'); // the Rust side publishes the speeding truck now

  // 2. The alert arrives over SSE from the fixes published over MQTT.
  const alert = page.locator('#alert-feed li.alert[data-code=SPEEDING]').first();
  await alert.waitFor({ timeout: 60_000 });
  assert.match(await alert.textContent(), new RegExp(cfg.speeding_plate));
  // The truck turns red on the map once its violation is stored.
  await page.waitForSelector(`svg.map .marker.vehicle.state-violating[data-plate="${cfg.speeding_plate}"]`);
  await page.click('.map-fit'); // the speeder is west of the fences the view was fitted to
  await page.waitForSelector('svg.map .marker.alert-point');
  await shot('live');

  // 3. Its case: the police check is advanced, and the audit shows it.
  const caseId = await alert.getAttribute('data-case');
  await alert.locator('a.case-link').click();
  await page.waitForURL(new RegExp(`#/case/${caseId}$`));
  await page.waitForSelector('#case-title');
  assert.match(await page.textContent('#case-title'), new RegExp(`#${caseId}`));
  await page.waitForSelector('svg.map path.track', { state: 'attached' }); // a straight east-west track has no height
  await page.waitForSelector('svg.map .marker.violation-point');
  // Playback: the playhead runs along the track at the chosen speed.
  await page.waitForSelector('#playback #play');
  const playhead = page.locator('svg.map .marker.playhead');
  assert.equal(await playhead.getAttribute('data-index'), '0');
  const startedAt = await page.textContent('#play-time');
  await page.selectOption('#playback select[name=speed]', '300');
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('svg.map .marker.playhead').dataset.index) > 5);
  assert.notEqual(await page.textContent('#play-time'), startedAt);
  await page.click('#play'); // pause
  const police = page.locator('#checks .check[data-dept=police]');
  assert.match(await police.locator('.check-status').textContent(), /pending/);
  const auditBefore = await page.locator('#audit tr.audit-line').count();
  await page.selectOption('#check-form select[name=status]', 'investigating');
  await page.fill('#check-form textarea[name=finding]', '调取监控核实 Reviewing camera footage');
  await page.click('#check-form button');
  await page.waitForFunction(
    (n) => document.querySelectorAll('#audit tr.audit-line').length > n, auditBefore, { timeout: WAIT });
  assert.match(await police.locator('.check-status').textContent(), /investigating/);
  const audit = await page.locator('#audit tr.audit-line').allTextContents();
  assert.ok(audit.some((l) => l.includes('dept:police') && l.includes('investigating')), `audit: ${audit.join(' | ')}`);
  // The violation shows how sure it is: a band and the terminal's GPS noise.
  const band = await page.locator('#violations td.uncertainty').first().textContent();
  assert.match(band, /\d+\.\d – \d+\.\d \(\d+\.\d+%; GPS σ \d+\.\d m/, `uncertainty: ${band}`);
  // Other departments' checks are shown but not editable by the police.
  assert.equal(await page.locator('#check-form').count(), 1);
  await shot('case');

  // 4. The case list: the overdue case (filed long ago, past the police's
  // deadline) first and marked, the fresh one not; its Excel export; a
  // filter; the statistics with the deadlines.
  await page.click('#nav a[data-page=cases]');
  await page.waitForSelector(`#cases tr[data-case="${caseId}"]`);
  const first = page.locator('#cases tbody tr[data-case]').first();
  assert.equal(await first.getAttribute('data-overdue'), 'true');
  assert.match(await first.textContent(), /逾期/);
  assert.equal(await page.locator(`#cases tr[data-case="${caseId}"]`).getAttribute('data-overdue'), null);
  const [casesFile] = await Promise.all([page.waitForEvent('download'), page.click('#export-cases')]);
  assert.equal(casesFile.suggestedFilename(), 'cases.xlsx');
  const xlsx = fs.readFileSync(await casesFile.path());
  assert.equal(xlsx.subarray(0, 2).toString(), 'PK', 'an xlsx is a zip');
  await page.selectOption('#case-filters select[name=code]', 'SPEEDING');
  await page.click('#case-filters button');
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('#cases tbody tr[data-case]');
    return rows.length > 0 && [...rows].every((r) => r.textContent.includes('SPEEDING'));
  });
  await shot('cases');
  await page.click('#nav a[data-page=stats]');
  await page.waitForSelector('#by-code .bar-row');
  assert.match(await page.textContent('#by-code'), /SPEEDING/);
  assert.match(await page.textContent('#overload'), /一超四罚/);
  await page.waitForSelector('#deadlines tr[data-dept=police]');
  assert.match(await page.textContent('#deadlines tr[data-dept=police] td.overdue-mark'), /[1-9]/);
  await shot('stats');
  // Credit: every firm by grade, in Chinese and English, exportable; a
  // firm's ledger from its row.
  await page.click('#nav a[data-page=credit]');
  await page.waitForSelector('#credit-firms tr[data-firm]');
  assert.match(await page.textContent('#grade-counts'), /A/);
  assert.match(await page.textContent('h1'), /企业信用评价 Firm credit rating/);
  assert.match(await page.textContent('#credit-firms thead'), /得分 Score/);
  const [creditFile] = await Promise.all([page.waitForEvent('download'), page.click('#export-credit')]);
  assert.equal(creditFile.suggestedFilename(), 'credit.xlsx');
  await page.click('#credit-firms tr[data-firm=firm-a] a');
  await page.waitForSelector('#credit-ledger[data-firm=firm-a] #credit-score');
  await shot('credit');
  // Inspections: the pool with its expired certificate, a draw that names
  // its inspectors, a result recorded, both lists exportable.
  await page.click('#nav a[data-page=inspections]');
  await page.waitForSelector('#draw-form');
  await page.waitForSelector('#draw-list h2');
  await page.waitForSelector('#inspector-list tr[data-inspector=insp-3]');
  assert.match(await page.textContent('#inspector-list tr[data-inspector=insp-3]'), /已过期 expired/);
  assert.match(await page.textContent('#draw-form select[name=population]'), /车辆 vehicles/);
  await page.fill('#draw-form input[name=item]', '车辆密闭');
  await page.selectOption('#draw-form select[name=population]', 'vehicles');
  await page.fill('#draw-form input[name=size]', '1');
  await page.click('#draw-form button[type=submit]');
  const drawn = page.locator('#draw-list div[data-draw]').first();
  await drawn.waitFor();
  assert.match(await drawn.textContent(), /Zhou Min/);
  assert.match(await drawn.textContent(), /车辆 vehicles/);
  page.once('dialog', (d) => d.accept('篷布未盖'));
  await drawn.locator('button', { hasText: 'Fail' }).first().click();
  await page.waitForFunction(() => /不合格 fail: 篷布未盖/.test(document.querySelector('#draw-list div[data-draw]')?.textContent || ''));
  const [publicFile] = await Promise.all([page.waitForEvent('download'), page.click('#export-public')]);
  assert.equal(publicFile.suggestedFilename(), 'inspections-public.xlsx');
  await shot('inspections');

  // 5. A firm signs in: no live view, and only its own permits.
  await page.click('#signout');
  await signIn(cfg.tokens.firm);
  assert.equal(await page.locator('#nav a[data-page=live]').count(), 0);
  await page.click('#nav a[data-page=firm]');
  await page.waitForSelector('#permits tbody tr[data-permit]');
  const ids = await page.locator('#permits tr[data-permit]').evaluateAll((rows) => rows.map((r) => r.dataset.permit));
  assert.deepEqual(ids.sort(), [...cfg.firm_permits].sort());
  await page.waitForSelector('svg.map .fence.kind-route');
  await page.waitForSelector('#violations');
  const [vioFile] = await Promise.all([page.waitForEvent('download'), page.click('#export-violations')]);
  assert.equal(vioFile.suggestedFilename(), 'violations.xlsx');
  await shot('firm');
  // A vehicle's track, with playback, from the vehicle list.
  // 苏J70003 works under permit PA-1: its route is drawn.
  await page.click('#vehicles tr[data-plate="苏J70003"] a.track-link');
  await page.waitForSelector('#track-title');
  await page.waitForSelector('#playback');
  await page.waitForSelector('svg.map .fence.kind-route');
  await shot('track');
  // Its own credit ledger; no inspections page for a firm.
  assert.equal(await page.locator('#nav a[data-page=inspections]').count(), 0);
  await page.click('#nav a[data-page=credit]');
  await page.waitForSelector('#credit-ledger #credit-score');

  // 6. The firm applies for a permit online (不见面审批): its own vehicle,
  // the city's sites and route; the checks' results come back at once.
  await page.click('#nav a[data-page=firm]');
  await page.waitForSelector('#application-form');
  await page.check('#application-form input[name=plate][value="苏J70003"]');
  await page.selectOption('#application-form select[name=source_site]', 's01');
  await page.selectOption('#application-form select[name=disposal_site]', 'd01');
  await page.check('#application-form input[name=route][value="route-s01-d01"]');
  await page.fill('#application-form input[name=valid_from]', cfg.apply.from);
  await page.fill('#application-form input[name=valid_until]', cfg.apply.until);
  await page.click('#application-submit');
  await page.waitForSelector('#application-result li.app-check');
  assert.equal(await page.locator('#application-result li.app-check[data-result=pass]').count(), 6,
    await page.textContent('#application-result'));
  await page.waitForSelector('#applications tr[data-status=submitted]');
  await shot('apply');

  // 7. The bureau's review queue: approved with a reason, the permit numbered.
  await page.click('#signout');
  await signIn(cfg.tokens.admin);
  await page.click('#nav a[data-page=applications]');
  const pending = page.locator('#review-table tr[data-status=submitted]').first();
  await pending.waitFor();
  assert.match(await pending.textContent(), /苏J70003/);
  await shot('review');
  await pending.locator('input.reason').fill('材料齐全 Complete');
  await pending.locator('button.approve').click();
  await page.waitForSelector('#decided-table tr[data-status=approved] .permit-id');
  assert.equal(await page.locator('#review-table tr[data-status=submitted]').count(), 0);

  // 8. The admin renews the expired certificate from the inspector pool.
  await page.click('#nav a[data-page=inspections]');
  const expired = page.locator('#inspector-list tr[data-inspector=insp-3]');
  await expired.waitFor();
  page.once('dialog', (d) => d.accept('2099-12-31'));
  await expired.locator('button.renew').click();
  await page.waitForFunction(() => /有效 valid/.test(document.querySelector('#inspector-list tr[data-inspector=insp-3]')?.textContent || ''));
  assert.equal(await page.locator('#inspector-form').count(), 1);
} catch (e) {
  failures.push(e.stack || String(e));
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
}

if (failures.length) {
  log('FAILED:\n' + failures.join('\n'));
  process.exit(1);
}
log('all console checks passed');
