// digest.mjs registers real SIP.js and JsSIP user agents with the SBC in
// headless Chromium, for the Go test test/e2e/webphone/browser_digest_test.go: each
// library registers, lets its own refresh run (its nonce has expired by
// then), unregisters (Expires: 0), and registers again on a nonce that
// has expired, with no new password given.
//
//   node test/browser/digest.mjs scenario.json
//
//   {
//     "chromium": "/usr/bin/chromium",
//     "page": "http://127.0.0.1:PORT/",    a page of the SBC's (same origin
//                                         as its WebSocket listener)
//     "ws": "ws://127.0.0.1:PORT",
//     "domain": "example.com",
//     "expires": 5,                        registration expiry asked for (s)
//     "gates": "/tmp/dir",                 where the Go test's go-aheads appear
//     "timeoutMs": 20000,                  bound of every wait
//     "uas": [{"lib": "sipjs", "user": "alice", "password": "secret", "expires": 5},
//             {"lib": "jssip", "user": "bob", "password": "secret"}]
//   }
//
// For each UA in turn: register, emit {"event":"registered","ua":i}, wait
// for the file GATES/i-refreshed; unregister, emit "unregistered", wait for
// GATES/i-expired; register again, emit "registered-again", wait for
// GATES/i-done; unregister and stop. Last {"result":{"ok":...,"error":...}};
// exit status 0 when every step passed.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const esbuild = require('esbuild');

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// sipjsBundle bundles SIP.js's npm sources into one script defining the
// global SIP (SIP.js ships ES modules only).
function sipjsBundle() {
  const entry = fileURLToPath(new URL('../../web/node_modules/sip.js/lib/index.js', import.meta.url));
  const out = esbuild.buildSync({ entryPoints: [entry], bundle: true, format: 'iife', globalName: 'SIP',
    platform: 'browser', target: 'es2019', write: false, logLevel: 'warning' });
  return out.outputFiles[0].text;
}

async function waitFile(path, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${path}`);
    await sleep(50);
  }
}

// waitState waits until the page's UA reports state want.
async function waitState(page, want, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await page.evaluate(() => window.ua.state());
    if (st.state === want) return;
    if (st.failed) throw new Error(`waiting for ${want}: ${st.failed}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${want}; last ${JSON.stringify(st)}`);
    await sleep(100);
  }
}

// In the page: window.ua = {register(), unregister(), stop(), state()} over
// either library. Failures (a refused REGISTER) are kept in state().failed.
function installSIPjs(o) {
  const st = { state: 'new', failed: '' };
  const ua = new SIP.UserAgent({ uri: SIP.UserAgent.makeURI(`sip:${o.user}@${o.domain}`),
    transportOptions: { server: o.ws }, authorizationUsername: o.user, authorizationPassword: o.password,
    logLevel: 'warn' });
  let reg;
  const delegate = { requestDelegate: { onReject: (r) => { st.failed = `${r.message.statusCode} ${r.message.reasonPhrase}`; } } };
  window.ua = {
    async register() {
      if (!reg) {
        await ua.start();
        reg = new SIP.Registerer(ua, { expires: o.expires });
        reg.stateChange.addListener((s) => { st.state = s; });
      }
      await reg.register(delegate);
    },
    // The SBC holds a refreshed binding just before its 200 reaches the
    // page; SIP.js refuses to unregister while a REGISTER waits for its
    // final response, so wait for that first (as an application would).
    async unregister() {
      for (const deadline = Date.now() + 10000; reg.waiting; await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error('a REGISTER still waiting for its final response after 10 s');
      }
      await reg.unregister(delegate);
    },
    async stop() { await ua.stop(); },
    state: () => st,
  };
}

function installJsSIP(o) {
  const st = { state: 'new', failed: '' };
  const ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(o.ws)], uri: `sip:${o.user}@${o.domain}`,
    password: o.password, register: false, register_expires: o.expires });
  ua.on('registered', () => { st.state = 'Registered'; });
  ua.on('unregistered', () => { st.state = 'Unregistered'; });
  ua.on('registrationFailed', (e) => { st.failed = String(e.cause); });
  let started = false;
  window.ua = {
    async register() {
      if (!started) {
        started = true;
        const connected = new Promise((r) => ua.once('connected', r));
        ua.start();
        await connected; // a REGISTER before that fails with "Connection Error"
      }
      ua.register();
    },
    async unregister() { ua.unregister(); },
    async stop() { ua.stop(); },
    state: () => st,
  };
}

async function runUA(browser, sc, i, bundle) {
  const o = { expires: sc.expires, ...sc.uas[i], ws: sc.ws, domain: sc.domain };
  const t = sc.timeoutMs || 20000;
  const gate = (name) => waitFile(`${sc.gates}/${i}-${name}`, 60000);
  // The SBC's page forbids inline scripts (CSP); SIP.js is not its own.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(sc.page);
    if (o.lib === 'sipjs') {
      await page.addScriptTag({ content: bundle });
      await page.evaluate(installSIPjs, o);
    } else {
      await page.waitForFunction(() => !!window.JsSIP);
      await page.evaluate(installJsSIP, o);
    }
    await page.evaluate(() => window.ua.register());
    await waitState(page, 'Registered', t);
    emit({ event: 'registered', ua: i });
    await gate('refreshed');
    await page.evaluate(() => window.ua.unregister());
    await waitState(page, 'Unregistered', t);
    emit({ event: 'unregistered', ua: i });
    await gate('expired');
    await page.evaluate(() => window.ua.register());
    await waitState(page, 'Registered', t);
    emit({ event: 'registered-again', ua: i });
    await gate('done');
    await page.evaluate(() => window.ua.unregister());
    await waitState(page, 'Unregistered', t);
    await page.evaluate(() => window.ua.stop());
  } catch (e) {
    throw new Error(`${o.lib} ${o.user}: ${e.message}; page errors ${JSON.stringify(errors)}`);
  } finally {
    await context.close();
  }
}

const sc = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let browser;
try {
  const bundle = sc.uas.some((u) => u.lib === 'sipjs') ? sipjsBundle() : '';
  const args = process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [];
  browser = await chromium.launch({ executablePath: sc.chromium || '/usr/bin/chromium', headless: true, args });
  for (let i = 0; i < sc.uas.length; i++) {
    await runUA(browser, sc, i, bundle);
  }
  emit({ result: { ok: true } });
} catch (e) {
  emit({ result: { ok: false, error: String(e.message || e) } });
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
}
