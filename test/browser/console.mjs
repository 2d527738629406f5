// console.mjs drives the SBC's operator console (internal/console, served
// on the admin listener at /console/) in headless Chromium through
// playwright-core, for test/e2e/console. The Go test keeps a call up and
// runs it with a JSON scenario:
//
//   node test/browser/console.mjs scenario.json
//   {"chromium": "/usr/bin/chromium", "base": "http://127.0.13.10:PORT",
//    "token": "...", "shots": "/abs/dir", "timeoutMs": 20000,
//    "ban": "192.0.2.77", "ladder": true, "dtls": true, "downTrunk": "backup"}
//
// Steps, in order, each bounded by timeoutMs: the page without the token
// shows the login and its own fetch of /api/v1/calls answers 401; a wrong
// token is refused; the right one shows the live calls table, where a call
// appears and its duration ticks; its page shows the ladder of both legs
// and a quality chart with packets (when "ladder") and the DTLS milestone
// (when "dtls"); its hang-up button ends the call; after a reload (the
// token is asked again) the trunks page shows downTrunk with a "down" in
// its history; registrations; a ban added and removed through the bans
// page; the CDR search by the call's id finds its record, whose link opens
// the ended call's timeline (when "ladder"). A screenshot of each page
// goes to shots.
//
// Output: one JSON object per line, {"event": name, ...} as steps pass
// (the Go test acts on "hungup"), and last {"result": {ok, error, step,
// facts}}. Exit status 0 when every step passed, 1 otherwise.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const sc = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const timeout = sc.timeoutMs || 20000;
const facts = {};
let step = 'launch';

async function run(page) {
  const shot = (name) => page.screenshot({ path: join(sc.shots, name + '.png'), fullPage: true });
  page.on('dialog', (d) => d.accept());
  page.setDefaultTimeout(timeout);

  step = 'login page';
  await page.goto(sc.base + '/console/');
  await page.waitForSelector('#login:not([hidden]) #token');
  facts.navHidden = await page.isHidden('#nav');
  facts.noTokenStatus = await page.evaluate(async () => (await fetch('/api/v1/calls')).status);
  await shot('login');
  emit({ event: 'login', noTokenStatus: facts.noTokenStatus });

  step = 'wrong token';
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('401'));
  facts.wrongTokenError = await page.textContent('#login-error');

  step = 'live calls';
  await page.fill('#token', sc.token);
  await page.click('#login-form button[type=submit]');
  const row = await page.waitForSelector('table.calls tr[data-call-id]');
  const id = await row.getAttribute('data-call-id');
  facts.callRow = await row.innerText();
  // The table updates without a reload: the duration cell changes.
  const d0 = await page.textContent(`tr[data-call-id="${id}"] td.duration`);
  await page.waitForFunction(([id, d0]) => {
    const td = document.querySelector(`tr[data-call-id="${id}"] td.duration`);
    return td && td.textContent !== d0;
  }, [id, d0]);
  await shot('calls');
  emit({ event: 'calls', id });

  step = 'call page';
  await page.click(`tr[data-call-id="${id}"] a.call-link`);
  await page.waitForSelector('#hangup');
  if (sc.ladder) {
    await page.waitForSelector('#ladder g.msg[data-leg="a"][data-what="INVITE"]');
    await page.waitForSelector('#ladder g.msg[data-leg="b"][data-what="INVITE"]');
    if (sc.dtls) await page.waitForSelector('#ladder g.milestone[data-what="dtls-connected"]');
    await page.waitForFunction(() => [...document.querySelectorAll('svg.chart')].some((c) =>
      Number(c.getAttribute('data-samples')) > 0 && Number(c.getAttribute('data-max-packets')) > 0 &&
      c.querySelector('polyline.series-packets')), null, { timeout: Math.max(timeout, 30000) });
    facts.ladder = await page.evaluate(() => ({
      a: document.querySelectorAll('#ladder g.msg[data-leg="a"]').length,
      b: document.querySelectorAll('#ladder g.msg[data-leg="b"]').length,
      dtls: (document.querySelector('#ladder g.milestone[data-what="dtls-connected"]') || {}).textContent || '',
      charts: [...document.querySelectorAll('svg.chart')].map((c) => ({ from: c.dataset.from,
        samples: Number(c.dataset.samples), maxPackets: Number(c.dataset.maxPackets) })),
    }));
  }
  await shot('call');
  emit({ event: 'call', ladder: facts.ladder });

  step = 'hang up';
  await page.click('#hangup');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Hung up.');
  emit({ event: 'hungup', id });

  step = 'trunks';
  // A new document: the token was in the old one's memory only.
  await page.evaluate(() => { location.hash = 'trunks'; });
  await page.reload();
  await page.waitForSelector('#login:not([hidden])');
  facts.loginAfterReload = true;
  await page.fill('#token', sc.token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('table.trunks tr[data-trunk]');
  if (sc.downTrunk) await page.waitForSelector(`table.trunks tr[data-trunk="${sc.downTrunk}"] ol.history li.down`);
  facts.trunks = await page.innerText('table.trunks tbody');
  await shot('trunks');

  step = 'registrations';
  await page.click('nav a[href="#registrations"]');
  await page.waitForSelector('table.registrations tbody tr');
  facts.registrations = await page.innerText('table.registrations tbody');
  await shot('registrations');

  step = 'bans';
  await page.click('nav a[href="#bans"]');
  await page.waitForSelector('table.bans');
  await page.fill('#ban-form input[name=addr]', sc.ban);
  await page.fill('#ban-form input[name=reason]', 'console test');
  await page.fill('#ban-form input[name=duration]', '1h');
  await page.click('#ban-form button[type=submit]');
  await page.waitForSelector(`table.bans tr[data-addr="${sc.ban}"]`);
  facts.banRow = await page.innerText(`table.bans tr[data-addr="${sc.ban}"]`);
  await shot('bans');
  emit({ event: 'banned', addr: sc.ban });
  await page.click(`table.bans tr[data-addr="${sc.ban}"] button.unban`);
  await page.waitForSelector(`table.bans tr[data-addr="${sc.ban}"]`, { state: 'detached' });
  emit({ event: 'unbanned', addr: sc.ban });

  step = 'cdrs';
  await page.click('nav a[href="#cdrs"]');
  await page.fill('#cdr-form input[name=call_id]', id);
  await page.click('#cdr-form button[type=submit]');
  await page.waitForSelector(`table.cdrs tr[data-cdr-id="${id}"]`);
  facts.cdrRow = await page.innerText(`table.cdrs tr[data-cdr-id="${id}"]`);
  await page.fill('#cdr-form input[name=call_id]', '');
  await page.fill('#cdr-form input[name=number]', 'no-such-number');
  await page.click('#cdr-form button[type=submit]');
  await page.waitForSelector('p.empty');
  await page.fill('#cdr-form input[name=number]', '');
  await page.fill('#cdr-form input[name=call_id]', id);
  await page.click('#cdr-form button[type=submit]');
  await page.waitForSelector(`table.cdrs tr[data-cdr-id="${id}"]`);
  await shot('cdrs');

  if (sc.ladder) {
    step = 'ended call';
    await page.click(`table.cdrs tr[data-cdr-id="${id}"] a.call-link`);
    await page.waitForSelector('#ladder g.msg[data-leg="b"][data-what="BYE"]');
    facts.endedState = await page.textContent('dl.summary dd');
    await shot('ended');
  }
  step = 'done';
}

const { chromium } = require('playwright-core');
const args = ['--headless=new'];
if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
let browser;
let result;
try {
  browser = await chromium.launch({ executablePath: sc.chromium || '/usr/bin/chromium', args });
  const page = await (await browser.newContext()).newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  facts.pageErrors = pageErrors;
  try {
    await run(page);
    result = { ok: true, step, facts };
  } catch (e) {
    await page.screenshot({ path: join(sc.shots, 'failed.png'), fullPage: true }).catch(() => {});
    result = { ok: false, step, error: String(e && e.message || e), facts,
      dom: await page.evaluate(() => document.body.innerText).catch(() => '') };
  }
} catch (e) {
  result = { ok: false, step, error: 'launch: ' + String(e && e.message || e), facts };
}
if (browser) await browser.close().catch(() => {});
emit({ result });
process.exit(result.ok ? 0 : 1);
